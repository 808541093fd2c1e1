"""Benchmark: start-up of the local stack from cached binaries.

Measures `Stack(...).up()` in a fresh state folder, a few times, for the Kubernetes component alone
(etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK ready, the fake nodes Ready,
the cert-manager and Flux CRDs Established, the load-balancer stand-in watching) and for the whole
stack (plus the AWS emulator, the GitHub stand-in and Flux's controllers), and the adoption of an
already running stack. Target (issues 2 and 10): ready in under 15 s on this machine. Exit status 1
when a median misses the target.
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
from devstack.components import DEFAULT_COMPONENTS  # noqa: E402
from devstack.kube import ensure_binaries  # noqa: E402

TARGET_SECONDS = 15.0
RUNS = 3


def _timed_up(state_dir: Path, components: tuple[str, ...]) -> tuple[float, float]:
    """Seconds for a fresh `up`, then for a second `up` that adopts the running stack."""
    stack = Stack(state_dir, components)
    started = time.perf_counter()
    stack.up()
    fresh = time.perf_counter() - started
    try:
        started = time.perf_counter()
        Stack(state_dir, components).up()
        adopt = time.perf_counter() - started
    finally:
        stack.down()
    return fresh, adopt


def main() -> int:
    binaries = ensure_binaries()  # builds once per machine; not part of the measurement
    print(
        f"Kubernetes {binaries.kube_version}, KWOK {binaries.kwok_version}, cached binaries, {RUNS} fresh starts each"
    )
    print(f"{'measure':<58} {'measured':>10} {'target':>10}  result")
    met = True
    for label, components in (("kube", ("kube",)), ("whole stack", DEFAULT_COMPONENTS)):
        fresh: list[float] = []
        adopt: list[float] = []
        for _run in range(RUNS):
            with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
                cold, warm = _timed_up(Path(tmp), components)
                fresh.append(cold)
                adopt.append(warm)
        median = statistics.median(fresh)
        met = met and median < TARGET_SECONDS
        verdict = "met" if median < TARGET_SECONDS else "MISSED"
        print(f"{label + ': fresh start to ready (median)':<58} {median:>9.2f}s {TARGET_SECONDS:>9.1f}s  {verdict}")
        print(f"{label + ': fresh start to ready (worst)':<58} {max(fresh):>9.2f}s {'':>10}")
        print(f"{label + ': second up adopting the running stack (median)':<58} {statistics.median(adopt):>9.2f}s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
