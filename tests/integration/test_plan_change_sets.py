"""Plan files on the local stack: a check run with a plan file keeps the CloudFormation change sets it
planned; an apply given the plan file executes exactly those (no new change set), and refuses before
any change when a template, the stack or the change set changed since. A plan without a plan file
leaves no change set behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, run_playbook

pytestmark = pytest.mark.slow
PLAY = REPO_ROOT / "tests/fixtures/playbooks/plan/change_sets.yml"


def write_template(root: Path, prefix: str, visibility: int) -> None:
    """The repository's sqs template with this test's queue names and a visibility timeout to edit."""
    text = (REPO_ROOT / "cf/sqs.yaml").read_text()
    text = re.sub(r'"(pipeline|worker)-jobs-', rf'"{prefix}-\1-jobs-', text)
    text = text.replace("VisibilityTimeout: 900", f"VisibilityTimeout: {visibility}", 1)
    assert f"VisibilityTimeout: {visibility}" in text
    (root / "cf").mkdir(parents=True, exist_ok=True)
    (root / "cf/sqs.yaml").write_text(text)


def play(env: dict[str, str], root: Path, prefix: str, check: bool = False, **extra: str) -> PlaybookResult:
    return run_playbook(
        PLAY,
        "localhost,",
        env=env,
        check=check,
        diff=check,
        extra_vars={"fixture_dir": str(root), "fixture_prefix": prefix, **extra},
    )


def reported(result: PlaybookResult) -> tuple[dict[str, int], list[str]]:
    """The stacks task's API calls by operation and the change sets it kept or executed."""
    said = " ".join(result.stdout.split())
    calls = re.search(r"fixture-calls (\{.*?\}) fixture-change-sets (\[.*?\])", said)
    assert calls, result.stdout[-3000:]
    return json.loads(calls[1]), json.loads(calls[2])


def deployed_template(cfn: object, stack: str) -> str:
    return cfn.get_template(StackName=stack)["TemplateBody"]


def test_an_apply_executes_exactly_the_planned_change_set(
    tmp_path: Path, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    prefix, root = "itest-planexec", tmp_path / "repo"
    stack = f"{prefix}-sqs-staging"
    cfn = aws.client(devstack, "cloudformation")
    write_template(root, prefix, 900)
    play(stack_ansible_env, root, prefix).assert_ok()

    write_template(root, prefix, 901)
    planned = tmp_path / "staging.plan"
    check = play(stack_ansible_env, root, prefix, check=True, biomage_plan_out=str(planned)).assert_ok()
    calls, kept = reported(check)
    assert calls.get("CreateChangeSet") == 1 and "DeleteChangeSet" not in calls
    record = json.loads(planned.read_text())["change_sets"][stack]
    assert kept == [record["id"]]
    assert cfn.describe_change_set(ChangeSetName=record["id"])["ExecutionStatus"] == "AVAILABLE"
    assert "VisibilityTimeout: 900" in deployed_template(cfn, stack)

    applied = play(stack_ansible_env, root, prefix, biomage_plan_in=str(planned)).assert_ok()
    calls, executed = reported(applied)
    assert calls.get("ExecuteChangeSet") == 1 and "CreateChangeSet" not in calls, calls
    assert executed == [record["id"]]
    assert cfn.describe_change_set(ChangeSetName=record["id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    assert "VisibilityTimeout: 901" in deployed_template(cfn, stack)
    assert "Applied: 0 created, 1 updated" in applied.stdout

    # without a plan file, a plan creates and deletes its change set as before
    write_template(root, prefix, 902)
    calls, kept = reported(play(stack_ansible_env, root, prefix, check=True).assert_ok())
    assert calls.get("CreateChangeSet") == 1 and calls.get("DeleteChangeSet") == 1 and kept == []
    summaries = cfn.list_change_sets(StackName=stack)["Summaries"]
    assert [s for s in summaries if s.get("ExecutionStatus") == "AVAILABLE"] == []


def test_an_apply_refuses_before_any_change_when_a_template_or_the_stack_changed(
    tmp_path: Path, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    prefix, root = "itest-planstale", tmp_path / "repo"
    stack = f"{prefix}-sqs-staging"
    cfn = aws.client(devstack, "cloudformation")
    write_template(root, prefix, 900)
    play(stack_ansible_env, root, prefix).assert_ok()

    # a template edited between plan and apply
    write_template(root, prefix, 901)
    planned = tmp_path / "first.plan"
    play(stack_ansible_env, root, prefix, check=True, biomage_plan_out=str(planned)).assert_ok()
    record = json.loads(planned.read_text())["change_sets"][stack]
    write_template(root, prefix, 905)
    refused = play(stack_ansible_env, root, prefix, biomage_plan_in=str(planned))
    assert refused.returncode != 0
    said = " ".join(refused.stdout.split())
    assert "input cf/sqs.yaml changed" in said and "Nothing was changed" in said
    assert "fixture-calls" not in said  # stopped before the stacks task
    assert "VisibilityTimeout: 900" in deployed_template(cfn, stack)
    assert cfn.describe_change_set(ChangeSetName=record["id"])["ExecutionStatus"] == "AVAILABLE"

    # the stack updated by someone else between plan and apply: its planned change set is obsolete
    second = tmp_path / "second.plan"
    play(stack_ansible_env, root, prefix, check=True, biomage_plan_out=str(second)).assert_ok()
    record = json.loads(second.read_text())["change_sets"][stack]
    cfn.update_stack(
        StackName=stack,
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": "Environment", "UsePreviousValue": True},
            {"ParameterKey": "MaxReceiveCount", "ParameterValue": "6"},
        ],
        Tags=cfn.describe_stacks(StackName=stack)["Stacks"][0]["Tags"],
    )
    refused = play(stack_ansible_env, root, prefix, biomage_plan_in=str(second))
    assert refused.returncode != 0
    said = " ".join(refused.stdout.split())
    assert f"change set {record['id']} of stack {stack} is CREATE_COMPLETE/OBSOLETE" in said
    assert "Nothing was changed" in said and "fixture-calls" not in said
    assert "VisibilityTimeout: 900" in deployed_template(cfn, stack)
