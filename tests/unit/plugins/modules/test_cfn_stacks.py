"""The cfn_stacks module end to end in-process, on the scripted CloudFormation client: validate_only,
failures before any change (message, problems), a converge and its result, a failed stack."""

from __future__ import annotations

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
    assert out.result["msg"].endswith("(the other stacks were converged)")
    assert sorted(fake.stacks) == ["another", "other"]
