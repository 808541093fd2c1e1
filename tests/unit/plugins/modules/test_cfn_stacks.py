"""The cfn_stacks module end to end in-process, on the scripted CloudFormation client: validate_only,
failures before any change (message, problems), a converge and its result, a failed stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.biomage.iac.plugins.modules import cfn_stacks

from tests.lib.cfn_scenarios import ENV, GROUP, REGION, item, queue_template
from tests.lib.fake_cfn import FakeCfn


class Exit(Exception):
    def __init__(self, result: dict[str, Any], failed: bool) -> None:
        super().__init__(result.get("msg"))
        self.result = result
        self.failed = failed


def run_module(args: dict[str, Any], fake: FakeCfn) -> Exit:
    def exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
        raise Exit(kwargs, failed=False)

    def fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> None:
        raise Exit({"msg": msg, **kwargs}, failed=True)

    def module_client(module: object, service: str, counter: object = None, max_pool_connections: int = 10) -> FakeCfn:
        assert service == "cloudformation" and max_pool_connections >= 10
        return fake

    full = {"environment": ENV, "group": GROUP, "region": REGION, "deploy_method": "direct", "poll_delay": 0.0, **args}
    with (
        patch_module_args(full),
        mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json),
        mock.patch.object(cfn_stacks, "module_client", module_client),
        pytest.raises(Exit) as outcome,
    ):
        cfn_stacks.main()
    return outcome.value


def test_validate_only_makes_no_aws_call() -> None:
    fake = FakeCfn()
    out = run_module({"stacks": [item("s", queue_template())], "validate_only": True}, fake)
    assert not out.failed and fake.calls == []
    assert out.result["stacks"] == [{"name": "s", "template": "cf/s.yaml", "action": "validated"}]
    assert out.result["summary"] == {"validated": 1} and out.result["plan"] == []


def test_bad_inputs_fail_with_every_problem_before_any_call() -> None:
    fake = FakeCfn()
    bad = queue_template().replace("production]", "prod]")
    out = run_module({"stacks": [item("good", queue_template()), item("bad", bad)]}, fake)
    assert out.failed and out.result["changed"] is False and fake.calls == []
    assert out.result["msg"].startswith("1 problem(s) in the templates or their inputs; nothing was changed\n- ")
    assert len(out.result["problems"]) == 1 and "BIO001" in out.result["problems"][0]


def test_a_converge_reports_stacks_outputs_and_calls_and_is_idempotent() -> None:
    fake = FakeCfn()
    out = run_module({"stacks": [item("s", queue_template())]}, fake)
    assert not out.failed and out.result["changed"] is True
    assert [(s["name"], s["action"], s["status"]) for s in out.result["stacks"]] == [("s", "create", "CREATE_COMPLETE")]
    assert out.result["outputs"] == {"s": {}} and out.result["orphans"] == []
    assert out.result["summary"] == {"create": 1} and out.result["api_calls"]["shared"] == 1
    assert out.result["plan"] == [
        {"kind": "CloudFormation stack", "name": "s", "action": "create", "reason": "stack does not exist"}
    ]
    again = run_module({"stacks": [item("s", queue_template())]}, fake)
    assert again.result["changed"] is False and again.result["summary"] == {"unchanged": 1}
    assert again.result["plan"] == [{"kind": "CloudFormation stack", "name": "s", "action": "unchanged", "reason": ""}]


def test_a_failed_stack_fails_the_task_with_the_whole_result() -> None:
    fake = FakeCfn()
    fake.fail_on[("create_stack", "s")] = "ROLLBACK_COMPLETE"
    out = run_module({"stacks": [item("s", queue_template())]}, fake)
    assert out.failed and out.result["msg"].startswith("1 stack(s) failed: s: s: ended in ROLLBACK_COMPLETE")
    assert out.result["summary"] == {"failed": 1} and out.result["stacks"][0]["error"]


PLATFORM = Path(__file__).resolve().parents[4] / "tests/fixtures/cf-platform"


def test_exemptions_are_returned_and_shown_in_the_diff() -> None:
    """issue 11: a reasoned exemption and an allow-listed account are part of the plan and the diff."""
    fake = FakeCfn()
    stacks = [
        item("downloads", (PLATFORM / "downloads.template").read_text()),
        {
            **item("monitoring", (PLATFORM / "monitoring-role.template").read_text()),
            "parameters": {"Environment": ENV, "ExternalId": "x"},
        },
    ]
    args = {
        "stacks": stacks,
        "third_party_accounts": str(PLATFORM / "third-party-accounts.yaml"),
        "_ansible_diff": True,
    }
    out = run_module({**args, "validate_only": True}, fake)
    assert not out.failed and fake.calls == []
    assert [(e["template"], e["rule"]) for e in out.result["exemptions"]] == [
        ("cf/downloads.yaml", "BIO008"),
        ("cf/monitoring.yaml", "BIO002"),
    ]
    sources = [e["source"] for e in out.result["exemptions"]]
    assert sources[0] == "Resources.DownloadsBucketPolicy.Metadata.biomage.exemptions[0]"
    assert sources[1].endswith("tests/fixtures/cf-platform/third-party-accounts.yaml")
    listed = out.result["diff"][-1]["prepared"]
    assert listed.startswith("Exemptions from the template rules (2):\n")
    assert (
        "cf/downloads.yaml: Resources.DownloadsBucketPolicy.Properties.PolicyDocument.Statement[0].Principal: "
        in listed
    )
    assert "[BIO008 no-public-principal] exempt: The example data sets are published" in listed
    assert "third-party account 464622532012: Datadog AWS integration" in listed

    applied = run_module(args, fake)
    assert not applied.failed and applied.result["changed"] is True
    assert applied.result["exemptions"] == out.result["exemptions"]
    assert applied.result["diff"][-1]["prepared"] == listed


def test_without_the_allow_list_the_third_party_account_blocks_with_the_allow_list_fix() -> None:
    fake = FakeCfn()
    stack = {
        **item("monitoring", (PLATFORM / "monitoring-role.template").read_text()),
        "parameters": {"Environment": ENV, "ExternalId": "x"},
    }
    out = run_module({"stacks": [stack]}, fake)
    assert out.failed and fake.calls == []
    (problem,) = out.result["problems"]
    assert problem.startswith("cf/monitoring.yaml: Resources.MonitoringRole.Properties.AssumeRolePolicyDocument.")
    assert "[BIO002 no-literal-account-id]" in problem and "third-party-accounts.yaml" in problem.split("Fix: ")[1]


def test_a_failure_says_what_was_changed_before_it_and_names_the_role_variables() -> None:
    fake = FakeCfn()
    fake.fail_on[("create_stack", "bad")] = "ROLLBACK_COMPLETE"
    args = {
        "stacks": [item("good", queue_template()), item("bad", queue_template())],
        "changed_before": ["biomage-sqs-development (changed by aws_resources)"],
        "option_variables": {"recreate_rollback_complete": "irsa_recreate_rollback_complete"},
    }
    out = run_module(args, fake)
    assert out.failed and out.result["changed"] is True
    message = out.result["msg"]
    assert "Changed by this task before or while they failed: good (create)" in message
    assert "earlier in this run: biomage-sqs-development (changed by aws_resources)" in message
    assert "A re-run plans again from what is deployed" in message
    assert "needs irsa_recreate_rollback_complete: true" in message


def test_a_blocked_plan_names_what_earlier_tasks_changed() -> None:
    fake = FakeCfn()
    fake.fail_on[("create_stack", "s")] = "ROLLBACK_COMPLETE"
    run_module({"stacks": [item("s", queue_template())]}, fake)
    blocked = run_module(
        {
            "stacks": [item("s", queue_template())],
            "changed_before": ["biomage-sqs-development (changed by aws_resources)"],
        },
        fake,
    )
    assert blocked.failed and blocked.result["changed"] is False
    assert (
        "block the run; nothing was changed (this task changed nothing; earlier in this run: " in blocked.result["msg"]
    )


def test_an_import_nobody_exports_fails_the_task_naming_exactly_the_blocked_stacks() -> None:
    fake = FakeCfn()
    items = [
        item("redis", queue_template("r", import_="eksctl-biomage-development-cluster::VPC")),
        item("other", queue_template("o")),
        item("another", queue_template("a")),
    ]
    out = run_module({"stacks": items}, fake)
    assert out.failed
    assert out.result["msg"].startswith(
        "1 stack(s) blocked, not deployed: redis: cf/redis.yaml: imports eksctl-biomage-development-cluster::VPC, "
        "which no stack exports. Fix: deploy the stack that exports it first"
    )
    assert "(the other stacks were converged)" in out.result["msg"]
    assert sorted(fake.stacks) == ["another", "other"]
