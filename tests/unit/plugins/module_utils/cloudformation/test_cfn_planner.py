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


def test_a_missing_external_import_blocks_only_its_stack_and_dependants() -> None:
    # issue 11 changed this: an import nobody exports no longer blocks the whole run
    items = [
        item("c", queue_template("c", export="c-out", import_="elsewhere-out")),
        item("d", queue_template("d", import_="c-out")),  # depends on c through its export
        item("alone", queue_template("a")),
    ]
    run = converge(FakeCfn(), items)
    assert run.results["c"].blocked and "imports elsewhere-out, which no stack exports" in run.results["c"].error
    assert run.results["d"].blocked and run.results["d"].error == "not deployed: it depends on c, which is blocked"
    assert run.results["alone"].status == "CREATE_COMPLETE" and not run.results["alone"].error
    assert [e["action"] for e in run.plan_entries()] == ["create", "create", "create"]
    assert run.plan_entries()[1]["reason"].startswith("blocked: cf/c.yaml: imports elsewhere-out")

    fake = FakeCfn()
    run = runner(fake, check_mode=True)
    run.plan(prepare(items, ENV, GROUP, "eu-west-1"))
    assert any("elsewhere-out" in w for w in run.warnings) and not run.results["c"].error
    fake.exports = ["elsewhere-out"]
    assert converge(fake, items).results["c"].status == "CREATE_COMPLETE"


def test_several_problems_of_one_stack_count_it_once() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV}, owned_tags("s", group="irsa"), status="ROLLBACK_COMPLETE")
    with pytest.raises(PlanFailed) as failure:
        converge(fake, [item("s", queue_template())])
    assert len(failure.value.problems) == 2
    assert str(failure.value).startswith("1 stack(s) block the run; nothing was changed")


class ExportingCfn(FakeCfn):
    """ListExports with values and exporting stacks, like CloudFormation's."""

    def list_exports(self, NextToken: str | None = None) -> dict:
        self._record("list_exports", {})
        return {
            "Exports": [
                {
                    "Name": "eksctl-biomage-development-cluster::VPC",
                    "Value": "vpc-0123",
                    "ExportingStackId": self.stacks["eksctl-biomage-development-cluster"]["StackId"],
                }
            ]
        }


def test_imports_of_another_owners_export_are_shown_and_wait_for_its_stack() -> None:
    fake = ExportingCfn()
    # eksctl's stack (no ownership tags of ours), being updated by eksctl right now
    fake.add("eksctl-biomage-development-cluster", queue_template("k"), {}, {}, status="UPDATE_IN_PROGRESS")
    fake.status_script["eksctl-biomage-development-cluster"] = ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]
    items = [item("r", queue_template("r", import_="eksctl-biomage-${Environment}-cluster::VPC"))]
    sleeps: list[float] = []
    run = runner(fake, sleeps)
    run.plan(prepare(items, ENV, GROUP, "eu-west-1"))
    run.apply()
    result = run.results["r"]
    assert result.status == "CREATE_COMPLETE"
    assert result.imports == [
        {
            "name": "eksctl-biomage-development-cluster::VPC",
            "value": "vpc-0123",
            "exporter": "eksctl-biomage-development-cluster",
        }
    ]
    assert (
        "imports eksctl-biomage-development-cluster::VPC = vpc-0123 (from stack eksctl-biomage-development-cluster)"
        in result.notes
    )
    assert any("waited for eksctl-biomage-development-cluster (UPDATE_IN_PROGRESS)" in n for n in result.notes)
    assert fake.order == ["r"] and sleeps, "the importer was created after the exporter settled"
    diff = next(d for d in run.diffs() if d.get("after_header") == "r parameters and tags (desired)")
    assert (
        'eksctl-biomage-development-cluster::VPC: "vpc-0123" (stack eksctl-biomage-development-cluster)'
        in diff["after"]
    )


def test_every_stack_has_a_plan_entry() -> None:
    fake = FakeCfn()
    deployed(fake, "same", queue_template("same"))
    deployed(fake, "edited", queue_template("edited"))
    deployed(fake, "gone", queue_template("gone"))
    fake.add("theirs", queue_template("theirs"), {"Environment": ENV, "Secret": ""}, {})
    run = runner(fake, check_mode=True, prune=True)
    run.plan(
        prepare(
            [
                item("same", queue_template("same")),
                item("edited", queue_template("edited", extra="\n      DelaySeconds: 5")),
                item("new", queue_template("new")),
                item("theirs", queue_template("theirs")),
            ],
            ENV,
            GROUP,
            "eu-west-1",
        )
    )
    assert {(e["kind"], e["name"], e["action"], e["reason"]) for e in run.plan_entries()} == {
        ("CloudFormation stack", "edited", "update", "template"),
        ("CloudFormation stack", "gone", "delete", "orphan: template cf/gone.yaml is no longer in the set"),
        ("CloudFormation stack", "new", "create", "stack does not exist"),
        ("CloudFormation stack", "same", "unchanged", ""),
        (
            "CloudFormation stack",
            "theirs",
            "adopt",
            "no ownership tags (created outside biomage.iac): adopted by adding them",
        ),
    }
    assert fake.writes() == ["create_change_set", "delete_change_set"]  # the preview of "edited" only
