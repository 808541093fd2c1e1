# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for CloudFormation: stacks until they settle, change sets until they are ready, each polled
with exponential backoff up to a deadline; and why a stack failed, read from its events.

While a stack wait lasts, its status is reported as progress (``module_utils/progress.py``, read by the
``biomage.iac.progress`` callback): at once without any API call, then every ``progress_interval``
seconds with the stack's latest event (one DescribeStackEvents per interval; none for a wait shorter
than the interval, and none when no callback listens)."""

from __future__ import annotations

import time

from ansible_collections.biomage.iac.plugins.module_utils import progress
from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, ClientError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError

CHANGE_SET_DONE = ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED")


# Every stack status the CloudFormation API documents (API Reference, "Stack" data type: StackStatus).
DOCUMENTED_STATES = frozenset(
    [
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "CREATE_COMPLETE",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_FAILED",
        "ROLLBACK_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_COMPLETE",
        "UPDATE_FAILED",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_FAILED",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
        "REVIEW_IN_PROGRESS",
        "IMPORT_IN_PROGRESS",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_IN_PROGRESS",
        "IMPORT_ROLLBACK_FAILED",
        "IMPORT_ROLLBACK_COMPLETE",
    ]
)


def undocumented_state(name, status):
    """The message for a status CloudFormation never reports (e.g. the emulator's CREATE_PENDING), else None."""
    if not status or status in DOCUMENTED_STATES:
        return None
    return (
        f"{name}: the stack is {status}, a status CloudFormation does not have: the endpoint is an emulator that "
        "failed while creating it (moto leaves a stack CREATE_PENDING when CreateStack fails half-way). "
        "Nothing biomage.iac can do converges it. Fix: delete the stack from the emulator "
        "(aws cloudformation delete-stack) or restart the local stack (make dev-down && make dev-up) and run again."
    )


def settled(stack):
    """True unless the stack is in an operation (REVIEW_IN_PROGRESS has none running: it waits for us)."""
    status = stack.get("StackStatus", "")
    return not status.endswith("_IN_PROGRESS") or status == "REVIEW_IN_PROGRESS"


class Waiter:
    """Polls through a :class:`~.client.CfnClient`; ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(
        self,
        api,
        *,
        wait_timeout=1800,
        poll_delay=1.0,
        max_poll_delay=15.0,
        progress_interval=30.0,
        report=None,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.api = api
        self.progress_interval = max(0.1, float(progress_interval))
        # where progress goes: progress.report when a callback listens (None: nowhere)
        self.report = report if report is not None else (progress.report if progress.enabled() else None)
        self.wait_timeout = wait_timeout
        self.poll_delay = poll_delay
        self.max_poll_delay = max_poll_delay
        self.sleep = sleep
        self.clock = clock

    def _poll(self, fetch, done, timed_out, watch=None):
        """``fetch()`` until ``done(value)``; after wait_timeout raise CfnError(``timed_out(value)``).
        ``watch(value)`` (progress) is told of every unfinished value and returns the longest next sleep."""
        deadline = self.clock() + self.wait_timeout
        delay = self.poll_delay
        while True:
            value = fetch()
            if done(value):
                return value
            if self.clock() >= deadline:
                raise CfnError(timed_out(value))
            self.sleep(min(delay, watch(value)) if watch else delay)
            delay = min(delay * 2, self.max_poll_delay)

    def stack(self, result, stack_id, allow_missing=False):
        """The stack once it is no longer *_IN_PROGRESS (None if it is gone and ``allow_missing``)."""

        def done(stack):
            if stack is None:
                if allow_missing:
                    return True
                raise CfnError(f"{result.name}: the stack disappeared while waiting for it")
            fault = undocumented_state(result.name, stack.get("StackStatus"))
            if fault:
                raise CfnError(fault)
            return settled(stack)

        return self._poll(
            lambda: self.api.describe(result, stack_id),
            done,
            lambda stack: (
                f"{result.name}: still {stack.get('StackStatus', '')} after {self.wait_timeout}s. Fix: wait for the "
                "other operation to finish (AWS console / describe-stack-events), or raise wait_timeout."
            ),
            StackProgress(self, result, stack_id) if self.report else None,
        )

    def change_set(self, result, name):
        """The change set once CloudFormation has computed it; ``_changes`` holds all its resource changes."""
        change_set = self._poll(
            lambda: self.api.describe_change_set(result, name),
            lambda found: found.get("Status", "") in CHANGE_SET_DONE,
            lambda found: (
                f"{result.name}: change set {name} still {found.get('Status', '')} after {self.wait_timeout}s"
            ),
        )
        change_set["_changes"] = self.api.change_set_changes(result, name, change_set)
        return change_set

    def failure_reasons(self, result, stack_id):
        """The reasons of the latest failed resource events (at most five), [] when they cannot be read."""
        try:
            events = self.api.events(result, stack_id)
        except (ClientError, AwsError):
            return []
        reasons = []
        for event in events[:50]:
            if str(event.get("ResourceStatus", "")).endswith("FAILED") and event.get("ResourceStatusReason"):
                reasons.append(f"{event.get('LogicalResourceId')}: {event['ResourceStatusReason']}")
        return reasons[:5]


def event_text(event):
    """``10:14:02 Queue CREATE_IN_PROGRESS (Resource creation Initiated)``: one stack event, in a line."""
    when = event.get("Timestamp")
    when = when.strftime("%H:%M:%S") if hasattr(when, "strftime") else str(when or "")
    text = f"{when} {event.get('LogicalResourceId', '?')} {event.get('ResourceStatus', '?')}".strip()
    reason = " ".join(str(event.get("ResourceStatusReason") or "").split())
    return text + (f" ({reason[:160]})" if reason else "")


class StackProgress:
    """Reports one stack wait: its status at once, then every ``progress_interval`` seconds the
    elapsed time and the stack's latest event."""

    def __init__(self, waiter, result, stack_id):
        self.waiter = waiter
        self.result = result
        self.stack_id = stack_id
        self.started = waiter.clock()
        self.next_event = self.started + waiter.progress_interval
        self.reported = False

    def latest_event(self):
        try:
            events = self.waiter.api.events(self.result, self.stack_id)
        except (ClientError, AwsError):
            return None
        return events[0] if events else None  # DescribeStackEvents lists the newest first

    def __call__(self, stack):
        now = self.waiter.clock()
        status = (stack or {}).get("StackStatus", "?")
        line = f"CloudFormation stack {self.result.name} {status}, waited {progress.elapsed(now - self.started)}"
        if now >= self.next_event:
            self.next_event = now + self.waiter.progress_interval
            event = self.latest_event()
            self.waiter.report(line + (f"; latest event {event_text(event)}" if event else "; no event yet"))
        elif not self.reported:
            self.waiter.report(line)
        self.reported = True
        return max(0.05, self.next_event - self.waiter.clock())
