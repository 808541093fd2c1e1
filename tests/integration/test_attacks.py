"""Issue 13's attacks on the development stack, each refused before any change: the message is
asserted and the account's stacks, roles and policies are compared before and after."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.integration.test_ci_privileges_playbook import restore_seed, set_file
from tests.integration.test_preflight_account import account_state
from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, run_playbook

pytestmark = pytest.mark.slow


def state(devstack: dict[str, str]) -> dict[str, object]:
    iam = aws.client(devstack, "iam")
    policies = {
        role["RoleName"]: sorted(iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"])
        for role in iam.list_roles()["Roles"]
    }
    return {**account_state(devstack), "role_policies": policies}


CI_ATTACKS = {
    "iam-sts-s3-on-sub-star": (
        "{Effect: Allow, Action: ['iam:*', 'sts:*', 's3:*'], Resource: !Sub '*'}",
        ["[BIO106 service-wildcard", "[BIO101 privilege-escalation"],
    ),
    "put-role-policy": (
        "{Effect: Allow, Action: [iam:PutRolePolicy], Resource: '*'}",
        ["[BIO101 privilege-escalation"],
    ),
    "attach-role-policy": (
        "{Effect: Allow, Action: [iam:AttachRolePolicy], Resource: '*'}",
        ["[BIO101 privilege-escalation", "[BIO102 resource-exposure"],
    ),
}


@pytest.mark.parametrize("attack", sorted(CI_ATTACKS))
def test_a_hostile_ci_yaml_is_refused_before_any_change(
    attack: str, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    statement, rules = CI_ATTACKS[attack]
    text = f"ci-policies:\n  - PolicyName: {attack}\n    PolicyDocument:\n      Version: '2012-10-17'\n"
    text += f"      Statement:\n        - {statement}\n"
    before = state(devstack)
    try:
        set_file(stack_ansible_env, "ui", text)
        result = run_playbook("playbooks/ci.yml", env=stack_ansible_env, timeout=600)
        assert result.returncode != 0
        for rule in rules:
            assert f"biomage-org/ui:.ci.yaml: ci-policies[0] ({attack}).Statement[0]: {rule}" in result.output, (
                result.output[-4000:]
            )
        assert "Fix: " in result.output
        assert state(devstack) == before
    finally:
        restore_seed(stack_ansible_env)


@pytest.mark.parametrize(
    "change",
    [
        {"ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}]},
        {
            "Policies": [
                {
                    "PolicyName": "ui",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": ["iam:*", "sts:*"], "Resource": "*"}],
                    },
                }
            ]
        },
    ],
    ids=["AdministratorAccess", "iam-sts-star"],
)
def test_an_over_privileged_irsa_template_is_refused_before_any_change(
    change: dict, tmp_path: Path, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    templates = tmp_path / "cf"
    shutil.copytree(REPO_ROOT / "cf", templates)
    role = yaml.safe_load((templates / "irsa-ui-role.yaml").read_text())
    role["Resources"]["Role"]["Properties"].update(change)
    (templates / "irsa-ui-role.yaml").write_text(yaml.safe_dump(role, sort_keys=False))
    before = state(devstack)
    result = run_playbook(
        "playbooks/resources.yml",
        env=stack_ansible_env,
        extra_vars={
            "aws_resources_template_dir": str(templates),
            "irsa_template_dir": str(templates),
            "irsa_oidc_provider": "oidc.eks.eu-west-1.amazonaws.com/id/ATTACK",
        },
        timeout=600,
    )
    assert result.returncode != 0
    assert "irsa-ui-role.yaml: Resources.Role.Properties." in result.output, result.output[-4000:]
    assert "[BIO10" in result.output and "nothing was changed" in result.output
    assert state(devstack) == before
