"""Run KWOK and restart it when it stalls (``python -m devstack.kwok_watch [options] -- <kwok argv>``).

KWOK was seen to stop renewing its nodes' leases and moving Pods (after a jump of the VM's clock),
which left every test waiting for a Pod to hang. This supervisor runs KWOK as its child and watches
what KWOK must keep doing, measured on the monotonic clock so that a clock jump cannot fool it:

- each fake node's Lease (``kube-node-lease/<node>``) gets a new ``renewTime`` at least every
  ``--stall-after`` seconds (KWOK renews it every few seconds);
- a Pod bound to a fake node is Ready (or done) within ``--stall-after`` seconds of being seen bound
  and not Ready, and a deleted one is gone within that time.

When either is not so, it kills KWOK and starts it again (same arguments, same health port) and
says so in its log (``kube-kwok.log``). It exits with KWOK's status when KWOK exits by itself, and
stops KWOK when stopped (SIGTERM), so the stack's pid file and health check keep their meaning.
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack.core import StopSignal

LEASE_NAMESPACE = "kube-node-lease"


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _pod_settled(pod: dict[str, Any]) -> bool:
    """Ready, finished, or not KWOK's business yet; a deleted Pod never is (KWOK removes it)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


@dataclass
class StallDetector:
    """What KWOK has not done for too long, from successive observations (monotonic seconds)."""

    nodes: tuple[str, ...]
    stall_after: float
    _lease_seen: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    _pod_waiting: dict[str, float] = field(default_factory=dict)

    def reset(self) -> None:
        self._lease_seen.clear()
        self._pod_waiting.clear()

    def observe(self, now: float, leases: dict[str, str | None], pods: list[dict[str, Any]]) -> list[str]:
        """Record one look at the leases (node -> renewTime) and Pods; return the stalls found."""
        stalls = []
        for node in self.nodes:
            renew = leases.get(node)
            previous = self._lease_seen.get(node)
            if previous is None or previous[0] != renew:
                self._lease_seen[node] = (renew, now)
            elif now - previous[1] > self.stall_after:
                stalls.append(f"the lease of {node} was not renewed for {now - previous[1]:.0f}s (renewTime {renew})")
        waiting = {}
        for pod in pods:
            if pod.get("spec", {}).get("nodeName") not in self.nodes or _pod_settled(pod):
                continue
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            since = self._pod_waiting.get(key, now)
            waiting[key] = since
            if now - since > self.stall_after:
                state = "deleted but not removed" if pod["metadata"].get("deletionTimestamp") else "not Ready"
                stalls.append(f"Pod {key} on {pod['spec']['nodeName']} {state} for {now - since:.0f}s")
        self._pod_waiting = waiting
        return stalls


class Api:
    """The few reads the supervisor needs, with the admin client certificate."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.server}{path}", timeout=5, context=self.context) as resp:  # noqa: S310
            return json.load(resp)

    def leases(self) -> dict[str, str | None]:
        items = self.get(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases")["items"]
        return {item["metadata"]["name"]: item.get("spec", {}).get("renewTime") for item in items}

    def pods(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/pods")["items"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kwok_watch", description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--node", action="append", default=[], help="a fake node KWOK keeps alive (repeat)")
    parser.add_argument("--stall-after", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("kwok", nargs=argparse.REMAINDER, help="-- then KWOK's command line")
    args = parser.parse_args(argv)
    args.kwok = [a for a in args.kwok if a != "--"] if args.kwok[:1] == ["--"] else args.kwok
    if not args.kwok:
        parser.error("KWOK's command line is missing (after --)")
    return args


def _say(message: str) -> None:
    print(f"kwok-watch: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stopping = StopSignal()
    api = Api(args.server, args.ca, args.cert, args.key)
    detector = StallDetector(tuple(args.node), args.stall_after)
    child = subprocess.Popen(args.kwok)  # the stack's own KWOK command line
    restarts = 0
    while not stopping:
        time.sleep(args.interval)
        if stopping:
            break
        if child.poll() is not None:
            _say(f"KWOK exited with status {child.returncode}")
            return child.returncode or 1
        try:
            stalls = detector.observe(time.monotonic(), api.leases(), api.pods())
        except (OSError, ValueError, KeyError) as exc:
            # the API server is restarting or gone: nothing to judge KWOK by (the stack stops us)
            _say(f"cannot read the API server ({exc}); watching on")
            detector.reset()
            continue
        if stalls:
            restarts += 1
            _say(f"KWOK stalled ({'; '.join(stalls)}): restarting it (restart {restarts})")
            child.kill()
            child.wait()
            detector.reset()
            child = subprocess.Popen(args.kwok)
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
