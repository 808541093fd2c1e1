"""Plan files and change sets: a plan run keeps the change sets it planned; an apply executes exactly
those, or refuses before any change when the stack, the inputs or the change set moved since."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import UPDATE
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

from tests.lib.cfn_scenarios import ENV, GROUP, REGION, deployed, item, queue_template, runner
from tests.lib.fake_cfn import FakeCfn

DELAYED = queue_template(extra="\n      DelaySeconds: 5")


def plan(fake: FakeCfn, body: str = DELAYED, **options: object):
    run = runner(fake, check_mode=True, deploy_method="change_set", **options)
    run.plan(prepare([item("s", body)], ENV, GROUP, REGION))
    run.apply()
    return run


def apply(fake: FakeCfn, planned: dict, body: str = DELAYED):
    run = runner(fake, deploy_method="change_set", planned_change_sets=planned)
    run.plan(prepare([item("s", body)], ENV, GROUP, REGION))
    run.apply()
    return run


def planned_fake() -> tuple[FakeCfn, dict]:
    fake = FakeCfn()
    deployed(fake, "s", queue_template(), CreationTime="2026-12-01T10:00:00+00:00")
    kept = plan(fake, keep_change_sets=True).kept_change_sets()
    fake.calls.clear()
    return fake, kept


def test_a_plan_without_a_plan_file_deletes_its_change_set() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template())
    run = plan(fake)
    assert fake.writes() == ["create_change_set", "delete_change_set"]
    assert fake.change_sets == {} and run.kept_change_sets() == {}


def test_a_plan_for_a_plan_file_keeps_the_change_set_and_records_it() -> None:
    fake, kept = planned_fake()
    record = kept["s"]
    assert list(fake.change_sets) == [record["id"]]
    assert record["stack_id"] == fake.stacks["s"]["StackId"]
    assert record["stack_state"] == "CREATE_COMPLETE@2026-12-01T10:00:00+00:00"
    assert len(record["request"]) == 64


def test_an_apply_executes_exactly_the_planned_change_set() -> None:
    fake, kept = planned_fake()
    run = apply(fake, kept)
    assert fake.writes() == ["execute_change_set"]
    assert [kwargs["ChangeSetName"] for op, kwargs in fake.calls if op == "execute_change_set"] == [kept["s"]["id"]]
    result = run.results["s"]
    assert (result.action, result.status, result.error) == (UPDATE, "UPDATE_COMPLETE", None)
    assert result.changes == [{"action": "Modify", "logical_id": "Queue", "type": "AWS::SQS::Queue"}]
    assert result.to_dict()["change_set"] == kept["s"]["id"]
    assert "DelaySeconds: 5" in fake.stacks["s"]["_template"]


def test_an_id_alone_is_executed_too() -> None:
    fake, kept = planned_fake()
    apply(fake, {"s": kept["s"]["id"]})
    assert fake.writes() == ["execute_change_set"]


def test_stacks_of_other_calls_are_ignored_and_others_planned_as_always() -> None:
    fake, _kept = planned_fake()
    apply(fake, {"elsewhere": "arn:changeSet/x"})
    assert fake.writes() == ["create_change_set", "execute_change_set"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("template", "differ from those the change set was planned with"),
        ("gone", "the change set no longer exists"),
        ("stack", "the stack changed since the plan (CREATE_COMPLETE@2026-12-01T10:00:00+00:00 -> UPDATE_COMPLETE@"),
        ("applied", "no longer differs from its template"),
        ("executed", "is CREATE_COMPLETE/EXECUTE_COMPLETE, not CREATE_COMPLETE/AVAILABLE"),
    ],
)
def test_an_apply_refuses_before_any_change_when_something_moved(change: str, said: str) -> None:
    fake, kept = planned_fake()
    body = DELAYED
    if change == "template":
        body = queue_template(extra="\n      DelaySeconds: 9")
    elif change == "gone":
        fake.change_sets.clear()
    elif change == "stack":
        fake.stacks["s"].update(StackStatus="UPDATE_COMPLETE", LastUpdatedTime="2026-12-02T08:00:00+00:00")
    elif change == "applied":
        fake.stacks["s"]["_template"] = DELAYED
    elif change == "executed":
        fake.change_sets[kept["s"]["id"]]["ExecutionStatus"] = "EXECUTE_COMPLETE"
    with pytest.raises(PlanFailed) as refused:
        apply(fake, kept, body)
    assert said in str(refused.value)
    assert f"s: not applying planned change set {kept['s']['id']}" in str(refused.value)
    assert "nothing was changed" in str(refused.value) and "Fix: review the new plan" in str(refused.value)
    assert fake.writes() == []


def test_check_mode_ignores_planned_change_sets() -> None:
    fake, kept = planned_fake()
    plan(fake, planned_change_sets=kept)
    assert fake.writes() == ["create_change_set", "delete_change_set"]
