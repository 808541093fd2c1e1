"""The devstack `kube` component on its own: start on free loopback ports, adopt a running control
plane, recover from a dead process or a stale pid file, report a failed start with the log's tail,
and stop everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from devstack import DevstackError, Stack, read_env_file
from devstack import kube as kube_module
from devstack.core import free_port, pid_alive, port_in_use
from devstack.kube_pki import ensure_pki

pytestmark = pytest.mark.slow
ELB_HOSTNAME = re.compile(r"^a[0-9a-f]{31}-[0-9a-f]{16}\.elb\.eu-west-1\.amazonaws\.com$")
PROCESSES = (
    "kube-etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-kwok",
    "kube-lb-standin",
)


def _pids(state: Path) -> dict[str, int]:
    return {name: int((state / f"{name}.pid").read_text()) for name in PROCESSES}


def _port(env: dict[str, str]) -> int:
    return int(env["BIOMAGE_KUBE_SERVER"].rsplit(":", 1)[1])


def _wait_dead(pid: int, timeout: float = 30) -> None:
    """Until the killed process ``pid`` is gone; a failure names its state (a full run once saw a SIGKILLed
    moto server still answer pid_alive after 10 s, and the next up() then found it "running")."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError as exc:
            state = str(exc)
        pytest.fail(f"process {pid} still runs {timeout} s after it was killed: {state}")


