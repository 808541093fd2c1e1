"""playbooks/sandbox.yml against the session's local stack (moto): a sandbox's SNS stack is created,
converged idempotently, planned honestly, deleted alone, and a bad request fails before any AWS call."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.lib import aws
from tests.lib.ansible_run import PlaybookResult, converge_local_cluster, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/sandbox.yml"
ACCOUNT = "123456789012"
SANDBOX = "itest-a"
NEIGHBOUR = "itest-b"
ENV_STACK = "biomage-sns-development"


def stack_of(name: str) -> str:
    return f"biomage-sns-development-{name}"


def sandbox(env: dict[str, str], name: str, state: str = "present", **kwargs: Any) -> PlaybookResult:
    return run_playbook(PLAYBOOK, env=env, extra_vars={"sandbox_name": name, "sandbox_state": state}, **kwargs)


def said(result: PlaybookResult) -> str:
    """The playbook's output with the callback's line wrapping undone."""
    return " ".join(result.stdout.split())


def stacks(devstack: dict[str, str]) -> dict[str, dict]:
    cfn = aws.client(devstack, "cloudformation")
    found = {}
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            if stack["StackStatus"] != "DELETE_COMPLETE":
                found[stack["StackName"]] = stack
    return found


def topics(devstack: dict[str, str]) -> set[str]:
    sns = aws.client(devstack, "sns")
    return {t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]}


def tags(stack: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


@pytest.fixture(scope="module")
def created(stack_ansible_env: dict[str, str]) -> PlaybookResult:
    # the environment's own stacks (group aws-resources, after the cluster), and a neighbouring sandbox
    converge_local_cluster(stack_ansible_env)
    run_playbook("playbooks/resources.yml", env=stack_ansible_env).assert_ok()
    sandbox(stack_ansible_env, NEIGHBOUR).assert_ok()
    return sandbox(stack_ansible_env, SANDBOX).assert_ok()


def test_present_creates_the_sandboxs_topic_and_subscription(created: PlaybookResult, devstack: dict[str, str]) -> None:
    assert created.total("changed") == 1
    assert f"stack {stack_of(SANDBOX)} create" in said(created)
    stack = stacks(devstack)[stack_of(SANDBOX)]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["Sandbox"] == SANDBOX
    assert (
        tags(stack).items()
        >= {
            "sandbox": SANDBOX,
            "biomage:group": f"sandbox-{SANDBOX}",
            "biomage:environment": "development",
            "biomage:template": "cf/sns.yaml",
        }.items()
    )
    assert f"work-results-development-{SANDBOX}" in topics(devstack)
    # moto's CloudFormation creates no SNS subscription: tests/unit/test_cf_templates.py checks the
    # sandbox's endpoint (https://api-<sandbox>.<domain>) on the template itself
    arn = f"arn:aws:sns:eu-west-1:{ACCOUNT}:work-results-development-{SANDBOX}"
    assert f"topic: {arn}" in said(created)
    assert f"namespaces ui-{SANDBOX}, api-{SANDBOX}, worker-{SANDBOX}, pipeline-{SANDBOX}" in said(created)


def test_a_second_run_and_check_mode_after_apply_report_no_change(
    created: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    again = sandbox(stack_ansible_env, SANDBOX).assert_ok()
    assert again.total("changed") == 0, again.stdout[-3000:]
    assert f"stack {stack_of(SANDBOX)} unchanged" in said(again)
    planned = sandbox(stack_ansible_env, SANDBOX, check=True, diff=True).assert_ok()
    assert planned.total("changed") == 0, planned.stdout[-3000:]
    assert "check mode: nothing was changed" in said(planned)


def test_absent_deletes_that_sandboxs_stack_and_nothing_else(
    created: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    before = stacks(devstack)
    assert {stack_of(SANDBOX), stack_of(NEIGHBOUR), ENV_STACK} <= set(before)

    # the plan first: it names the deletion and changes nothing
    planned = sandbox(stack_ansible_env, SANDBOX, "absent", check=True, diff=True).assert_ok()
    assert planned.total("changed") == 1
    assert f"stack {stack_of(SANDBOX)} delete" in said(planned)
    assert set(stacks(devstack)) == set(before)

    deleted = sandbox(stack_ansible_env, SANDBOX, "absent").assert_ok()
    assert deleted.total("changed") == 1
    after = stacks(devstack)
    assert set(after) == set(before) - {stack_of(SANDBOX)}
    for name, stack in after.items():
        assert (stack["StackStatus"], stack.get("LastUpdatedTime")) == (
            before[name]["StackStatus"],
            before[name].get("LastUpdatedTime"),
        ), f"{name} was touched"
    # (moto 5's CloudFormation leaves an SNS topic behind when its stack is deleted; AWS deletes it)
    assert {f"work-results-development-{NEIGHBOUR}", "work-results-development"} <= topics(devstack)
    # what the apps' CI must do next
    assert "the apps' CI must now remove the sandbox's release manifests from releases/development/" in said(deleted)
    assert f"({SANDBOX}.yaml, <app>-{SANDBOX}.yaml or {SANDBOX}/)" in said(deleted)
    assert "still in this checkout: none" in said(deleted)

    again = sandbox(stack_ansible_env, SANDBOX, "absent").assert_ok()
    assert again.total("changed") == 0
    assert set(stacks(devstack)) == set(after)


DEAD_AWS = {"biomage_aws_endpoint_url": "http://127.0.0.1:9"}  # any AWS call would fail to connect


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad_Name", "the name is not a DNS label"),
        ("-leading", "the name is not a DNS label"),
        ("trailing-", "the name is not a DNS label"),
        ("dots.in.it", "the name is not a DNS label"),
        ("a" * 21, "the name has 21 characters. Fix: use at most 20"),
        ("master", "the name is reserved"),
        ("production", "the name is reserved"),
        ("staging", "the name is reserved"),
        ("", "no sandbox name. Fix: add -e sandbox_name=<name>"),
    ],
)
def test_a_bad_name_fails_before_any_aws_call(
    stack_ansible_env: dict[str, str], devstack: dict[str, str], name: str, message: str
) -> None:
    before = set(stacks(devstack))
    result = run_playbook(PLAYBOOK, env=stack_ansible_env, extra_vars={"sandbox_name": name, **DEAD_AWS}, timeout=300)
    assert result.returncode != 0
    assert f'Sandbox "{name}" (present) in development refused, nothing was changed' in result.output
    assert message in result.output, result.output[-3000:]
    assert "Fix:" in result.output
    # failed in the validation pre-task: preflight (the first AWS call) never ran
    assert "TASK [biomage.iac.preflight" not in result.stdout
    assert not re.search(r"Could not connect|EndpointConnectionError|Cannot use AWS", result.output)
    assert set(stacks(devstack)) == before


def test_production_is_refused_before_any_aws_call(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook(
        PLAYBOOK,
        "inventories/production",
        env=stack_ansible_env,
        extra_vars={"sandbox_name": "fine-name", "sandbox_state": "absent", **DEAD_AWS},
        timeout=300,
    )
    assert result.returncode != 0
    assert "environment production has no sandboxes: they exist in staging and development only" in result.output
    assert "TASK [biomage.iac.preflight" not in result.stdout


def test_a_bad_state_is_refused(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook(
        PLAYBOOK, env=stack_ansible_env, extra_vars={"sandbox_name": "fine-name", "sandbox_state": "gone", **DEAD_AWS}
    )
    assert result.returncode != 0
    assert "gone" in result.output and ("present, absent" in result.output or "present or absent" in result.output)
    assert "TASK [biomage.iac.preflight" not in result.stdout
