"""Waiting for stacks another operation left in progress: exponential backoff and the deadline."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import UNCHANGED
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks

from tests.lib.cfn_scenarios import ENV, GROUP, deployed, item, queue_template, runner
from tests.lib.fake_cfn import FakeCfn


def test_stacks_left_in_progress_are_waited_for_with_exponential_backoff() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS"] * 4 + ["UPDATE_COMPLETE"]
    sleeps: list[float] = []
    run = runner(fake, sleeps)
    run.plan(prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))
    assert sleeps == [1.0, 2.0, 4.0, 4.0]  # doubling, capped at max_poll_delay
    assert run.results["busy"].action == UNCHANGED
    assert any("waited for UPDATE_IN_PROGRESS" in n for n in run.results["busy"].notes)


def test_a_wait_that_never_ends_times_out_with_the_fix() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS"] * 100
    clock = iter(range(0, 10_000, 10))
    run = CfnStacks(fake, ENV, GROUP, wait_timeout=30, sleep=lambda _s: None, clock=lambda: next(clock))
    with pytest.raises(CfnError, match="still UPDATE_IN_PROGRESS after 30s"):
        run.plan(prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))
