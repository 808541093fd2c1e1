"""Session-wide fixtures: the local stack, started on free loopback ports and stopped after."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))
sys.path.insert(0, str(REPO_ROOT))
# ansible_collections.biomage.iac.* resolves through the committed collections/ symlink
sys.path.insert(0, str(REPO_ROOT / "collections"))

from devstack import Stack  # noqa: E402
from devstack.components import DEFAULT_COMPONENTS  # noqa: E402

from tests.lib.ansible_run import ansible_env  # noqa: E402


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The whole local stack for the test session: its env entries (endpoints, dummy credentials)."""
    components = os.environ.get("BIOMAGE_TEST_COMPONENTS", ",".join(DEFAULT_COMPONENTS)).split(",")
    stack = Stack(tmp_path_factory.mktemp("devstack"), components)
    env = stack.up()
    try:
        yield env
    finally:
        stack.down()


@pytest.fixture(scope="session")
def stack_ansible_env(devstack: dict[str, str]) -> dict[str, str]:
    """An operator's shell environment pointing at the session's local stack."""
    return ansible_env(devstack)


@pytest.fixture(scope="session")
def kube_api(devstack: dict[str, str]) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient for the stack's API server (admin kubeconfig), closed at the end."""
    api_client = config.new_client_from_config(config_file=devstack["KUBECONFIG"])
    try:
        yield api_client
    finally:
        api_client.close()
