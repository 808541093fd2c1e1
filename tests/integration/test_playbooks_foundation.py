"""Playbooks run from a plain checkout resolve biomage.iac.* and fail early with clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from devstack import Stack, free_port

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env, run_playbook
from tests.lib.tags import skip_tags

pytestmark = pytest.mark.slow
MOTO_ACCOUNT = "123456789012"


def test_base_playbook_resolves_biomage_fqcn_and_converges(
    devstack: dict[str, str], stack_ansible_env: dict[str, str]
) -> None:
    # without the stack's Kubernetes API server, biomage.iac.eks_cluster stops with its fix (tested in
    # tests/integration/test_eks_cluster_playbook.py); the add-ons have playbook tests of their own
    args = skip_tags() if "KUBECONFIG" in devstack else skip_tags("eks_cluster")
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, args=args).assert_ok()
    assert "biomage.iac.preflight : Ask AWS who we are" in result.stdout
    assert f"AWS account: {MOTO_ACCOUNT} via {stack_ansible_env['AWS_ENDPOINT_URL']}" in result.stdout
    again = run_playbook("playbooks/base.yml", env=stack_ansible_env, args=args).assert_ok()
    assert again.total("changed") == 0

    check = run_playbook("playbooks/base.yml", env=stack_ansible_env, check=True, diff=True, args=args).assert_ok()
    assert check.total("changed") == 0


def test_stopped_local_stack_is_named_with_the_fix(tmp_path: Path) -> None:
    result = run_playbook("playbooks/base.yml", env=ansible_env(BIOMAGE_DEVSTACK_DIR=str(tmp_path)))
    assert result.returncode != 0
    assert f"{tmp_path}/env does not exist" in result.output
    assert "Fix: run `make dev-up`" in result.output


def test_unreachable_endpoint_is_named_with_the_fix(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "credentials").write_text("[dead]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    (tmp_path / "env").write_text(
        f"AWS_ENDPOINT_URL={dead}\nAWS_REGION=eu-west-1\nAWS_PROFILE=dead\n"
        f"AWS_SHARED_CREDENTIALS_FILE={tmp_path / 'credentials'}\nAWS_CONFIG_FILE={tmp_path / 'credentials'}\n"
    )
    result = run_playbook("playbooks/base.yml", env=ansible_env(BIOMAGE_DEVSTACK_DIR=str(tmp_path)))
    assert result.returncode != 0
    assert f"Cannot use AWS at {dead}" in result.output
    assert "Could not connect to the endpoint URL" in result.output
    assert "Fix: run `make dev-up`" in result.output


def test_missing_credentials_in_a_cloud_environment_are_named(tmp_path: Path) -> None:
    env = ansible_env()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(key, None)
    # an empty config/credentials pair so no operator profile on this machine is picked up
    (tmp_path / "empty").write_text("")
    env.update(AWS_CONFIG_FILE=str(tmp_path / "empty"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "empty"))
    # IMDS would be tried next on a cloud machine: point it at a closed loopback port
    env.update(AWS_EC2_METADATA_SERVICE_ENDPOINT=f"http://127.0.0.1:{free_port()}", AWS_EC2_METADATA_DISABLED="true")
    result = run_playbook("playbooks/base.yml", "inventories/staging", env=env)
    assert result.returncode != 0
    assert "Cannot use AWS in eu-west-1" in result.output
    assert "Unable to locate credentials" in result.output
    assert "Fix: log in" in result.output


def test_inconsistent_inventory_fails_before_any_call(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, extra_vars={"biomage_cluster_name": "prod"})
    assert result.returncode != 0
    assert "biomage_cluster_name=prod are inconsistent" in result.output
    assert "Ask AWS who we are" not in result.output


def test_secret_key_never_reaches_output(tmp_path: Path) -> None:
    secret = "Sup3rS3cretValue-never-print-me"
    stack = Stack(tmp_path, ["moto"])
    env = stack.up()
    try:
        credentials = Path(env["AWS_SHARED_CREDENTIALS_FILE"])
        credentials.write_text(credentials.read_text().replace("= testing", f"= {secret}"))
        result = run_playbook(
            "playbooks/base.yml",
            env=ansible_env(BIOMAGE_DEVSTACK_DIR=str(tmp_path)),
            diff=True,
            # a moto-only stack has no Kubernetes API server (nor GitHub stand-in)
            args=["-vvv", *skip_tags("eks_cluster")],
        ).assert_ok()
        assert secret not in result.output
    finally:
        stack.down()


def test_a_plain_checkout_needs_no_ansible_config_variable() -> None:
    """An operator in the checkout runs ansible-playbook with nothing exported: ./ansible.cfg is found."""
    env = {key: value for key, value in ansible_env().items() if not key.startswith("ANSIBLE_")}
    dump = subprocess.run(
        [str(BIN_DIR / "ansible-config"), "dump", "--only-changed", "--format", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    settings = {item["name"]: item for item in json.loads(dump.stdout) if "name" in item}
    assert settings["COLLECTIONS_PATHS"]["origin"] == str(REPO_ROOT / "ansible.cfg")
    assert str(REPO_ROOT / "collections") in settings["COLLECTIONS_PATHS"]["value"]
    # not the .itest-* playbooks other tests write there while they run (the suite runs on two workers)
    for playbook in sorted(p for p in (REPO_ROOT / "playbooks").glob("*.yml") if not p.name.startswith(".")):
        syntax = subprocess.run(
            [str(BIN_DIR / "ansible-playbook"), "--syntax-check", str(playbook.relative_to(REPO_ROOT))],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert syntax.returncode == 0, f"{playbook.name}: {syntax.stdout}{syntax.stderr}"