def test_start_adopt_and_stop(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["kube"])
    env = stack.up()
    try:
        kubeconfig = tmp_path / "kube" / "admin.kubeconfig"
        assert env["KUBECONFIG"] == env["K8S_AUTH_KUBECONFIG"] == str(kubeconfig)
        assert read_env_file(tmp_path / "env") == env
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600", "the kubeconfig holds a private key"
        assert all(oct(p.stat().st_mode & 0o077) == "0o0" for p in (tmp_path / "kube" / "pki").glob("*.key"))
        pids = _pids(tmp_path)
        assert all(pid_alive(pid) for pid in pids.values())

        # without the AWS emulator, the stand-in writes an NLB-shaped name after BIOMAGE_LB_DELAY
        kubectl = [env["BIOMAGE_KUBECTL"], f"--kubeconfig={kubeconfig}"]
        subprocess.run([*kubectl, "create", "service", "loadbalancer", "edge", "--tcp=443:443"], check=True)
        hostname = ""
        deadline = time.monotonic() + 20
        while not hostname and time.monotonic() < deadline:
            time.sleep(0.2)
            hostname = subprocess.run(
                [*kubectl, "get", "service", "edge", "--output=jsonpath={.status.loadBalancer.ingress[0].hostname}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        assert ELB_HOSTNAME.match(hostname), hostname

        again = Stack(tmp_path, ["kube"]).up()
        assert again == env, "a second up adopts the running control plane"
        assert _pids(tmp_path) == pids
    finally:
        assert stack.down() == ["kube"]
    for name, pid in pids.items():
        _wait_dead(pid)
        assert not pid_alive(pid), f"{name} still runs after down()"
        assert not (tmp_path / f"{name}.pid").exists()
    assert not port_in_use(_port(env))
    assert stack.down() == [], "a second down() finds nothing running"


def test_dead_api_server_and_stale_pid_files_are_recovered(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["kube"])
    stack.up()
    try:
        old = _pids(tmp_path)
        os.killpg(old["kube-apiserver"], signal.SIGKILL)
        _wait_dead(old["kube-apiserver"])
        # the stand-in died too and its pid file now names another process that has exited
        os.killpg(old["kube-lb-standin"], signal.SIGKILL)
        _wait_dead(old["kube-lb-standin"])
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (tmp_path / "kube-lb-standin.pid").write_text(f"{dead.pid}\n")

        env = Stack(tmp_path, ["kube"]).up()
        new = _pids(tmp_path)
        assert new["kube-apiserver"] != old["kube-apiserver"]
        assert new["kube-lb-standin"] != dead.pid
        assert not pid_alive(old["kube-etcd"]), "the old etcd was stopped, not leaked"
        kubectl = env["BIOMAGE_KUBECTL"]
        namespaces = subprocess.run(
            [kubectl, f"--kubeconfig={env['KUBECONFIG']}", "get", "namespaces", "--output=name"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "namespace/kube-system" in namespaces
    finally:
        stack.down()


def test_failed_start_names_the_process_and_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = kube_module.apiserver_argv

    def broken_argv(*args: object) -> list[str]:
        return [*original(*args), "--no-such-flag=1"]  # type: ignore[arg-type]

    monkeypatch.setattr(kube_module, "apiserver_argv", broken_argv)
    with pytest.raises(DevstackError) as failure:
        Stack(tmp_path, ["kube"]).up()
    message = str(failure.value)
    assert "kube-apiserver exited before" in message
    assert "unknown flag: --no-such-flag" in message, "the log's tail is in the error"
    assert not (tmp_path / "kube-etcd.pid").exists(), "a failed up leaves nothing running"


def test_busy_api_server_port_is_reported_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("BIOMAGE_KUBE_PORT", str(port))
        started = time.monotonic()
        with pytest.raises(DevstackError, match=f"port {port} \\(BIOMAGE_KUBE_PORT\\) is already in use"):
            Stack(tmp_path, ["kube"]).up()
        assert time.monotonic() - started < 5


def test_stand_in_follows_a_restarted_aws_emulator(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["moto", "kube"])
    first = stack.up()
    try:
        before = _pids(tmp_path)
        standin = before["kube-lb-standin"]
        endpoint_file = tmp_path / "kube" / "lb-standin.aws-endpoint"
        assert endpoint_file.read_text() == first["AWS_ENDPOINT_URL"]
        moto = int((tmp_path / "moto.pid").read_text())
        os.killpg(moto, signal.SIGKILL)
        _wait_dead(moto)

        second = Stack(tmp_path, ["moto", "kube"]).up()
        # the emulator comes back on its endpoint (test_devstack.py: it says its state is gone), so the
        # stand-in keeps the endpoint it follows
        assert second["AWS_ENDPOINT_URL"] == first["AWS_ENDPOINT_URL"]
        assert _pids(tmp_path)["kube-apiserver"] == before["kube-apiserver"], "the API server was adopted"
        assert endpoint_file.read_text() == second["AWS_ENDPOINT_URL"]
        assert pid_alive(_pids(tmp_path)["kube-lb-standin"]) and standin
    finally:
        stack.down()


def test_orphaned_stand_in_exits_by_itself(tmp_path: Path) -> None:
    """A stand-in whose API server is gone (its pid file lost, say) does not poll forever."""
    kubeconfig = tmp_path / "admin.kubeconfig"
    kube_module.write_kubeconfig(kubeconfig, f"https://127.0.0.1:{free_port()}", ensure_pki(tmp_path / "pki"))
    argv = [sys.executable, "-m", "devstack.lb_standin", f"--kubeconfig={kubeconfig}", "--orphan-after=1"]
    started = time.monotonic()
    # the tools/ folder on the path as kube.py gives it, whatever the caller's PYTHONPATH (bare pytest)
    env = {**os.environ, "PYTHONPATH": str(kube_module.REPO_ROOT / "tools")}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)
    assert result.returncode == 1
    assert "no API server for 1s: exiting" in result.stderr
    assert time.monotonic() - started < 15


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_stalled_kwok_is_restarted_and_pods_become_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KWOK frozen (as after a VM clock jump: leases not renewed, Pods not moved) is detected and restarted."""
    monkeypatch.setenv("BIOMAGE_KWOK_STALL_AFTER", "12")
    stack = Stack(tmp_path, ["kube"])
    env = stack.up()
    try:
        supervisor = _pids(tmp_path)["kube-kwok"]
        (frozen,) = _children(supervisor)
        os.kill(frozen, signal.SIGSTOP)
        kubectl = [env["BIOMAGE_KUBECTL"], f"--kubeconfig={env['KUBECONFIG']}"]
        run = [*kubectl, "run", "stuck", "--image=registry.invalid/none:1", "--restart=Never"]
        deadline = time.monotonic() + 30
        # kube-controller-manager creates the namespace's default service account shortly after the start
        while (created := subprocess.run(run, capture_output=True, text=True, check=False)).returncode != 0:
            assert 'serviceaccount "default" not found' in created.stderr, created.stderr
            assert time.monotonic() < deadline, created.stderr
            time.sleep(0.5)
        # 12 s to see the stall, then a new KWOK's start, scheduling and status: 60 s was exceeded once under
        # the full suite's load on two cores (the restart is asserted from the supervisor's log below)
        ready = subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "--timeout=120s", "pod/stuck"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ready.returncode == 0, ready.stderr
        log = (tmp_path / "kube-kwok.log").read_text()
        assert "kwok-watch: KWOK stalled (" in log and "restarting it (restart 1)" in log
        (restarted,) = _children(supervisor)
        assert restarted != frozen
        _wait_dead(frozen)
        assert not pid_alive(frozen)
        # the restarted KWOK keeps the nodes Ready and the stack adoptable
        assert Stack(tmp_path, ["kube"]).up() == env
    finally:
        stack.down()
