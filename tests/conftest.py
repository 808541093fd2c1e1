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
    stack.stop_with_owner()  # a killed run (no teardown) leaves no server behind
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


# `make test` runs the suite on two workers, one test file at a time each (pytest-xdist, --dist loadfile, in
# collection order). The longest files go first, so that neither worker is left with a long one at the end
# while the other idles; the rest keep their order. Ranked from the suite's --durations report.
LONGEST_FIRST = (
    "test_flux_role.py",
    "test_gitops_loop.py",
    "test_playbook_resources.py",
    "test_ci_privileges_playbook.py",
    "test_molecule.py",
    "test_site_playbook.py",
    "test_plan_site.py",
    "test_ingress_migration.py",
    "test_cert_manager_playbook.py",
    "test_cfn_stacks_moto.py",
    "test_flux_tenants.py",
    "test_sandbox_playbook.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
