"""Benchmark: start-up of the local Kubernetes control plane from cached binaries.

Measures `Stack(..., ["kube"]).up()` in a fresh state folder (etcd + kube-apiserver ready, the
cert-manager and Flux CRDs Established, the load-balancer stand-in watching), a few times, and the
adoption of an already running control plane. Target (issue 2): ready in under 15 s on this machine.
Exit status 1 when the median misses the target.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))

from devstack import Stack  # noqa: E402
from devstack.kube import ensure_binaries  # noqa: E402

TARGET_SECONDS = 15.0
RUNS = 3


def _timed_up(state_dir: Path) -> tuple[float, float]:
    """Seconds for a fresh `up`, then for a second `up` that adopts the running control plane."""
    stack = Stack(state_dir, ["kube"])
    started = time.perf_counter()
    stack.up()
    fresh = time.perf_counter() - started
    try:
        started = time.perf_counter()
        Stack(state_dir, ["kube"]).up()
        adopt = time.perf_counter() - started
    finally:
        stack.down()
    return fresh, adopt


def main() -> int:
    binaries = ensure_binaries()  # builds once per machine; not part of the measurement
    fresh: list[float] = []
    adopt: list[float] = []
    for _run in range(RUNS):
        with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
            cold, warm = _timed_up(Path(tmp))
            fresh.append(cold)
            adopt.append(warm)
    median = statistics.median(fresh)
    verdict = "met" if median < TARGET_SECONDS else "MISSED"
    print(f"kube-apiserver {binaries.kube_version} + etcd, cached binaries, {RUNS} fresh starts")
    print(f"{'measure':<46} {'measured':>10} {'target':>10}  result")
    print(f"{'fresh start to ready + CRDs (median)':<46} {median:>9.2f}s {TARGET_SECONDS:>9.1f}s  {verdict}")
    print(f"{'fresh start to ready + CRDs (worst)':<46} {max(fresh):>9.2f}s {'':>10}")
    print(f"{'second up adopting the running server (median)':<46} {statistics.median(adopt):>9.2f}s {'':>10}")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
