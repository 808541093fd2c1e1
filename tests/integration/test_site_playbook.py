"""playbooks/site.yml on the development inventory: the platform part of `make demo` (base.yml then
resources.yml) end to end on the session's local stack. Every role also has playbook and molecule
tests of its own; this one proves they compose: facts pass forward (cluster -> ingress -> DNS,
cluster issuer -> IRSA trust), a second run changes nothing, check mode after apply plans nothing."""

from __future__ import annotations

import pytest

from tests.lib import aws
from tests.lib.ansible_run import PlaybookResult, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/site.yml"


def _said(result: PlaybookResult) -> str:
    return " ".join(result.stdout.split())  # the YAML callback folds long lines


@pytest.fixture(scope="module")
def converged(stack_ansible_env: dict[str, str]) -> PlaybookResult:
    return run_playbook(PLAYBOOK, env=stack_ansible_env, timeout=1800).assert_ok()


def test_the_whole_platform_converges_and_says_what_it_did(converged: PlaybookResult, devstack: dict[str, str]) -> None:
    said = _said(converged)
    assert f"Kubernetes: {devstack['BIOMAGE_KUBE_SERVER']} (version {devstack['BIOMAGE_KUBE_VERSION']}" in said
    assert "ingress: " in said and "no load balancer (yet)" not in said
    assert "Flux: releases/development from " in said
    assert "environment development (account " in said
    # the IRSA roles trust the issuer the eks_cluster role found in the same run (facts pass forward)
    issuer = converged.stdout.split("OIDC provider trusted by the IRSA roles: ", 1)[1].split()[0].strip("'\",")
    role = aws.client(devstack, "iam").get_role(RoleName="biomage-api-development-eu-west-1")["Role"]
    statement = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{issuer}")


def test_a_second_run_and_check_mode_after_it_change_nothing(
    converged: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    again = run_playbook(PLAYBOOK, env=stack_ansible_env, timeout=1800).assert_ok()
    assert again.total("changed") == 0, again.stdout[-6000:]
    check = run_playbook(PLAYBOOK, env=stack_ansible_env, check=True, diff=True, timeout=1800).assert_ok()
    assert check.total("changed") == 0, check.stdout[-6000:]
    assert "check mode: nothing was changed" in _said(check)
