"""playbooks/base.yml with the eks_cluster role: a scripted eksctl on PATH, AWS identity from the local stack.

The fake ``eksctl`` (tests/lib/fake_eksctl.py) replays real-shaped outputs, keeps a live state and logs
every argv; the preflight and the role's STS lookup go to the session's moto server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from devstack.kube import SERVICE_ACCOUNT_ISSUER

from tests.lib import aws
from tests.lib.ansible_run import run_playbook
from tests.lib.eks_scenarios import BASE_CONFIG, desired, live, user
from tests.lib.fake_eksctl import EXPIRED, MUTATING, install, logged_argv, new_state
from tests.lib.kubeconfig import dead as dead_kubeconfig
from tests.lib.tags import skip_tags

pytestmark = pytest.mark.slow
# the cluster alone: the add-ons that follow it in base.yml have playbook tests of their own
CLUSTER_ONLY = skip_tags()


def is_mutating(argv: list[str]) -> bool:
    return tuple(argv[1:3]) in MUTATING or "--approve" in argv


def staging(env: dict[str, str], tmp_path: Path, state: dict, **extra: str) -> tuple[dict[str, str], dict[str, str]]:
    """The operator's environment with the fake eksctl first on PATH, and the extra vars for staging."""
    install(tmp_path / "bin", state)
    env = {**env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"}
    extra_vars = {
        "biomage_aws_endpoint_url": env["AWS_ENDPOINT_URL"],  # staging's AWS is the local emulator here
        **aws.EMULATOR_ACCOUNT_VARS,
        "eks_cluster_kubeconfig_path": str(tmp_path / "kube" / "biomage-staging.yaml"),
        **extra,
    }
    return env, extra_vars


def test_staging_check_diff_prints_the_plan_and_mutates_nothing(
    devstack: dict[str, str], stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole base.yml, as the issue has it: `--check --diff` on staging, add-ons included."""
    state = live(desired(users=("carol",)), version="1.35")
    env, extra = staging(stack_ansible_env, tmp_path, state)
    env["GITHUB_TOKEN"] = "not-used-in-this-plan"  # flux needs one; without a kubeconfig it plans without GitHub
    route53 = aws.client(devstack, "route53")
    zones = route53.list_hosted_zones_by_name(DNSName="biomage.net.")["HostedZones"]
    if "biomage.net." not in [zone["Name"] for zone in zones]:
        route53.create_hosted_zone(Name="biomage.net.", CallerReference="staging-zone")  # exists in the account
    before = (tmp_path / "bin" / "state.json").read_text()

    result = run_playbook("playbooks/base.yml", "inventories/staging", env=env, check=True, diff=True, extra_vars=extra)
    result.assert_ok()
    said = " ".join(result.stdout.split())
    for what in ("the controller", "cert-manager", "Flux"):
        assert f"so {what} cannot be planned against it" in said, f"{what}: no plan for a cluster not readable yet"
    assert "A real run creates namespace traefik" in said
    assert "ingress: no load balancer (yet)" in said

    assert "TASK [biomage.iac.eks_cluster : Converge the cluster with eksctl (biomage-staging)]" in result.stdout
    # the identity preflight read in this run (same endpoint and region) is used: no second STS module run
    asked_again = "TASK [biomage.iac.eks_cluster : Ask AWS which account and identity run this, unless preflight"
    assert result.stdout.split(asked_again, 1)[1].split("\n", 2)[1].startswith("skipping: [biomage-staging]")
    assert "--- before\n+++ after" in result.stdout
    assert "-    version: '1.35'\n+    version: '1.36'" in result.stdout
    assert f"-        {user('carol')}:" in result.stdout
    assert "cluster: upgrade" in result.stdout and "version_steps:\n            - '1.36'" in result.stdout
    assert f"remove:\n                - {user('carol')}" in result.stdout
    assert "commands: []" in result.stdout
    calls = logged_argv(tmp_path / "bin")
    assert calls[0] == ["eksctl", "version", "-o", "json"]
    assert [argv for argv in calls if is_mutating(argv)] == []
    assert (tmp_path / "bin" / "state.json").read_text() == before
    assert not (tmp_path / "kube").exists()


def test_staging_creates_the_cluster_then_a_second_run_changes_nothing(
    stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    env, extra = staging(stack_ansible_env, tmp_path, new_state())

    first = run_playbook("playbooks/base.yml", "inventories/staging", env=env, extra_vars=extra, args=CLUSTER_ONLY)
    first.assert_ok()
    assert first.total("changed") == 1
    created = [argv for argv in logged_argv(tmp_path / "bin") if is_mutating(argv)]
    assert [argv[1:3] for argv in created] == [["create", "cluster"], ["utils", "write-kubeconfig"]]
    assert "Kubernetes: https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.eu-west-1.eks.amazonaws.com" in first.stdout
    assert yaml.safe_load((tmp_path / "kube" / "biomage-staging.yaml").read_text())["kind"] == "Config"

    (tmp_path / "bin" / "argv.log").write_text("")
    second = run_playbook("playbooks/base.yml", "inventories/staging", env=env, extra_vars=extra, args=CLUSTER_ONLY)
    second.assert_ok()
    assert second.total("changed") == 0
    again = [argv[1:3] for argv in logged_argv(tmp_path / "bin") if is_mutating(argv)]
    assert again == [["utils", "write-kubeconfig"]]  # refreshed, identical: not a change


def test_production_refuses_a_changed_node_group_naming_the_fix(
    stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    state = live(desired())
    state["cluster_name"] = "biomage-production"
    state["cluster"]["Name"] = "biomage-production"
    changed = tmp_path / "cluster.yaml"
    changed.write_text(BASE_CONFIG.read_text().replace('instanceTypes: ["r5.xlarge"]', 'instanceTypes: ["r5.2xlarge"]'))
    env, extra = staging(stack_ansible_env, tmp_path, state, eks_cluster_config_file=str(changed))

    result = run_playbook("playbooks/base.yml", "inventories/production", env=env, check=True, extra_vars=extra)
    assert result.returncode != 0
    assert "node group 'workers' (live: workers) cannot change in place: instanceTypes r5.xlarge -> r5.2xlarge" in (
        result.output
    )
    assert "eks_cluster_nodegroup_changes: roll" in result.output
    assert [argv for argv in logged_argv(tmp_path / "bin") if is_mutating(argv)] == []


def test_development_converges_on_the_stacks_real_api_server(
    devstack: dict[str, str], stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """Local mode against the session's kube-apiserver: facts, changed=0, honest check mode, eksctl never called."""
    assert "KUBECONFIG" in devstack, "the session's stack runs its Kubernetes API server (component kube)"
    install(tmp_path / "bin", new_state())  # an eksctl on PATH that must not be called
    env = {**stack_ansible_env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{stack_ansible_env['PATH']}"}
    # a first run registers it (another test of this session may have done so already)
    run_playbook("playbooks/base.yml", env=env, args=CLUSTER_ONLY).assert_ok()

    result = run_playbook("playbooks/base.yml", env=env, args=CLUSTER_ONLY).assert_ok()
    assert "biomage.iac.eks_cluster : Register the local API server with the emulator as EKS cluster" in result.stdout
    summary = " ".join(result.stdout.split())  # the YAML callback folds long lines
    assert (
        f"Kubernetes: {devstack['BIOMAGE_KUBE_SERVER']} (version {devstack['BIOMAGE_KUBE_VERSION']}, "
        f"OIDC issuer {SERVICE_ACCOUNT_ISSUER}, kubeconfig {devstack['KUBECONFIG']})"
    ) in summary
    assert result.total("changed") == 0, result.stdout[-4000:]

    check = run_playbook("playbooks/base.yml", env=env, check=True, diff=True, args=CLUSTER_ONLY).assert_ok()
    assert check.total("changed") == 0
    assert f"Kubernetes: {devstack['BIOMAGE_KUBE_SERVER']}" in check.stdout
    assert logged_argv(tmp_path / "bin") == []


def test_development_without_a_local_api_server_fails_with_the_fix(
    devstack: dict[str, str], stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """A stack started without its kube component: the env file has no KUBECONFIG."""
    kube_keys = {key for key in devstack if key.startswith(("BIOMAGE_KUBE", "BIOMAGE_KUBECTL", "BIOMAGE_HELM"))}
    kube_keys |= {"KUBECONFIG", "K8S_AUTH_KUBECONFIG"}
    moto_only = {key: value for key, value in devstack.items() if key not in kube_keys}
    moto_only["BIOMAGE_DEVSTACK_DIR"] = str(tmp_path)
    (tmp_path / "env").write_text("".join(f"{key}={value}\n" for key, value in sorted(moto_only.items())))
    env = {key: value for key, value in stack_ansible_env.items() if key not in kube_keys}
    env["BIOMAGE_DEVSTACK_DIR"] = str(tmp_path)

    result = run_playbook("playbooks/base.yml", env=env)
    assert result.returncode != 0
    assert "biomage.iac.preflight : Ask AWS who we are" in result.stdout, "preflight passed: AWS is reachable"
    assert "biomage.iac.eks_cluster : Fail when the local stack has no Kubernetes API server" in result.stdout
    message = " ".join(result.output.split())  # the YAML callback folds long lines
    assert f"the stack's env file ({tmp_path}/env) has no KUBECONFIG entry" in message
    assert "Fix: start the stack with its Kubernetes component (make dev-down && make dev-up)" in message


def test_development_with_a_dead_api_server_fails_with_the_fix(
    devstack: dict[str, str], stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    dead = dead_kubeconfig(devstack["KUBECONFIG"], tmp_path / "kubeconfig")  # the stack's, at a closed port
    result = run_playbook(
        "playbooks/base.yml", env=stack_ansible_env, extra_vars={"eks_cluster_local_kubeconfig": str(dead)}
    )
    assert result.returncode != 0
    message = " ".join(result.output.split())  # the YAML callback folds long lines
    assert f"(kubeconfig {dead}) does not answer" in message
    assert "Fix: start it (development: `make dev-up`)" in message


# -- bad input and a bad tool fail before any change, each naming what and the fix ---------------------------------
def _broken_config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return {"eks_cluster_config_file": str(path)}


@pytest.mark.parametrize(
    "case",
    ["yaml-syntax", "unknown-field", "eksctl-too-old", "expired-credentials"],
)
def test_staging_errors_name_the_cause_and_the_fix_and_change_nothing(
    case: str, stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    state = live(desired())
    extra: dict[str, str] = {}
    if case == "yaml-syntax":
        extra = _broken_config(tmp_path, BASE_CONFIG.read_text().replace('version: "1.36"', 'version: ["1.36"'))
        expected = [f"{tmp_path}/cluster.yaml line", "is not valid YAML", "Fix: correct the YAML syntax"]
    elif case == "unknown-field":
        text = BASE_CONFIG.read_text().replace("volumeEncrypted: true", "volumeEncripted: true")
        extra = _broken_config(tmp_path, text)
        expected = [
            f"{tmp_path}/cluster.yaml: managedNodeGroups[0].volumeEncripted: is not a field this platform uses",
            "Fix: remove it or correct its spelling",
        ]
    elif case == "eksctl-too-old":
        state["version"]["Version"] = "0.150.0"
        expected = ["eksctl 0.150.0 is too old: this collection needs 0.230.0 or newer", "Fix: upgrade eksctl"]
    else:
        state["errors"] = [{"match": ["get", "cluster"], "stderr": EXPIRED}]
        expected = ["AWS rejected the credentials used by `eksctl get cluster", "ExpiredToken", "Fix: log in again"]
    env, extra_vars = staging(stack_ansible_env, tmp_path, state, **extra)
    before = (tmp_path / "bin" / "state.json").read_text()

    result = run_playbook("playbooks/base.yml", "inventories/staging", env=env, extra_vars=extra_vars)
    assert result.returncode != 0
    message = " ".join(result.output.split())  # the YAML callback folds long lines
    for text in expected:
        assert text in message, result.output[-4000:]
    calls = logged_argv(tmp_path / "bin")
    if case in ("yaml-syntax", "unknown-field"):
        assert calls == [], "the configuration is checked before eksctl is called"
    assert [argv for argv in calls if is_mutating(argv)] == []
    assert (tmp_path / "bin" / "state.json").read_text() == before
    assert not (tmp_path / "kube").exists()


def test_staging_without_eksctl_names_the_fix(stack_ansible_env: dict[str, str], tmp_path: Path) -> None:
    env, extra_vars = staging(stack_ansible_env, tmp_path, new_state())
    # PATH without any eksctl: neither the scripted one nor one installed on this machine
    path = [d for d in env["PATH"].split(os.pathsep) if d and not (Path(d) / "eksctl").exists()]
    env["PATH"] = os.pathsep.join(path)
    result = run_playbook("playbooks/base.yml", "inventories/staging", env=env, extra_vars=extra_vars)
    assert result.returncode != 0
    message = " ".join(result.output.split())
    assert "eksctl was not found on PATH. Fix: install eksctl 0.230.0 or newer" in message
    assert "eks_cluster_eksctl_path" in message


def test_an_eksctl_failure_never_prints_the_operators_secret_key(
    stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    state = live(desired())
    state["errors"] = [{"match": ["get", "cluster"], "stderr": f"Error: request signed with {secret} was refused\n"}]
    env, extra_vars = staging(stack_ansible_env, tmp_path, state)
    env.pop("AWS_PROFILE", None)  # keys in the operator's shell instead of the stack's profile
    env.update(AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY=secret)

    result = run_playbook(
        "playbooks/base.yml", "inventories/staging", env=env, diff=True, extra_vars=extra_vars, args=["-vvv"]
    )
    assert result.returncode != 0
    assert "request signed with ******** was refused" in result.output
    assert secret not in result.output
