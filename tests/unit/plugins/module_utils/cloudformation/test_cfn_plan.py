"""The CloudFormation planner against a scripted in-memory client: call budgets, recovery, waits,
ordering, ownership and check mode, including the states moto never reaches."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, make_client
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import stacks as cfn_plan
from botocore.parsers import ResponseParserError
from devstack import free_port

from tests.lib.fake_cfn import FakeCfn

ENV = "development"
GROUP = "aws-resources"


def queue_template(queue: str = "jobs", export: str | None = None, import_: str | None = None, extra: str = "") -> str:
    text = f"""---
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Environment:
    Type: String
    AllowedValues: [development, staging, production]
  Secret:
    Type: String
    Default: ""
    NoEcho: true
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName:
        Fn::Sub: "{queue}-${{Environment}}"{extra}
"""
    if import_:
        text += f"""      Tags:
        - Key: upstream
          Value:
            Fn::ImportValue:
              Fn::Sub: "{import_}"
"""
    if export:
        text += f"""Outputs:
  QueueArn:
    Value:
      Fn::GetAtt: [Queue, Arn]
    Export:
      Name:
        Fn::Sub: "{export}"
"""
    return text


def item(name: str, body: str, **extra: object) -> dict:
    return {
        "name": name,
        "template_body": body,
        "template_label": f"cf/{name}.yaml",
        "parameters": {"Environment": ENV},
        **extra,
    }


def owned_tags(name: str, group: str = GROUP, environment: str = ENV) -> dict[str, str]:
    return {
        cfn_plan.OWNER_TAG: cfn_plan.OWNER_VALUE,
        cfn_plan.ENVIRONMENT_TAG: environment,
        cfn_plan.GROUP_TAG: group,
        cfn_plan.TEMPLATE_TAG: f"cf/{name}.yaml",
    }


def deployed(fake: FakeCfn, name: str, body: str, **extra: object) -> None:
    fake.add(name, body, {"Environment": ENV, "Secret": "****"}, owned_tags(name), **extra)


def runner(fake: FakeCfn, sleeps: list[float] | None = None, **options: object) -> cfn_plan.CfnStacks:
    record = sleeps if sleeps is not None else []
    return cfn_plan.CfnStacks(
        fake,
        ENV,
        GROUP,
        settings={"region": "eu-west-1"},
        deploy_method=options.pop("deploy_method", "direct"),
        poll_delay=1.0,
        max_poll_delay=4.0,
        sleep=record.append,
        **options,
    )


def converge(fake: FakeCfn, items: list[dict], **options: object) -> cfn_plan.CfnStacks:
    run = runner(fake, **options)
    run.plan(cfn_plan.prepare(items, ENV, GROUP, "eu-west-1"))
    run.apply()
    return run


def test_unchanged_stacks_cost_at_most_two_calls_and_no_change_set() -> None:
    fake = FakeCfn()
    items = [item(f"s{i}", queue_template(f"q{i}")) for i in range(5)]
    for i in range(5):
        deployed(fake, f"s{i}", queue_template(f"q{i}"))
    run = converge(fake, items)
    assert {r.action for r in run.results.values()} == {cfn_plan.UNCHANGED}
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
    assert run.results["s"].action == cfn_plan.UNCHANGED
    assert any("formatting" in note for note in run.results["s"].notes)


def test_parameter_and_tag_changes_are_updates_with_a_readable_masked_diff() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template())
    fake.stacks["s"]["Tags"].append({"Key": "team", "Value": "old"})
    run = runner(fake, check_mode=True)
    run.plan(
        cfn_plan.prepare(
            [item("s", queue_template(), tags={"team": "new"}, parameters={"Environment": ENV, "Secret": "hush"})],
            ENV,
            GROUP,
            "eu-west-1",
        )
    )
    result = run.results["s"]
    assert result.action == cfn_plan.UPDATE
    assert result.reasons == ["tags: team"]  # NoEcho Secret is not compared
    diffs = [d for d in run.diffs() if "prepared" not in d]
    assert len(diffs) == 1  # template unchanged: only parameters and tags
    assert 'team: "new"' in diffs[0]["after"] and 'team: "old"' in diffs[0]["before"]
    assert "hush" not in diffs[0]["after"] and "Secret: ****" in diffs[0]["after"]


def test_check_mode_previews_updates_with_a_deleted_change_set_and_never_writes_a_create() -> None:
    fake = FakeCfn()
    deployed(fake, "old", queue_template())
    run = runner(fake, check_mode=True)
    run.plan(
        cfn_plan.prepare(
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
    assert run.results["new"].action == cfn_plan.CREATE
    assert run.results["new"].changes == [{"action": "Add", "logical_id": "Queue", "type": "AWS::SQS::Queue"}]
    template_diff = next(d for d in run.diffs() if d.get("after_header") == "old (cf/old.yaml)")
    assert {"prepared": "old: update (template)\n  Modify Queue (AWS::SQS::Queue)\n"} in run.diffs()
    assert "DelaySeconds: 5" in cfn_plan.unified_diff(template_diff["before"], template_diff["after"], "a", "b")


def test_change_set_method_executes_the_change_set_it_describes() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template())
    run = converge(fake, [item("s", queue_template(extra="\n      DelaySeconds: 5"))], deploy_method="change_set")
    assert fake.writes() == ["create_change_set", "execute_change_set"]
    assert run.results["s"].status == "UPDATE_COMPLETE" and run.results["s"].changes


def test_validation_failure_happens_before_any_api_call() -> None:
    fake = FakeCfn()
    bad = queue_template().replace("production]", "prod]")
    with pytest.raises(cfn_plan.ValidationFailed) as failure:
        converge(fake, [item("good", queue_template()), item("bad", bad)])
    assert fake.calls == []
    assert any("cf/bad.yaml" in d and "BIO001" in d for d in failure.value.details)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Environment": "prod"}, "is not one of"),
        ({"Environment": ENV, "Nope": "x"}, "Nope are not declared"),
        ({}, "Environment has no default"),
    ],
)
def test_parameters_are_checked_against_their_declarations(parameters: dict, message: str) -> None:
    with pytest.raises(cfn_plan.ValidationFailed) as failure:
        cfn_plan.prepare([{**item("s", queue_template()), "parameters": parameters}], ENV, GROUP, "eu-west-1")
    assert any(message in d for d in failure.value.details), failure.value.details


def test_rollback_complete_blocks_the_whole_run_without_the_option() -> None:
    fake = FakeCfn()
    deployed(fake, "broken", queue_template(), status="ROLLBACK_COMPLETE")
    with pytest.raises(cfn_plan.PlanFailed) as failure:
        converge(fake, [item("new", queue_template("n")), item("broken", queue_template())])
    assert fake.writes() == []  # not even the new stack was created
    assert "recreate_rollback_complete: true" in failure.value.details[0]


def test_rollback_complete_is_deleted_and_recreated_with_the_option() -> None:
    fake = FakeCfn()
    deployed(fake, "broken", queue_template(), status="ROLLBACK_COMPLETE")
    run = converge(fake, [item("broken", queue_template())], recreate_rollback_complete=True)
    assert fake.writes() == ["delete_stack", "create_stack"]
    assert run.results["broken"].action == cfn_plan.RECREATE
    assert fake.stacks["broken"]["StackStatus"] == "CREATE_COMPLETE"


def test_update_rollback_failed_continues_the_rollback_then_updates() -> None:
    fake = FakeCfn()
    deployed(fake, "stuck", queue_template(), status="UPDATE_ROLLBACK_FAILED")
    run = converge(fake, [item("stuck", queue_template(extra="\n      DelaySeconds: 5"))])
    assert fake.writes() == ["continue_update_rollback", "update_stack"]
    assert run.results["stuck"].status == "UPDATE_COMPLETE"
    assert run.results["stuck"].action == cfn_plan.CONTINUE_ROLLBACK


def test_stacks_left_in_progress_are_waited_for_with_exponential_backoff() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS"] * 4 + ["UPDATE_COMPLETE"]
    sleeps: list[float] = []
    run = runner(fake, sleeps)
    run.plan(cfn_plan.prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))
    assert sleeps == [1.0, 2.0, 4.0, 4.0]  # doubling, capped at max_poll_delay
    assert run.results["busy"].action == cfn_plan.UNCHANGED
    assert any("waited for UPDATE_IN_PROGRESS" in n for n in run.results["busy"].notes)


def test_a_wait_that_never_ends_times_out_with_the_fix() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS"] * 100
    clock = iter(range(0, 10_000, 10))
    run = cfn_plan.CfnStacks(fake, ENV, GROUP, wait_timeout=30, sleep=lambda _s: None, clock=lambda: next(clock))
    with pytest.raises(cfn_plan.CfnError, match="still UPDATE_IN_PROGRESS after 30s"):
        run.plan(cfn_plan.prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))


def test_exports_order_deploys_and_a_failed_exporter_skips_its_importers() -> None:
    fake = FakeCfn()
    items = [
        item("consumer", queue_template("c", import_="producer-arn-${Environment}")),
        item("producer", queue_template("p", export="producer-arn-${Environment}")),
        item("alone", queue_template("a")),
    ]
    specs = cfn_plan.prepare(items, ENV, GROUP, "eu-west-1")
    assert next(s for s in specs if s.name == "consumer").depends_on == {"producer"}
    converge(fake, items, max_workers=4)
    assert fake.order.index("producer") < fake.order.index("consumer")

    fake = FakeCfn()
    fake.fail_on[("create_stack", "producer")] = "ROLLBACK_COMPLETE"
    run = runner(fake, max_workers=4)
    run.plan(cfn_plan.prepare(items, ENV, GROUP, "eu-west-1"))
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


def test_import_cycles_are_refused() -> None:
    items = [
        item("a", queue_template("a", export="a-out", import_="b-out")),
        item("b", queue_template("b", export="b-out", import_="a-out")),
    ]
    with pytest.raises(cfn_plan.ValidationFailed, match="problem"):
        cfn_plan.prepare(items, ENV, GROUP, "eu-west-1")


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
    assert all(run.results[n].action == cfn_plan.DELETE for n in ("gone-exporter", "gone-importer"))


def test_a_stack_owned_by_another_group_blocks_the_run() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV}, owned_tags("s", group="irsa"))
    with pytest.raises(cfn_plan.PlanFailed, match="block the run"):
        converge(fake, [item("s", queue_template())])


def test_an_unowned_stack_of_the_same_name_is_adopted_by_tagging_it() -> None:
    fake = FakeCfn()
    fake.add("s", queue_template(), {"Environment": ENV, "Secret": ""}, {})
    run = converge(fake, [item("s", queue_template())])
    assert run.results["s"].action == cfn_plan.UPDATE
    assert run.results["s"].reasons == [
        "tags: biomage:environment, biomage:group, biomage:managed-by, biomage:template"
    ]
    assert converge(fake, [item("s", queue_template())]).results["s"].action == cfn_plan.UNCHANGED


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
    assert run.results["s"].action == cfn_plan.UNCHANGED
    assert any("nothing to deploy" in n for n in run.results["s"].notes)


@pytest.mark.parametrize("check_mode", [True, False])
def test_an_empty_change_set_refused_by_the_endpoint_is_unchanged(check_mode: bool) -> None:
    fake = FakeCfn()
    fake.refuse_empty_change_sets = True
    deployed(fake, "s", queue_template())
    fake.stacks["s"]["Capabilities"] = ["CAPABILITY_IAM"]
    run = converge(fake, [item("s", queue_template())], deploy_method="change_set", check_mode=check_mode)
    assert run.results["s"].action == cfn_plan.UNCHANGED and run.results["s"].error is None
    assert "create_change_set" in fake.writes() and "execute_change_set" not in fake.writes()


def test_iam_templates_get_the_capabilities_they_need() -> None:
    role = (Path(__file__).resolve().parents[5] / "cf/irsa-api-role.yaml").read_text()
    spec = cfn_plan.prepare(
        [
            {
                "name": "r",
                "template_body": role,
                "template_label": "cf/irsa-api-role.yaml",
                "parameters": {"Environment": ENV, "OIDCProvider": "oidc.example/id/X"},
            }
        ],
        ENV,
        GROUP,
        "eu-west-1",
    )[0]
    assert spec.capabilities == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


def test_a_missing_external_import_fails_a_real_run_and_warns_in_check_mode() -> None:
    items = [item("c", queue_template("c", import_="elsewhere-out"))]
    with pytest.raises(cfn_plan.PlanFailed, match="block the run"):
        converge(FakeCfn(), items)
    fake = FakeCfn()
    run = runner(fake, check_mode=True)
    run.plan(cfn_plan.prepare(items, ENV, GROUP, "eu-west-1"))
    assert any("elsewhere-out" in w for w in run.warnings)
    fake.exports = ["elsewhere-out"]
    assert converge(fake, items).results["c"].status == "CREATE_COMPLETE"


def test_an_unreachable_endpoint_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = {"region": "eu-west-1", "endpoint_url": dead, "max_attempts": 1, "connect_timeout": 1}
    client = make_client("cloudformation", settings)
    run = cfn_plan.CfnStacks(client, ENV, GROUP, settings=settings)
    with pytest.raises(AwsError) as failure:
        run.plan(cfn_plan.prepare([item("s", queue_template())], ENV, GROUP, "eu-west-1"))
    message = str(failure.value)
    assert f"cannot reach AWS at {dead}" in message
    assert "Fix: start the local AWS emulator with `make dev-up`" in message


def unreadable(operation: str) -> Exception:
    """What botocore raises for an HTML 500 page instead of an AWS response."""
    return ResponseParserError(f"Unable to parse response for {operation}: invalid XML received")


class FlakyCfn(FakeCfn):
    """create_stack's response is lost (``lost_after_create``: the stack exists) or never sent; reads fail once."""

    def __init__(self, lost_after_create: bool) -> None:
        super().__init__()
        self.lost_after_create = lost_after_create
        self.flaky_describes = 1
        self.failed_creates = 0

    def create_stack(self, **kwargs: Any) -> dict[str, Any]:
        if self.failed_creates == 0:
            self.failed_creates += 1
            if self.lost_after_create:
                super().create_stack(**kwargs)
            raise unreadable("CreateStack")
        return super().create_stack(**kwargs)

    def describe_stacks(self, StackName: str | None = None, NextToken: str | None = None) -> dict[str, Any]:
        if StackName is None and self.flaky_describes:
            self.flaky_describes -= 1
            self._record("describe_stacks", {"StackName": StackName, "NextToken": NextToken})
            raise unreadable("DescribeStacks")
        return super().describe_stacks(StackName=StackName, NextToken=NextToken)


