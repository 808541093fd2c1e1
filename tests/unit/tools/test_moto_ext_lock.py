"""The emulator's CloudFormation calls hold one lock, reads included (patch create-stack-atomic): at 200
stacks a DescribeChangeSet iterating the change sets while another thread's CreateChangeSet added one
answered 500 ('OrderedDict mutated during iteration'). Checked without a server: a call made while
the lock is held waits for it."""

from __future__ import annotations

import contextlib
import inspect
import threading

from devstack import moto_ext
from moto.cloudformation.models import CloudFormationBackend

ACCOUNT, REGION = "123456789012", "eu-west-1"


def test_every_public_backend_call_is_serialised() -> None:
    moto_ext.apply()
    backend = CloudFormationBackend(REGION, ACCOUNT)
    calls = {
        "describe_change_set": lambda: backend.describe_change_set("absent"),
        "describe_stacks": lambda: backend.describe_stacks(None),
        "list_change_sets": backend.list_change_sets,
        "list_exports": lambda: backend.list_exports(None),
    }
    for name, call in calls.items():
        finished = threading.Event()

        def run(call=call, finished=finished) -> None:
            with contextlib.suppress(Exception):  # moto's "not found" for the absent change set
                call()
            finished.set()

        with moto_ext.CLOUDFORMATION_LOCK:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            assert not finished.wait(0.2), f"{name} ran while another call held the lock"
        assert finished.wait(5), f"{name} did not run once the lock was free"
        worker.join(5)
    public = [n for n, m in vars(CloudFormationBackend).items() if not n.startswith("_") and inspect.isfunction(m)]
    unwrapped = [
        n for n in public if vars(CloudFormationBackend)[n].__qualname__.split(".")[0] == "CloudFormationBackend"
    ]
    assert "describe_change_set" in public and unwrapped == [], f"not serialised: {unwrapped}"
