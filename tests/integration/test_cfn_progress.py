"""Progress of a long CloudFormation wait: while cfn_stacks waits on a stack operation, the progress
callback prints, at its interval, the elapsed time and the stack's latest event (logical id, status,
reason). The stack is made slow by this test's own emulator (in this process): its change set executes,
then the stack stays CREATE_IN_PROGRESS for a while, with resource events as AWS writes them."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import moto_ext
from moto.cloudformation.models import CloudFormationBackend, Event

from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook
from tests.lib.cfn_scenarios import queue_template
from tests.lib.moto_server import in_process_moto

pytestmark = pytest.mark.slow
PLAY = REPO_ROOT / "tests/fixtures/playbooks/plan/slow_stack.yml"
REGION = "eu-west-1"
SLOW_SECONDS = 12.0
INTERVAL = 2
TEMPLATE = queue_template("itest-slow", extra="\n      SqsManagedSseEnabled: true", secret=False)
PROGRESS = re.compile(r"^\[progress\] Converge the slow stack: (?:(\d+)m)?(\d+)s elapsed; (.*)$", re.MULTILINE)


def resource_event(stack: object, status: str, reason: str) -> None:
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id="Queue",
            physical_resource_id="itest-slow-staging",
            resource_type="AWS::SQS::Queue",
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


@pytest.fixture
def slow_moto(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An emulator in this process in which stacks named itest-slow-* take SLOW_SECONDS to create."""
    moto_ext.apply()  # before the originals are kept: the test slows the patched emulator down
    original_execute = CloudFormationBackend.execute_change_set
    original_describe = CloudFormationBackend.describe_stacks
    slow: dict[str, tuple[float, str, set[str]]] = {}

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        original_execute(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        if stack.name.startswith("itest-slow"):
            slow[stack.stack_id] = (time.monotonic(), stack.status, set())
            stack.status = "CREATE_IN_PROGRESS"
            resource_event(stack, "CREATE_IN_PROGRESS", "Resource creation Initiated")

    def describe_stacks(self, name_or_stack_id):
        for stack_id, (started, final, told) in list(slow.items()):
            stack, age = self.stacks[stack_id], time.monotonic() - started
            if age >= SLOW_SECONDS / 2 and "half" not in told:
                told.add("half")
                resource_event(stack, "CREATE_IN_PROGRESS", "Eventual consistency check initiated")
            if age >= SLOW_SECONDS:
                resource_event(stack, "CREATE_COMPLETE", None)
                stack.status = final
                del slow[stack_id]
        return original_describe(self, name_or_stack_id)

    CloudFormationBackend.execute_change_set = execute_change_set
    CloudFormationBackend.describe_stacks = describe_stacks
    try:
        with in_process_moto(tmp_path, REGION) as env:
            yield env
    finally:
        CloudFormationBackend.execute_change_set = original_execute
        CloudFormationBackend.describe_stacks = original_describe


def test_a_slow_stack_prints_its_latest_event_at_the_interval(slow_moto: dict[str, str]) -> None:
    env = ansible_env(slow_moto, BIOMAGE_PROGRESS_INTERVAL=str(INTERVAL))
    started = time.monotonic()
    result = run_playbook(
        PLAY,
        "localhost,",
        env=env,
        extra_vars={"fixture_stack": "itest-slow-queue", "fixture_template": TEMPLATE, "fixture_interval": "1"},
    ).assert_ok()
    assert time.monotonic() - started >= SLOW_SECONDS
    lines = [(int(m[1] or 0) * 60 + int(m[2]), m[3]) for m in PROGRESS.finditer(result.stdout)]
    assert lines, result.stdout[-3000:]
    # one line every INTERVAL seconds while the task runs (a loaded machine may add a second)
    elapsed = [seconds for seconds, _status in lines]
    assert elapsed[0] <= INTERVAL + 1
    assert all(INTERVAL - 1 <= b - a <= INTERVAL + 1 for a, b in itertools.pairwise(elapsed)), elapsed
    assert len(lines) >= SLOW_SECONDS / INTERVAL - 2
    statuses = [status for _seconds, status in lines]
    events = [s for s in statuses if "latest event" in s]
    assert events, statuses
    stamp = r"\d\d:\d\d:\d\d"
    first = re.compile(
        rf"^{stamp} CloudFormation stack itest-slow-queue CREATE_IN_PROGRESS, waited (\d+m)?\d+s; latest event "
        rf"{stamp} Queue CREATE_IN_PROGRESS \(Resource creation Initiated\)$"
    )
    assert any(first.match(s) for s in events), events
    assert any(s.endswith("Queue CREATE_IN_PROGRESS (Eventual consistency check initiated)") for s in events), events
    # the event lines follow each other at the interval too, once the wait has begun
    with_events = [seconds for seconds, status in lines if "latest event" in status]
    assert all(b - a <= INTERVAL + 1 for a, b in itertools.pairwise(with_events)), with_events
