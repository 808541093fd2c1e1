"""A stack status CloudFormation does not have (the emulator's CREATE_PENDING) is named as an emulator
fault, in the plan and while waiting, never as something an operator resolves in CloudFormation."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.waiter import (
    DOCUMENTED_STATES,
    Waiter,
    undocumented_state,
)


class _Result:
    name = "biomage-sqs-development"


class _Api:
    def describe(self, result, stack_id):
        return {"StackId": stack_id, "StackStatus": "CREATE_PENDING"}


def test_documented_states_are_not_faults() -> None:
    assert {"CREATE_COMPLETE", "ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "IMPORT_ROLLBACK_FAILED"} <= DOCUMENTED_STATES
    assert all(undocumented_state("s", status) is None for status in DOCUMENTED_STATES)


def test_create_pending_is_an_emulator_fault_with_the_fix() -> None:
    message = undocumented_state("biomage-sqs-development", "CREATE_PENDING")
    assert message.startswith(
        "biomage-sqs-development: the stack is CREATE_PENDING, a status CloudFormation does not have"
    )
    assert "emulator" in message and "Fix: delete the stack from the emulator" in message


def test_waiting_on_such_a_stack_fails_at_once() -> None:
    waiter = Waiter(_Api(), wait_timeout=60, sleep=lambda _seconds: pytest.fail("must not wait"))
    with pytest.raises(CfnError, match="CREATE_PENDING, a status CloudFormation does not have"):
        waiter.stack(_Result(), "arn:stack")
