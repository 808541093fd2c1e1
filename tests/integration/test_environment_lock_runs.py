"""The environment lock on the local stack: one changing run at a time, the holder named, the lock
taken over when its holder is killed, and broken by hand with a logged reason."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.lib import aws
from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "tests/integration/playbooks/locked_change.yml"
TABLE = "biomage-iac-locks"


def _aws(stack_ansible_env: dict[str, str], service: str):
    return aws.client(stack_ansible_env, service)


def _lock(stack_ansible_env: dict[str, str]) -> dict | None:
    dynamodb = _aws(stack_ansible_env, "dynamodb")
    try:
        return dynamodb.get_item(TableName=TABLE, Key={"lock_id": {"S": "development"}}).get("Item")
    except dynamodb.exceptions.ResourceNotFoundException:
        return None


def _start(stack_ansible_env: dict[str, str], label: str, *extra: str) -> subprocess.Popen:
    argv = [str(BIN_DIR / "ansible-playbook"), PLAYBOOK, "-i", "inventories/development", "-e", f"run_label={label}"]
    return subprocess.Popen(
        [*argv, *extra],
        cwd=REPO_ROOT,
        env=stack_ansible_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for_holder(stack_ansible_env: dict[str, str], pid: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = _lock(stack_ansible_env)
        if item and item["run_id"]["S"].split(":")[1] == str(pid) and "renewer_pid" in item:
            return item
        time.sleep(0.5)
    raise AssertionError(f"process {pid} did not take the lock within {timeout} s")


def _tags(stack_ansible_env: dict[str, str]) -> dict[str, str]:
    tagging = _aws(stack_ansible_env, "s3").get_bucket_tagging(Bucket="biomage-lock-test")
    return {tag["Key"]: tag["Value"] for tag in tagging["TagSet"]}


def test_a_second_run_waits_for_the_first_and_the_final_state_is_one_runs(stack_ansible_env: dict[str, str]) -> None:
    first = _start(stack_ansible_env, "run1", "-e", "hold_seconds=12")
    _wait_for_holder(stack_ansible_env, first.pid)
    # fail fast, by choice: the holder is named and nothing is changed
    fast = run_playbook(
        PLAYBOOK, env=stack_ansible_env, extra_vars={"run_label": "run2", "preflight_lock_wait": "false"}
    )
    assert fast.returncode != 0
    assert "The environment development is locked by another run: run " in fast.output
    assert f":{first.pid}:" in fast.output and "playbook tests/integration/playbooks/locked_change.yml" in fast.output
    assert "Nothing was changed by this run" in fast.output
    # a waiting run prints progress lines and changes the environment only after the first ended
    second = run_playbook(
        PLAYBOOK, env=stack_ansible_env, extra_vars={"run_label": "run2", "preflight_lock_poll_seconds": 2}
    ).assert_ok()
    out, _unused = first.communicate(timeout=120)
    assert first.returncode == 0, out
    # ansible-core's retry line (2.21 puts the role's name before the task's)
    assert [
        line
        for line in second.stdout.splitlines()
        if line.startswith("FAILED - RETRYING: [biomage-development]:")
        and "Wait for the environment lock held by" in line
    ]
    assert _tags(stack_ansible_env) == {"first": "run2", "second": "run2"}
    assert _lock(stack_ansible_env) is None  # released at the end


def test_a_killed_holder_is_taken_over(stack_ansible_env: dict[str, str]) -> None:
    holder = _start(stack_ansible_env, "killed", "-e", "hold_seconds=120")
    item = _wait_for_holder(stack_ansible_env, holder.pid)
    # SIGKILL of the whole run (its process group): the renewer, in its own session, sees it die
    os.killpg(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    started = time.monotonic()
    run_playbook(PLAYBOOK, env=stack_ansible_env, extra_vars={"run_label": "after-kill"}).assert_ok()
    assert time.monotonic() - started < 60  # not the 300 s lease
    assert _tags(stack_ansible_env)["second"] == "after-kill"
    assert int(item["renewer_pid"]["N"]) > 0


def test_a_holder_killed_with_its_renewer_is_taken_over(stack_ansible_env: dict[str, str]) -> None:
    # the machine-death case on this host: no renewer releases, the dead pid is seen and taken over
    holder = _start(stack_ansible_env, "killed", "-e", "hold_seconds=120")
    item = _wait_for_holder(stack_ansible_env, holder.pid)
    os.kill(int(item["renewer_pid"]["N"]), signal.SIGKILL)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    result = run_playbook(PLAYBOOK, env=stack_ansible_env, extra_vars={"run_label": "taken-over"}).assert_ok()
    assert "FAILED - RETRYING" not in result.stdout
    assert _tags(stack_ansible_env)["second"] == "taken-over"


def test_check_runs_do_not_take_the_lock_unless_asked(stack_ansible_env: dict[str, str]) -> None:
    holder = _start(stack_ansible_env, "held", "-e", "hold_seconds=20")
    _wait_for_holder(stack_ansible_env, holder.pid)
    check = run_playbook(PLAYBOOK, env=stack_ansible_env, check=True, extra_vars={"run_label": "check"})
    assert check.returncode == 0, check.output[-3000:]
    asked = run_playbook(
        PLAYBOOK,
        env=stack_ansible_env,
        check=True,
        extra_vars={"run_label": "check", "preflight_lock_check_mode": "true", "preflight_lock_wait": "no"},
    )
    assert asked.returncode != 0 and "is locked by another run" in asked.output
    holder.communicate(timeout=120)


def test_unlock_playbook_names_the_holder_and_breaks_with_a_logged_reason(stack_ansible_env: dict[str, str]) -> None:
    holder = _start(stack_ansible_env, "stuck", "-e", "hold_seconds=120")
    _wait_for_holder(stack_ansible_env, holder.pid)
    try:
        info = run_playbook("playbooks/unlock.yml", env=stack_ansible_env).assert_ok()
        assert f":{holder.pid}:" in info.stdout and "To break it: -e preflight_lock_break_reason=" in info.stdout
        reason = {"preflight_lock_break_reason": "test: runner lost"}
        broken = run_playbook("playbooks/unlock.yml", env=stack_ansible_env, extra_vars=reason).assert_ok()
        assert "reason: test: runner lost" in broken.stdout
        assert _lock(stack_ansible_env) is None
        log = _aws(stack_ansible_env, "dynamodb").scan(TableName=TABLE)["Items"]
        breaks = [item for item in log if item["lock_id"]["S"].startswith("development#break#")]
        assert any(
            item["reason"]["S"] == "test: runner lost" and str(holder.pid) in item["removed"]["S"] for item in breaks
        )
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)
