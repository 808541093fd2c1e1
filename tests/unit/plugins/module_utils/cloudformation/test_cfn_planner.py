"""The plan against a scripted in-memory client: call budgets, states, ownership, imports and check
mode, including the states moto never reaches."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.render import unified_diff
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import CREATE, UNCHANGED
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

from tests.lib.cfn_scenarios import ENV, GROUP, converge, deployed, item, owned_tags, queue_template, runner
from tests.lib.fake_cfn import FakeCfn


def test_unchanged_stacks_cost_at_most_two_calls_and_no_change_set() -> None:
    fake = FakeCfn()
    items = [item(f"s{i}", queue_template(f"q{i}")) for i in range(5)]
    for i in range(5):
        deployed(fake, f"s{i}", queue_template(f"q{i}"))
    run = converge(fake, items)
    assert {r.action for r in run.results.values()} == {UNCHANGED}
    assert fake.writes() == []
    assert fake.ops().count("get_template") == 5
    assert fake.ops().count("describe_stacks") == 3  # one paginated listing, 2 stacks a page
    assert len(fake.calls) <= 2 * len(items)
    assert all(r.api_calls == 1 for r in run.results.values())
    assert run.shared_api_calls == 3


def test_formatting_and_comments_are_not_changes() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template().replace("Resources:", "# a comment\nResources:"))
    run = converge(fake, [item("s", queue_template())])
    assert run.results["s"].action == UNCHANGED
    assert any("formatting" in note for note in run.results["s"].notes)


def test_check_mode_previews_updates_with_a_deleted_change_set_and_never_writes_a_create() -> None:
    fake = FakeCfn()
    deployed(fake, "old", queue_template())
    run = runner(fake, check_mode=True)
    run.plan(
        prepare(
            [item("old", queue_template(extra="\n      DelaySeconds: 5")), item("new", queue_template("n"))],
            ENV,
            GROUP,
            "eu-west-1",
        )
    )
    run.apply()
    assert fake.writes() == ["create_change_set", "delete_change_set"]
    assert fake.change_sets == {} and "new" not in fake.stacks
    assert run.results["old"].changes == [{"action": "Modify", "logical_id": "Queue", "type": "AWS::SQS::Queue"}]
    assert run.results["new"].action == CREATE
    assert run.results["new"].changes == [{"action": "Add", "logical_id": "Queue", "type": "AWS::SQS::Queue"}]
    template_diff = next(d for d in run.diffs() if d.get("after_header") == "old (cf/old.yaml)")
    assert {"prepared": "old: update (template)\n  Modify Queue (AWS::SQS::Queue)\n"} in run.diffs()
    assert "DelaySeconds: 5" in unified_diff(template_diff["before"], template_diff["after"], "a", "b")


def test_rollback_complete_blocks_the_whole_run_without_the_option() -> None:
    fake = FakeCfn()
    deployed(fake, "broken", queue_template(), status="ROLLBACK_COMPLETE")
    with pytest.raises(PlanFailed) as failure:
        converge(fake, [item("new", queue_template("n")), item("broken", queue_template())])
    assert fake.writes() == []  # not even the new stack was created
    assert "recreate_rollback_complete: true" in failure.value.problems[0]


def test_a_stack_owned_by_another_group_blocks_the_run() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV}, owned_tags("s", group="irsa"))
    with pytest.raises(PlanFailed, match="block the run"):
        converge(fake, [item("s", queue_template())])


def test_a_missing_external_import_fails_a_real_run_and_warns_in_check_mode() -> None:
    items = [item("c", queue_template("c", import_="elsewhere-out"))]
    with pytest.raises(PlanFailed, match="block the run"):
        converge(FakeCfn(), items)
    fake = FakeCfn()
    run = runner(fake, check_mode=True)
    run.plan(prepare(items, ENV, GROUP, "eu-west-1"))
    assert any("elsewhere-out" in w for w in run.warnings)
    fake.exports = ["elsewhere-out"]
    assert converge(fake, items).results["c"].status == "CREATE_COMPLETE"
