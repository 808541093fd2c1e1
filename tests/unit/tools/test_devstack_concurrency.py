"""The stack's concurrent start (components after the milestones they need, failures reported once)
and KWOK's supervisor's stall detection (no server needed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from devstack import core, stack
from devstack.core import Component, Context, DevstackError
from devstack.kube import kwok_watch_argv
from devstack.kube_pki import ensure_pki
from devstack.kwok_watch import StallDetector, _parse

NODES = ("kwok-node-0", "kwok-node-1")


def _pod(name: str, node: str | None, ready: bool = False, deleted: bool = False, phase: str = "Running") -> dict:
    metadata: dict = {"namespace": "ui", "name": name}
    if deleted:
        metadata["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_renewed_leases_and_ready_pods_are_no_stall() -> None:
    detector = StallDetector(NODES, stall_after=30)
    for second in range(0, 120, 10):
        renew = f"2026-12-03T00:00:{second % 60:02d}Z#{second}"
        pods = [_pod("ready", "kwok-node-0", ready=True), _pod("done", "kwok-node-1", phase="Succeeded")]
        # a Pod not bound to a fake node (pending for the scheduler, say) is not KWOK's business
        pods.append(_pod("unscheduled", None))
        assert detector.observe(float(second), dict.fromkeys(NODES, renew), pods) == []


def test_a_lease_not_renewed_is_a_stall_whatever_the_wall_clock_says() -> None:
    detector = StallDetector(NODES, stall_after=30)
    # the renewTime may be far in the future after the clock jumped back: only its change counts
    leases = {"kwok-node-0": "2030-01-01T00:00:00Z", "kwok-node-1": "2026-12-03T00:00:00Z"}
    assert detector.observe(0.0, leases, []) == []
    assert detector.observe(29.0, {**leases, "kwok-node-1": "2026-12-03T00:00:29Z"}, []) == []
    stalls = detector.observe(31.0, {**leases, "kwok-node-1": "2026-12-03T00:00:30Z"}, [])
    assert len(stalls) == 1
    assert "the lease of kwok-node-0 was not renewed for 31s" in stalls[0]
    # a missing lease (KWOK never created it) is a stall too
    fresh = StallDetector(NODES, stall_after=30)
    fresh.observe(0.0, {"kwok-node-0": "a"}, [])
    assert any("kwok-node-1" in s for s in fresh.observe(40.0, {"kwok-node-0": "b"}, []))


def test_a_bound_pod_left_not_ready_or_deleted_is_a_stall() -> None:
    detector = StallDetector(NODES, stall_after=30)
    leases = dict.fromkeys(NODES)
    stuck, gone = _pod("stuck", "kwok-node-0"), _pod("gone", "kwok-node-1", ready=True, deleted=True)
    assert detector.observe(0.0, {k: "0" for k in leases}, [stuck, gone]) == []
    stalls = detector.observe(31.0, {k: "1" for k in leases}, [stuck, gone])
    assert stalls == [
        "Pod ui/stuck on kwok-node-0 not Ready for 31s",
        "Pod ui/gone on kwok-node-1 deleted but not removed for 31s",
    ]
    # a Pod that became Ready in time is forgotten, and one seen again later starts a new count
    assert detector.observe(32.0, {k: "2" for k in leases}, [_pod("stuck", "kwok-node-0", ready=True)]) == []
    assert detector.observe(33.0, {k: "3" for k in leases}, [stuck]) == []


def test_kwok_runs_under_its_supervisor_with_its_own_command_line(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    kwok = ["/cache/kwok", "--kubeconfig=/k", "--server-address=127.0.0.1:1234"]
    argv = kwok_watch_argv(kwok, "https://127.0.0.1:6443", pki, "30")
    assert argv[1:3] == ["-m", "devstack.kwok_watch"]
    assert argv[-len(kwok) - 1 :] == ["--", *kwok]
    args = _parse(argv[3:])
    assert args.kwok == kwok
    assert args.node == list(NODES)
    assert args.stall_after == 30.0
    assert args.cert == pki.admin_cert


class _Fake(Component):
    def __init__(
        self, name: str, log: list[str], seconds: float = 0.0, after: tuple[str, ...] = (), fail: bool = False
    ):
        self.name, self.after, self.log, self.seconds, self.fail = name, after, log, seconds, fail

    def start(self, ctx: Context) -> dict[str, str]:
        self.log.append(f"start {self.name}")
        time.sleep(self.seconds)
        if self.fail:
            raise DevstackError(f"{self.name} broke")
        self.log.append(f"up {self.name}")
        return {f"{self.name.upper()}_URL": f"http://{self.name}"}

    def stop(self, ctx: Context) -> bool:
        self.log.append(f"stop {self.name}")
        return True


def _stack(tmp_path: Path, components: list[Component]) -> stack.Stack:
    result = stack.Stack(tmp_path, [])
    result.components = components
    return result


def test_components_start_concurrently_each_after_what_it_needs(tmp_path: Path) -> None:
    log: list[str] = []
    slow, quick = _Fake("slow", log, seconds=0.5), _Fake("quick", log, seconds=0.5)
    late = _Fake("late", log, after=("slow",))
    started = time.monotonic()
    env = _stack(tmp_path, [slow, quick, late]).up()
    assert time.monotonic() - started < 0.9, "slow and quick ran side by side"
    assert log.index("start late") > log.index("up slow")
    assert env["SLOW_URL"] == "http://slow" and env["LATE_URL"] == "http://late"
    assert core.read_env_file(tmp_path / "env") == env


def test_a_milestone_no_component_provides_is_not_waited_for(tmp_path: Path) -> None:
    log: list[str] = []
    _stack(tmp_path, [_Fake("alone", log, after=("kube-api",))]).up()
    assert log == ["start alone", "up alone"]


def test_a_failed_component_is_reported_and_everything_stopped(tmp_path: Path) -> None:
    log: list[str] = []
    components = [_Fake("broken", log, seconds=0.2, fail=True), _Fake("waiting", log, after=("broken",))]
    with pytest.raises(DevstackError, match="broken broke"):
        _stack(tmp_path, components).up()
    assert "start waiting" not in log
    assert {"stop broken", "stop waiting"} <= set(log)
    assert not (tmp_path / "env").exists()


def test_a_milestone_reached_part_way_releases_its_waiters_with_the_env_so_far() -> None:
    ctx = Context(state_dir=Path("/nonexistent"))
    ctx.expected = {"kube-api"}
    seen: list[str] = []
    waiter = threading.Thread(target=lambda: (ctx.wait_for("kube-api"), seen.append(ctx.env["KUBECONFIG"])))
    waiter.start()
    time.sleep(0.1)
    assert seen == []
    ctx.reached("kube-api", {"KUBECONFIG": "/k"})
    waiter.join(2)
    assert seen == ["/k"]
