"""Right account, or nothing (docs/accounts.md): preflight compares the account the credentials belong
to with the inventory's biomage_aws_account_id and stops before any role reads or changes anything."""

from __future__ import annotations

import pytest

from tests.lib import aws
from tests.lib.ansible_run import run_playbook

pytestmark = pytest.mark.slow
OTHER_ACCOUNT = "210987654321"


def account_state(devstack: dict[str, str]) -> dict[str, list[str]]:
    """What a run could change: stacks, roles and buckets of the emulator's account."""
    cfn = aws.client(devstack, "cloudformation")
    stacks = [s["StackName"] + ":" + s["StackStatus"] for s in aws.all_stacks(cfn)]
    roles = [r["RoleName"] for r in aws.client(devstack, "iam").list_roles()["Roles"]]
    buckets = [b["Name"] for b in aws.client(devstack, "s3").list_buckets()["Buckets"]]
    return {"stacks": sorted(stacks), "roles": sorted(roles), "buckets": sorted(buckets)}


def test_credentials_of_another_account_stop_the_run_naming_both(
    devstack: dict[str, str], stack_ansible_env: dict[str, str]
) -> None:
    before = account_state(devstack)
    result = run_playbook(
        "playbooks/resources.yml", env=stack_ansible_env, extra_vars={"biomage_aws_account_id": OTHER_ACCOUNT}
    )
    assert result.returncode != 0
    assert f"expects account {OTHER_ACCOUNT}, but the credentials belong to account {aws.EMULATOR_ACCOUNT}" in (
        result.output
    )
    assert "Nothing was read or changed" in result.output
    assert "Fix: use the development account's credentials" in result.output
    # preflight was the last role that ran
    assert "TASK [biomage.iac.aws_resources" not in result.stdout
    assert "TASK [biomage.iac.irsa" not in result.stdout
    assert account_state(devstack) == before


def test_staging_without_an_account_refuses_naming_the_credentials_account(
    devstack: dict[str, str], stack_ansible_env: dict[str, str]
) -> None:
    before = account_state(devstack)
    result = run_playbook(
        "playbooks/resources.yml",
        "inventories/staging",
        env=stack_ansible_env,
        extra_vars={"biomage_aws_endpoint_url": devstack["AWS_ENDPOINT_URL"]},  # staging's AWS is the emulator
    )
    assert result.returncode != 0
    assert "names no AWS account (biomage_aws_account_id is not set)" in result.output
    assert f"(account {aws.EMULATOR_ACCOUNT})" in result.output
    assert "inventories/staging/group_vars/all/main.yml" in result.output
    assert account_state(devstack) == before


def test_a_malformed_account_id_is_refused(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook(
        "playbooks/resources.yml", env=stack_ansible_env, extra_vars={"biomage_aws_account_id": "12345"}
    )
    assert result.returncode != 0
    assert "biomage_aws_account_id=12345 is not an AWS account id" in result.output


def test_the_inventory_account_passes(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, args=["--tags", "preflight"]).assert_ok()
    assert "Wrong AWS account" not in result.output
    skipped = "Fail when the credentials do not belong to the inventory's account] ***\nskipping: [biomage-development]"
    assert skipped in result.stdout