@pytest.mark.parametrize("lost_after_create", [True, False], ids=["response-lost", "request-lost"])
def test_an_unreadable_response_is_recovered_without_a_duplicate_or_a_missing_stack(lost_after_create: bool) -> None:
    fake = FlakyCfn(lost_after_create)
    run = converge(fake, [item("jobs", queue_template())])
    result = run.results["jobs"]
    assert (result.error, result.status) == (None, "CREATE_COMPLETE")
    # one create reached the fake either way: no duplicate after a lost response, a retry after a lost request
    assert fake.ops().count("create_stack") == 1 and fake.failed_creates == 1
    assert list(fake.stacks) == ["jobs"]


def test_an_unreadable_response_to_a_create_of_someone_elses_stack_is_not_adopted() -> None:
    fake = FlakyCfn(lost_after_create=False)
    fake.flaky_describes = 0
    original = fake.create_stack

    def foreign_then_unreadable(**kwargs: Any) -> dict[str, Any]:
        fake.add("jobs", queue_template(), {}, {})  # created meanwhile by another tool
        fake.create_stack = original  # type: ignore[method-assign]
        raise unreadable("CreateStack")

    fake.create_stack = foreign_then_unreadable  # type: ignore[method-assign]
    run = converge(fake, [item("jobs", queue_template())])
    assert "Unable to parse response" in (run.results["jobs"].error or "")
