"""Issue 15, fault injection: the AWS emulator killed (SIGKILL) while cfn_stacks deploys several stacks.

The run fails within the documented AWS bound (docs/timeouts.md, 30 s), its message names the
unreachable endpoint, the stacks changed (or sent) before the fault, the stacks not attempted, and what
a re-run does. The local stack's own restart says the emulator's state is gone and what to run; a
re-run then converges. The emulator is this test's own (the stack's start/stop code, moto only), so
that the session's stack keeps its state.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from devstack import Stack
from devstack.core import port_in_use

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env
from tests.lib.aws import client
from tests.lib.cfn_scenarios import queue_template

pytestmark = pytest.mark.slow
PLAY = REPO_ROOT / "tests/fixtures/playbooks/faults/cfn_stacks_many.yml"
STACKS = 16
KILL_AFTER = 3  # stacks the emulator holds when it is killed
PARAMETERS = {"Environment": "development"}
BOUND_SECONDS = 30  # docs/timeouts.md: an unreachable AWS endpoint fails a task within 30 s


def playbook(variables: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [str(BIN_DIR / "ansible-playbook"), str(PLAY), "-i", "localhost,", "-e", f"@{variables}"]
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def task_result(stdout: str) -> dict:
    """The task's result from the json callback's report (the plan callback prints after it)."""
    start = 0 if stdout.startswith("{") else stdout.index("\n{") + 1
    report = json.JSONDecoder().raw_decode(stdout, start)[0]
    return next(iter(report["plays"][0]["tasks"][0]["hosts"].values()))


def test_emulator_killed_mid_deploy_fails_fast_truthfully_and_a_rerun_converges(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "devstack", ["moto"])
    stack_env = stack.up()
    try:
        endpoint = stack_env["AWS_ENDPOINT_URL"]
        names = [f"itest-killed-{i:02d}" for i in range(STACKS)]
        stacks = []
        for i, name in enumerate(names):
            path = tmp_path / f"{name}.yaml"
            path.write_text(queue_template(f"itest-killed-{i}", secret=False))
            label = f"itest/{path.name}"
            stacks.append({"name": name, "template": str(path), "template_label": label, "parameters": PARAMETERS})
        variables = tmp_path / "vars.json"
        variables.write_text(json.dumps({"fixture_stacks": stacks}))
        env = ansible_env(stack_env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")

        # the run, and the emulator killed once KILL_AFTER of the stacks have created their queues. The
        # watch asks SQS, not CloudFormation: the emulator serialises CloudFormation calls, so a
        # ListStacks poll waits behind the run's own calls and, on a loaded machine, saw the third stack
        # only after all of them were deployed
        cfn = client(stack_env, "cloudformation")
        sqs = client(stack_env, "sqs")
        run = playbook(variables, env)
        seen = 0
        while run.poll() is None and seen < KILL_AFTER:
            seen = len(sqs.list_queues(QueueNamePrefix="itest-killed-").get("QueueUrls", []))
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before the emulator could be killed"
        os.killpg(int(stack.ctx.pid_file("moto").read_text()), signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = run.communicate(timeout=120)
        took = time.monotonic() - killed

        assert run.returncode == 2, stderr[-3000:]
        assert took < BOUND_SECONDS, f"the run took {took:.1f} s after the kill"
        result = task_result(stdout)
        message = result["msg"]
        # the endpoint, and what to do about it
        assert f"cannot reach AWS at {endpoint}" in message
        assert "Fix: start the local AWS emulator with `make dev-up`" in message
        # what was changed (or sent) before the fault, what was not attempted, what a re-run does
        done = {s["name"] for s in result["stacks"] if s["changed"]}
        sent = {s["name"] for s in result["stacks"] if s["error"] and s["error"].startswith("cannot reach")}
        skipped = {s["name"] for s in result["stacks"] if s["error"] and s["error"].startswith("not attempted")}
        assert done | sent | skipped == set(names) and len(done) + len(sent) + len(skipped) == STACKS
        assert len(done | sent) >= KILL_AFTER - 1 and skipped, "killed mid-run: some stacks done, some not started"
        assert len(sent) <= 1, "max_workers 1: only the stack in flight meets the dead endpoint"
        changed = re.search(r"Changed by this task before or while they failed: ([^.;]*)", message)
        assert changed and {n.split(" ")[0] for n in changed.group(1).split(", ") if n != "nothing"} == done
        # the stack in flight is named "sent, outcome unknown" when its CreateStack/ExecuteChangeSet had gone out
        maybe = re.search(r"sent, outcome unknown \(may have changed\): ([^.;]*)", message)
        assert not maybe or {n.split(" ")[0] for n in maybe.group(1).split(", ")} <= sent
        assert f"{', '.join(sorted(skipped))}: not attempted: AWS at {endpoint} could not be reached" in message
        assert "A re-run plans again from what is deployed" in message
        assert result["summary"]["failed"] == len(sent | skipped)
        assert not port_in_use(int(endpoint.rsplit(":", 1)[1])), "the emulator is gone"

        # the local stack's restart: same endpoint, says the state is gone and what to run
        restarted = Stack(tmp_path / "devstack", ["moto"])
        assert restarted.up()["AWS_ENDPOINT_URL"] == endpoint
        (notice,) = restarted.ctx.notices
        assert "is EMPTY" in notice and "Fix: run `make demo` (or the playbooks you ran) again" in notice

        # the re-run converges: every stack again (the emulator's state died with it)
        rerun = playbook(variables, env)
        stdout, stderr = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, stdout[-3000:] + stderr[-3000:]
        assert task_result(stdout)["summary"] == {"create": STACKS}
        statuses = {
            s["StackName"]: s["StackStatus"]
            for p in cfn.get_paginator("list_stacks").paginate()
            for s in p["StackSummaries"]
        }
        assert statuses == dict.fromkeys(names, "CREATE_COMPLETE")
    finally:
        stack.down()
