"""The local stack's AWS emulator: started on a free loopback port, used with boto3, stopped;
stale pid files and dead servers recovered; a busy port reported clearly and quickly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from devstack import DevstackError, Stack, read_env_file
from devstack.core import pid_alive, port_in_use

from tests.lib.aws import client as _client

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def _port(env: dict[str, str]) -> int:
    return int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])


def test_emulator_starts_serves_boto3_and_stops(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto"])
    env = stack.up()
    try:
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert read_env_file(tmp_path / "env") == env, "the env file holds exactly what up() returned"
        assert not [key for key in env if "SECRET" in key or "ACCESS_KEY" in key], "no key in the env file"
        s3 = _client(env, "s3")
        s3.create_bucket(Bucket="devstack-probe", CreateBucketConfiguration={"LocationConstraint": env["AWS_REGION"]})
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["devstack-probe"]
        assert _client(env, "sts").get_caller_identity()["Account"].isdigit()
        # the development account's hosted zone, named by the inventory, exists as in a real account
        dns_vars = yaml.safe_load((REPO_ROOT / "inventories/development/group_vars/all/route53_dns.yml").read_text())
        zones = _client(env, "route53").list_hosted_zones()["HostedZones"]
        assert [(z["Name"], z["Config"]["PrivateZone"]) for z in zones] == [
            (dns_vars["route53_dns_hosted_zone_name"] + ".", False)
        ]
        assert stack.up() == env
        assert len(_client(env, "route53").list_hosted_zones()["HostedZones"]) == 1, "a second up adds no zone"
    finally:
        assert stack.down() == ["moto"]
    assert not port_in_use(_port(env)), "the emulator's port is closed after down()"
    assert not (tmp_path / "env").exists()
    assert stack.down() == [], "a second down() finds nothing running"


def test_up_twice_adopts_the_running_server_and_keeps_its_state(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto"])
    first = stack.up()
    try:
        _client(first, "sqs").create_queue(QueueName="kept")
        pid = (tmp_path / "moto.pid").read_text().strip()
        second = Stack(tmp_path, ["moto"]).up()
        assert second == first
        assert (tmp_path / "moto.pid").read_text().strip() == pid
        assert any(url.endswith("/kept") for url in _client(second, "sqs").list_queues()["QueueUrls"])
    finally:
        stack.down()


def test_a_pid_file_whose_pid_was_reused_is_stale_and_the_new_process_is_left_alone(tmp_path: Path) -> None:
    """pid_max is 32768 on many machines: a dead server's pid can come back as another process. One
    started after the pid file was written is not ours: not reported, not signalled."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        pid_file = tmp_path / "moto.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        written_long_before = time.time() - 600
        os.utime(pid_file, (written_long_before, written_long_before))
        stack = Stack(tmp_path, ["moto"])
        assert stack.ctx.read_pid("moto") is None
        assert not pid_file.exists(), "the stale pid file is removed"
        assert stack.ctx.terminate("moto") is False
        assert stranger.poll() is None, "the process that reused the pid was not signalled"

        pid_file.write_text(f"{stranger.pid}\n")  # written after the process started: ours
        assert stack.ctx.read_pid("moto") == stranger.pid
    finally:
        stranger.kill()
        stranger.wait()


def test_stale_pid_file_is_recovered(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "moto.pid").write_text(f"{dead.pid}\n")
    (tmp_path / "moto.port").write_text("1\n")
    stack = Stack(tmp_path, ["moto"])
    env = stack.up()
    try:
        assert int((tmp_path / "moto.pid").read_text()) != dead.pid
        assert _client(env, "sts").get_caller_identity()["Account"]
    finally:
        stack.down()


def test_dead_server_is_restarted_by_the_next_up(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto"])
    env = stack.up()
    try:
        pid = int((tmp_path / "moto.pid").read_text())
        os.killpg(pid, 9)
        deadline = time.monotonic() + 10
        while port_in_use(_port(env)) and time.monotonic() < deadline:
            time.sleep(0.1)
        again = stack.up()
        assert int((tmp_path / "moto.pid").read_text()) != pid
        assert _client(again, "sts").get_caller_identity()["Account"]
    finally:
        stack.down()


def test_a_restarted_emulator_says_its_state_is_gone_and_keeps_its_endpoint(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto"])
    env = stack.up()
    try:
        assert stack.ctx.notices == []
        _client(env, "s3").create_bucket(
            Bucket="before-the-crash", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        pid = int((tmp_path / "moto.pid").read_text())
        os.killpg(pid, 9)
        deadline = time.monotonic() + 10
        while port_in_use(_port(env)) and time.monotonic() < deadline:
            time.sleep(0.1)
        restarted = Stack(tmp_path, ["moto"])
        again = restarted.up()
        assert again["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]
        (notice,) = restarted.ctx.notices
        assert f"the AWS emulator had stopped (it served {env['AWS_ENDPOINT_URL']})" in notice
        assert "is EMPTY" in notice and "Fix: run `make demo`" in notice
        assert _client(again, "s3").list_buckets()["Buckets"] == []
    finally:
        stack.down()


def test_running_server_whose_port_file_was_lost_is_replaced_not_orphaned(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto"])
    stack.up()
    try:
        pid = int((tmp_path / "moto.pid").read_text())
        (tmp_path / "moto.port").unlink()
        again = stack.up()
        assert int((tmp_path / "moto.pid").read_text()) != pid
        assert not pid_alive(pid), "the old server was stopped, not left running without a pid file"
        assert _client(again, "sts").get_caller_identity()["Account"]
    finally:
        stack.down()


def test_busy_port_is_reported_clearly_and_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("BIOMAGE_MOTO_PORT", str(port))
        started = time.monotonic()
        with pytest.raises(DevstackError, match=rf"port {port} \(BIOMAGE_MOTO_PORT\) is already in use.*Fix:"):
            Stack(tmp_path, ["moto"]).up()
        assert time.monotonic() - started < 5
    assert not (tmp_path / "moto.pid").exists(), "nothing was started"


def test_unknown_component_is_named(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match=r"unknown component.*nope"):
        Stack(tmp_path, ["nope"])


OWNER = """
import sys, time
from pathlib import Path
from devstack import Stack
stack = Stack(Path(sys.argv[1]), ["moto"])
stack.stop_with_owner()
stack.up()
print("up", flush=True)
time.sleep(600)
"""


def test_a_stack_whose_owner_is_killed_is_stopped(tmp_path: Path) -> None:
    """A test session killed outright runs no teardown: the watcher stops its stack when the owner is gone."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tools")},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
        pid = int((tmp_path / "moto.pid").read_text())
        port = _port(read_env_file(tmp_path / "env"))
        assert pid_alive(pid) and port_in_use(port)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 30
    while (pid_alive(pid) or (tmp_path / "env").exists()) and time.monotonic() < deadline:
        time.sleep(0.2)  # the watcher stops the emulator, then removes the env file
    assert not pid_alive(pid), "the emulator outlived its killed owner"
    assert not port_in_use(port) and not (tmp_path / "env").exists()


def test_command_line_up_status_env_down(tmp_path: Path) -> None:
    def devstack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", *args, "--state-dir", str(tmp_path), "--components", "moto"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tools")},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    up = devstack("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "aws_secret_access_key" not in up.stdout.lower(), "keys stay in the credentials file"
        assert devstack("status").stdout.strip() == "moto: running"
        assert "AWS_ENDPOINT_URL=http://127.0.0.1:" in devstack("env").stdout
    finally:
        down = devstack("down")
    assert down.stdout.strip() == "stopped: moto"
    assert devstack("status").stdout.strip() == "moto: stopped"
