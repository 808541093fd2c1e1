"""The apply against a scripted in-memory client: deploy methods, recovery, export order, concurrency,
adoption, pruning and changes CloudFormation finds nothing to deploy for."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import (
    ADOPT,
    CONTINUE_ROLLBACK,
    DELETE,
    RECREATE,
    UNCHANGED,
    UPDATE,
    StackResult,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

from tests.lib.cfn_scenarios import ENV, GROUP, converge, deployed, item, owned_tags, queue_template, runner
from tests.lib.fake_cfn import FakeCfn


def test_change_set_method_executes_the_change_set_it_describes() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template())
    run = converge(fake, [item("s", queue_template(extra="\n      DelaySeconds: 5"))], deploy_method="change_set")
    assert fake.writes() == ["create_change_set", "execute_change_set"]
    assert run.results["s"].status == "UPDATE_COMPLETE" and run.results["s"].changes


def test_rollback_complete_is_deleted_and_recreated_with_the_option() -> None:
    fake = FakeCfn()
    deployed(fake, "broken", queue_template(), status="ROLLBACK_COMPLETE")
    run = converge(fake, [item("broken", queue_template())], recreate_rollback_complete=True)
    assert fake.writes() == ["delete_stack", "create_stack"]
    assert run.results["broken"].action == RECREATE
    assert fake.stacks["broken"]["StackStatus"] == "CREATE_COMPLETE"


def test_update_rollback_failed_continues_the_rollback_then_updates() -> None:
    fake = FakeCfn()
    deployed(fake, "stuck", queue_template(), status="UPDATE_ROLLBACK_FAILED")
    run = converge(fake, [item("stuck", queue_template(extra="\n      DelaySeconds: 5"))])
    assert fake.writes() == ["continue_update_rollback", "update_stack"]
    assert run.results["stuck"].status == "UPDATE_COMPLETE"
    assert run.results["stuck"].action == CONTINUE_ROLLBACK


def test_exports_order_deploys_and_a_failed_exporter_skips_its_importers() -> None:
    fake = FakeCfn()
    items = [
        item("consumer", queue_template("c", import_="producer-arn-${Environment}")),
        item("producer", queue_template("p", export="producer-arn-${Environment}")),
        item("alone", queue_template("a")),
    ]
    specs = prepare(items, ENV, GROUP, "eu-west-1")
    assert next(s for s in specs if s.name == "consumer").depends_on == {"producer"}
    converge(fake, items, max_workers=4)
    assert fake.order.index("producer") < fake.order.index("consumer")

    fake = FakeCfn()
    fake.fail_on[("create_stack", "producer")] = "ROLLBACK_COMPLETE"
    run = runner(fake, max_workers=4)
    run.plan(prepare(items, ENV, GROUP, "eu-west-1"))
    run.apply()
    assert "ROLLBACK_COMPLETE" in run.results["producer"].error
    assert "Queue name already taken" in run.results["producer"].error  # the failed event's reason
    assert run.results["consumer"].error == "not deployed: it depends on producer, which failed"
    assert "consumer" not in fake.stacks
    assert run.results["alone"].error is None and fake.stacks["alone"]["StackStatus"] == "CREATE_COMPLETE"


class OverlapCfn(FakeCfn):
    """create_stack holds every caller at a barrier of ``width``: only that many at once can pass it."""

    def __init__(self, width: int, timeout: float = 10) -> None:
        super().__init__()
        self.barrier = threading.Barrier(width, timeout=timeout)
        self.in_flight = 0
        self.most_in_flight = 0
        self._flight = threading.Lock()

    def create_stack(self, **kwargs: Any) -> dict[str, Any]:
        with self._flight:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.barrier.wait()  # BrokenBarrierError (a failed stack) unless `width` deploys run together
            return super().create_stack(**kwargs)
        finally:
            with self._flight:
                self.in_flight -= 1


def test_independent_stacks_deploy_concurrently_within_max_workers() -> None:
    fake = OverlapCfn(width=3)
    items = [item(f"s{i}", queue_template(f"q{i}")) for i in range(6)]
    run = converge(fake, items, max_workers=3)
    assert {name: r.error for name, r in run.results.items()} == {f"s{i}": None for i in range(6)}
    assert fake.most_in_flight == 3, "max_workers bounds the deploys running at once"

    serial = OverlapCfn(width=2, timeout=0.5)  # two at once can never meet with one worker: both stacks fail
    run = converge(serial, items[:2], max_workers=1)
    assert serial.most_in_flight == 1
    assert all(r.error for r in run.results.values()) and serial.stacks == {}


def test_orphans_are_reported_and_deleted_only_when_pruning_importers_first() -> None:
    fake = FakeCfn()
    deployed(fake, "kept", queue_template())
    deployed(
        fake,
        "gone-exporter",
        queue_template("e", export="gone-out"),
        outputs=[{"OutputKey": "QueueArn", "OutputValue": "x", "ExportName": "gone-out"}],
    )
    deployed(fake, "gone-importer", queue_template("i", import_="gone-out"))
    fake.add("foreign", queue_template(), {}, owned_tags("foreign", group="irsa"))
    fake.add("unowned", queue_template(), {}, {})

    run = converge(fake, [item("kept", queue_template())])
    assert sorted(run.orphans) == ["gone-exporter", "gone-importer"]
    assert fake.writes() == [] and any("prune" in w for w in run.warnings)
    orphan = run.results["gone-importer"].to_dict()
    assert (orphan["action"], orphan["template"], orphan["changed"]) == ("skipped", "cf/gone-importer.yaml", False)

    run = converge(fake, [item("kept", queue_template())], prune=True)
    assert fake.order == ["delete:gone-importer", "delete:gone-exporter"]
    assert sorted(fake.stacks) == ["foreign", "kept", "unowned"]
    assert all(run.results[n].action == DELETE for n in ("gone-exporter", "gone-importer"))


@pytest.mark.parametrize("deploy_method", ["change_set", "direct"])
def test_an_unowned_stack_of_the_same_name_is_adopted_by_tagging_it(deploy_method: str) -> None:
    # issue 11 changed this: adoption is its own plan action and changes the tags only
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV, "Secret": ""}, {"owner": "old-pipeline"})
    run = converge(fake, [item("s", queue_template())], deploy_method=deploy_method)
    result = run.results["s"]
    assert result.action == ADOPT and result.changed and result.error is None
    assert result.plan_entry() == {
        "kind": "CloudFormation stack",
        "name": "s",
        "action": "adopt",
        "reason": "no ownership tags (created outside biomage.iac): adopted by adding them",
    }
    write = next(kwargs for op, kwargs in fake.calls if op in ("create_change_set", "update_stack"))
    assert write["UsePreviousTemplate"] is True and "TemplateBody" not in write
    assert write["Parameters"] == [
        {"ParameterKey": "Environment", "UsePreviousValue": True},
        {"ParameterKey": "Secret", "UsePreviousValue": True},
    ]
    assert {t["Key"]: t["Value"] for t in write["Tags"]} == {"owner": "old-pipeline", **owned_tags("s")}
    # the stack's own tag is not desired: the next run (the stack is ours now) removes it
    assert result.pending == ["tags: owner (not desired: removed)"]
    again = converge(fake, [item("s", queue_template())], deploy_method=deploy_method)
    assert again.results["s"].action == UPDATE and again.results["s"].reasons == ["tags: owner"]
    assert converge(fake, [item("s", queue_template())], deploy_method=deploy_method).results["s"].action == UNCHANGED


def test_adoption_leaves_template_and_parameter_differences_to_the_next_run() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV, "Secret": ""}, {})
    desired = [item("s", queue_template(extra="\n      DelaySeconds: 5"))]
    run = converge(fake, desired)
    assert run.results["s"].action == ADOPT and run.results["s"].pending == ["template"]
    assert fake.stacks["s"]["_template"] == queue_template()  # untouched by the adoption
    assert any("the next run plans the other differences: template" in n for n in run.results["s"].notes)
    assert converge(fake, desired).results["s"].action == UPDATE
    assert "DelaySeconds: 5" in fake.stacks["s"]["_template"]


def test_a_failed_stack_not_created_by_us_is_never_deleted_or_repaired() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV, "Secret": ""}, {}, status="ROLLBACK_COMPLETE")
    with pytest.raises(PlanFailed) as failure:
        converge(fake, [item("s", queue_template())], recreate_rollback_complete=True)
    assert "was not created by biomage.iac" in failure.value.problems[0]
    assert fake.writes() == []


def test_prune_never_deletes_a_stack_that_is_not_ours() -> None:
    fake = FakeCfn()
    deployed(fake, "kept", queue_template())
    fake.add("biomage-gone-development", queue_template("g"), {}, {})  # the old pipeline's naming, no tags
    fake.add("other-env", queue_template("o"), {}, owned_tags("other-env", environment="staging"))
    run = converge(fake, [item("kept", queue_template())], prune=True)
    assert run.orphans == [] and fake.writes() == []
    assert sorted(fake.stacks) == ["biomage-gone-development", "kept", "other-env"]
    # and the applier refuses it even if it were handed one
    orphan = StackResult("biomage-gone-development")
    orphan.deployed = fake.stacks["biomage-gone-development"]
    orphan.action = DELETE
    run.applier.prune([orphan])
    assert "not owned by biomage.iac development/aws-resources" in orphan.error
    assert "biomage-gone-development" in fake.stacks


def test_nothing_to_deploy_is_reported_as_unchanged() -> None:
    fake = FakeCfn()
    body = queue_template()
    deployed(fake, "s", body)
    fake.stacks["s"]["Capabilities"] = ["CAPABILITY_IAM"]  # a difference CloudFormation cannot apply alone
    fake.stacks["s"]["Parameters"] = [
        {"ParameterKey": "Environment", "ParameterValue": ENV},
        {"ParameterKey": "Secret", "ParameterValue": ""},
    ]
    run = converge(fake, [item("s", body)])
    assert run.results["s"].action == UNCHANGED
    assert any("nothing to deploy" in n for n in run.results["s"].notes)


@pytest.mark.parametrize("check_mode", [True, False])
def test_an_empty_change_set_refused_by_the_endpoint_is_unchanged(check_mode: bool) -> None:
    fake = FakeCfn()
    fake.refuse_empty_change_sets = True
    deployed(fake, "s", queue_template())
    fake.stacks["s"]["Capabilities"] = ["CAPABILITY_IAM"]
    run = converge(fake, [item("s", queue_template())], deploy_method="change_set", check_mode=check_mode)
    assert run.results["s"].action == UNCHANGED and run.results["s"].error is None
    assert "create_change_set" in fake.writes() and "execute_change_set" not in fake.writes()
