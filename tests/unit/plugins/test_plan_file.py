"""Plan files: a check run writes one; an apply given it refuses, naming the change, before any change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils import plan_file

from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook

PLAY = REPO_ROOT / "tests/fixtures/playbooks/plan/planfile.yml"


def inputs(root: Path) -> None:
    (root / "cf").mkdir()
    (root / "cf/dynamo.yaml").write_text("Resources: {}\n")
    (root / "inventory").mkdir()
    (root / "inventory/hosts.yml").write_text("all: {}\n")


def play(root: Path, check: bool, **extra: str):
    env = ansible_env(ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan")
    return run_playbook(PLAY, "localhost,", env=env, check=check, extra_vars={"fixture_dir": str(root), **extra})


def test_an_apply_refuses_a_plan_whose_inputs_changed(tmp_path: Path) -> None:
    inputs(tmp_path)
    planned = tmp_path / "plan.json"
    out = play(tmp_path, True, biomage_plan_out=str(planned)).assert_ok()
    assert f"Plan file written to {planned}" in out.stdout
    data = json.loads(planned.read_text())
    assert set(data["fingerprint"]["inputs"]) == {"cf/dynamo.yaml", "inventory/hosts.yml"}
    assert data["mode"] == "plan" and data["change_sets"] == {}

    (tmp_path / "cf/dynamo.yaml").write_text("Resources: {Table: {}}\n")
    (tmp_path / "cf/new.yaml").write_text("Resources: {}\n")
    refused = play(tmp_path, False, biomage_plan_in=str(planned))
    assert refused.returncode != 0
    assert "refusing to apply plan file" in refused.stdout
    assert "input cf/dynamo.yaml changed" in refused.stdout and "input cf/new.yaml was added" in refused.stdout
    assert not (tmp_path / "applied.txt").exists()  # nothing after the check ran


def test_an_apply_of_an_unchanged_plan_goes_ahead(tmp_path: Path) -> None:
    inputs(tmp_path)
    planned = tmp_path / "plan.json"
    play(tmp_path, True, biomage_plan_out=str(planned)).assert_ok()
    play(tmp_path, False, biomage_plan_in=str(planned)).assert_ok()
    assert (tmp_path / "applied.txt").read_text() == "applied"


def test_a_stack_that_changed_since_the_plan_is_named() -> None:
    before = plan_file.stack_states(
        [
            {"StackName": "biomage-dynamo-staging", "StackStatus": "CREATE_COMPLETE", "CreationTime": "t0"},
            {"StackName": "biomage-dynamo-production", "StackStatus": "CREATE_COMPLETE", "CreationTime": "t0"},
            {"StackName": "eksctl-biomage-staging-cluster", "StackStatus": "CREATE_COMPLETE", "CreationTime": "t0"},
        ],
        "biomage-",
        "-staging",
    )
    assert before == {"biomage-dynamo-staging": "CREATE_COMPLETE@t0"}
    after = {"biomage-dynamo-staging": "UPDATE_COMPLETE@t1"}
    reasons = plan_file.compare(plan_file.fingerprint({}, before), plan_file.fingerprint({}, after))
    assert reasons == ["stack biomage-dynamo-staging changed (CREATE_COMPLETE@t0 -> UPDATE_COMPLETE@t1)"]
    assert plan_file.compare(plan_file.fingerprint({}, before), plan_file.fingerprint({}, before)) == []
    error = plan_file.refusal("p.json", [f"input f{i} changed" for i in range(12)])
    assert "and 2 more" in str(error) and "Fix:" in str(error)


def test_an_unreadable_plan_file_is_explained(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"mode": "plan"}')
    try:
        plan_file.read(str(bad))
    except plan_file.PlanFileError as exc:
        assert f"plan file {bad} has no fingerprint" in str(exc)
    else:
        raise AssertionError("a file without a fingerprint was accepted")


def test_change_sets_that_cannot_be_executed_are_named() -> None:
    found = {
        "arn:ready": {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"},
        "arn:obsolete": {"Status": "CREATE_COMPLETE", "ExecutionStatus": "OBSOLETE"},
    }
    reasons = plan_file.change_set_problems(
        {
            "biomage-sqs-staging": {"id": "arn:ready"},
            "biomage-sns-staging": {"id": "arn:obsolete"},
            "biomage-s3-staging": "arn:gone",
            "biomage-dynamo-staging": {},
        },
        lambda _stack, change_set_id: found.get(change_set_id),
    )
    assert reasons == [
        "the plan file names no change set id for stack biomage-dynamo-staging",
        "change set arn:gone of stack biomage-s3-staging no longer exists",
        "change set arn:obsolete of stack biomage-sns-staging is CREATE_COMPLETE/OBSOLETE",
    ]


def test_a_plan_handed_on_by_a_workflow_is_checked_as_a_plan_file_is() -> None:
    fingerprint = plan_file.fingerprint({"cf/sqs.yaml": "a"}, {})
    stats = plan_file.handoff(fingerprint=fingerprint)
    assert stats == {"data": {"biomage_plan": {"fingerprint": fingerprint}}, "per_host": False, "aggregate": True}
    kept = {"biomage-sqs-staging": {"id": "arn:change-set"}}
    assert plan_file.handoff(change_sets=kept)["data"] == {"biomage_plan": {"change_sets": kept}}
    plan = {"fingerprint": fingerprint, "change_sets": kept}
    assert plan_file.handed_on(plan) is plan
    for bad, said in [
        ({"change_sets": kept}, "has no fingerprint"),
        ({"fingerprint": {**fingerprint, "format": 0}}, "has format 0"),
        ({"fingerprint": fingerprint, "change_sets": ["arn:change-set"]}, "not a mapping of stack names"),
    ]:
        with pytest.raises(plan_file.PlanFileError, match=said) as caught:
            plan_file.handed_on(bad)
        assert "biomage_plan" in str(caught.value) and "workflow" in str(caught.value)
    error = str(plan_file.refusal(plan_file.HANDED_ON, ["input cf/sqs.yaml changed"]))
    assert error.startswith("refusing to apply the plan handed on by the workflow's plan job")
    assert "run the workflow again from its plan job" in error and "plan file" not in error
