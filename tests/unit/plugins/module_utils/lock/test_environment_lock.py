"""The environment lock's rules, on moto's in-process DynamoDB: conditional writes, leases, take-over,
renewal lost to a break, and the renewer's release when the watched process ends."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import boto3
import pytest
from ansible_collections.biomage.iac.plugins.module_utils.lock import environment_lock as lock
from moto import mock_aws

SETTINGS = {"region": "eu-west-1"}
TABLE = "biomage-iac-locks"
LEASE = 60


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        assert lock.ensure_table(client, SETTINGS, TABLE) is True
        assert lock.ensure_table(client, SETTINGS, TABLE) is False
        yield client


def holder(run: str, pid: int = 4242) -> dict:
    host = f"host-{run}"  # each run on its own machine unless a test says otherwise
    return {"run_id": f"{host}:{pid}:{run}", "who": f"op-{run}", "host": host, "pid": pid, "pid_start": 1,
            "playbook": "playbooks/resources.yml"}  # fmt: skip


def test_one_run_holds_the_lock_and_the_other_sees_who(dynamodb) -> None:
    outcome, current = lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1000)
    assert outcome == "acquired" and current["run_id"] == "host-a:4242:a"
    outcome, current = lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("b"), LEASE, now=1010)
    assert outcome == "held"
    text = lock.holder_text(current, now=1010)
    assert "run host-a:4242:a by op-a on host-a (playbook playbooks/resources.yml)" in text
    assert "since 1970-01-01T00:16:40Z" in text and "(50 s left)" in text
    # another environment has its own lock
    assert lock.acquire(dynamodb, SETTINGS, TABLE, "production", holder("b"), LEASE, now=1010)[0] == "acquired"


def test_the_same_run_renews_instead_of_blocking_itself(dynamodb) -> None:
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1000)
    outcome, current = lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1030)
    assert outcome == "renewed" and current["expires"] == 1090


def test_an_expired_lease_of_another_host_is_taken_over(dynamodb) -> None:
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1000)
    assert lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("b"), LEASE, now=1059)[0] == "held"
    outcome, current = lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("b"), LEASE, now=1061)
    assert outcome == "acquired" and current["run_id"].endswith(":b")
    assert current["took_over"].startswith("run host-a:4242:a")
    # the old holder's renewal and release now fail: they never write over the new holder
    assert lock.renew(dynamodb, SETTINGS, TABLE, "staging", "host-a:4242:a", LEASE, now=1062) is False
    assert lock.release(dynamodb, SETTINGS, TABLE, "staging", "host-a:4242:a") is False
    assert lock.read(dynamodb, SETTINGS, TABLE, "staging")["run_id"].endswith(":b")


def test_a_dead_holder_on_this_host_is_taken_over_at_once(dynamodb) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    here = lock.describe_holder(pid=dead.pid, pid_start=1)
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", here, LEASE, now=1000)
    other = dict(holder("b"), host=here["host"])
    assert lock.acquire(dynamodb, SETTINGS, TABLE, "staging", other, LEASE, now=1001)[0] == "acquired"


def test_a_race_between_two_takers_has_one_winner(dynamodb, monkeypatch: pytest.MonkeyPatch) -> None:
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1000)
    assert lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("b"), LEASE, now=2000)[0] == "acquired"
    # a second taker that read the expired holder "a" before "b" wrote: its compare-and-swap fails
    real_read = lock.read
    reads = []

    def stale_first_read(*args):
        reads.append(args)
        return {"run_id": "host-a:4242:a", "expires": 1060, "host": "host-a"} if len(reads) == 1 else real_read(*args)

    monkeypatch.setattr(lock, "read", stale_first_read)
    outcome, current = lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("c"), LEASE, now=2001)
    assert outcome == "held" and current["run_id"] == "host-b:4242:b"


def test_breaking_needs_a_reason_and_is_logged(dynamodb) -> None:
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", holder("a"), LEASE, now=1000)
    with pytest.raises(lock.LockError, match="needs a reason"):
        lock.break_lock(dynamodb, SETTINGS, TABLE, "staging", " ", "ops on laptop")
    removed, log = lock.break_lock(dynamodb, SETTINGS, TABLE, "staging", "runner lost", "ops on laptop", now=1010)
    assert removed["run_id"] == "host-a:4242:a" and log["reason"] == "runner lost"
    assert lock.read(dynamodb, SETTINGS, TABLE, "staging") is None
    items = dynamodb.scan(TableName=TABLE)["Items"]
    (entry,) = [item for item in items if item["lock_id"]["S"].startswith("staging#break#")]
    assert entry["broken_by"]["S"] == "ops on laptop" and entry["removed"]["S"].startswith("run host-a:4242:a")
    assert lock.renew(dynamodb, SETTINGS, TABLE, "staging", "host-a:4242:a", LEASE) is False


def test_the_renewer_keeps_the_lease_while_the_process_lives_and_releases_after(dynamodb) -> None:
    watched = subprocess.Popen(["sleep", "30"])
    start = lock.process_start(watched.pid)
    me = dict(holder("r", pid=watched.pid), run_id="here:r")
    lock.acquire(dynamodb, SETTINGS, TABLE, "staging", me, LEASE)
    first_expiry = lock.read(dynamodb, SETTINGS, TABLE, "staging")["expires"]
    ended = []
    thread = threading.Thread(
        target=lambda: ended.append(
            lock.renew_loop(lambda: dynamodb, SETTINGS, TABLE, "staging", "here:r", 3, watched.pid, start, poll=0.05)
        )
    )
    thread.start()
    threading.Event().wait(2.5)
    assert lock.read(dynamodb, SETTINGS, TABLE, "staging")["expires"] < first_expiry  # renewed with the 3 s lease
    watched.kill()
    watched.wait()
    thread.join(timeout=10)
    assert ended == ["released"] and lock.read(dynamodb, SETTINGS, TABLE, "staging") is None


def test_the_renewer_stops_when_its_lock_was_broken(dynamodb) -> None:
    watched = subprocess.Popen(["sleep", "30"])
    try:
        me = dict(holder("r", pid=watched.pid), run_id="here:r")
        lock.acquire(dynamodb, SETTINGS, TABLE, "staging", me, LEASE)
        lock.break_lock(dynamodb, SETTINGS, TABLE, "staging", "test", "ops")
        args = (SETTINGS, TABLE, "staging", "here:r", 3, watched.pid, None)
        result = lock.renew_loop(lambda: dynamodb, *args, poll=0.05)
        assert result == "lost"
    finally:
        watched.kill()
        watched.wait()


def test_the_playbook_process_is_the_outermost_ansible_playbook_ancestor(tmp_path) -> None:
    # ansible-playbook -> its forked worker (same command line) -> sh -> the module
    (tmp_path / "module.py").write_text(
        "from ansible_collections.biomage.iac.plugins.module_utils.lock import environment_lock as l\n"
        "print(l.find_playbook_process()[0])\n"
    )
    (tmp_path / "worker.sh").write_text(f"sh -c '{sys.executable} {tmp_path / 'module.py'}'\ntrue\n")
    (tmp_path / "main.sh").write_text(f"bash -c 'exec -a ansible-playbook bash {tmp_path / 'worker.sh'}'\ntrue\n")
    outer = subprocess.Popen(
        ["bash", "-c", f"exec -a ansible-playbook bash {tmp_path / 'main.sh'}"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    out, _unused = outer.communicate(timeout=30)
    assert out.strip() == str(outer.pid)
    assert lock.playbooks_of(["python", "/x/ansible-playbook", "site.yml", "-e", "a=b", "more.yaml"]) == [
        "site.yml",
        "more.yaml",
    ]


def test_a_module_run_by_the_fork_server_finds_the_playbook_from_the_worker_it_names(tmp_path) -> None:
    # ansible-playbook -> its forked worker (waiting for the run); the module is a child of another process
    # (the fork server's place), with BIOMAGE_FORKSERVER_CALLER naming the worker
    (tmp_path / "module.py").write_text(
        "from ansible_collections.biomage.iac.plugins.module_utils.lock import environment_lock as l\n"
        "print(l.find_playbook_process()[0])\n"
    )
    (tmp_path / "worker.sh").write_text("echo $$\nexec sleep 30\n")
    (tmp_path / "main.sh").write_text(f"bash -c 'exec -a ansible-playbook bash {tmp_path / 'worker.sh'}'\ntrue\n")
    outer = subprocess.Popen(
        ["bash", "-c", f"exec -a ansible-playbook bash {tmp_path / 'main.sh'}"], stdout=subprocess.PIPE, text=True
    )
    try:
        worker = outer.stdout.readline().strip()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        run = [sys.executable, str(tmp_path / "module.py")]
        alone = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip()
        named = {**env, "BIOMAGE_FORKSERVER_CALLER": worker}
        found = subprocess.run(run, env=named, capture_output=True, text=True, check=True).stdout.strip()
    finally:
        outer.kill()
        subprocess.run(["pkill", "-f", str(tmp_path / "worker.sh")], check=False)
        outer.wait()
    assert alone == "None"  # without the name, no ansible-playbook among the module's ancestors
    assert found == str(outer.pid)
