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


def test_a_long_stack_wait_reports_its_status_then_the_latest_event_every_interval() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS"] * 8 + ["UPDATE_COMPLETE"]
    now = [0.0]
    sleeps: list[float] = []
    reports: list[tuple[float, str]] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    run = CfnStacks(
        fake,
        ENV,
        GROUP,
        poll_delay=1.0,
        max_poll_delay=15.0,
        progress_interval=5.0,
        report=lambda line: reports.append((now[0], line)),
        sleep=sleep,
        clock=lambda: now[0],
    )
    run.plan(prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))
    assert reports[0] == (0.0, "CloudFormation stack busy UPDATE_IN_PROGRESS, waited 0s")
    timed = [(at, line) for at, line in reports if "latest event" in line]
    # polls at 0, 1, 3 (backoff), then 5, 10, 15, 20, 25: the sleeps are cut to the next report
    assert [at for at, _line in timed] == [5.0, 10.0, 15.0, 20.0, 25.0]
    assert timed[0][1] == (
        "CloudFormation stack busy UPDATE_IN_PROGRESS, waited 5s; latest event Queue UPDATE_FAILED "
        "(Queue name already taken)"
    )
    assert max(sleeps) <= 5.0
    assert fake.ops().count("describe_stack_events") == len(timed)


def test_a_short_wait_reads_no_events() -> None:
    fake = FakeCfn()
    deployed(fake, "busy", queue_template(), status="UPDATE_IN_PROGRESS")
    fake.status_script["busy"] = ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]
    reports: list[str] = []
    run = CfnStacks(fake, ENV, GROUP, report=reports.append, sleep=lambda _s: None, clock=lambda: 0.0)
    run.plan(prepare([item("busy", queue_template())], ENV, GROUP, "eu-west-1"))
    assert reports == ["CloudFormation stack busy UPDATE_IN_PROGRESS, waited 0s"]
    assert "describe_stack_events" not in fake.ops()
