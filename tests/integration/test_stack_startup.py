"""The whole local stack (AWS emulator, Kubernetes with simulated nodes, GitHub stand-in, Flux's controllers)
starts from cached binaries in a fresh folder, and a second `up` adopts it (same endpoints, nothing started
again). How fast is a benchmark's business, not a test's: `make bench` (tests/bench/bench_kube_startup.py)
measures the start-up against issue 10's 15 s target; this test prints its own timings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from devstack import Stack
from devstack.components import DEFAULT_COMPONENTS

pytestmark = pytest.mark.slow


def test_the_whole_stack_starts_from_cached_binaries_and_a_second_up_adopts_it(tmp_path: Path) -> None:
    stack = Stack(tmp_path, DEFAULT_COMPONENTS)
    started = time.perf_counter()
    env = stack.up()
    fresh = time.perf_counter() - started
    try:
        pids = {p.name: p.read_text() for p in tmp_path.rglob("*.pid")}
        started = time.perf_counter()
        assert Stack(tmp_path, DEFAULT_COMPONENTS).up() == env, "a second up adopts the running stack"
        adopt = time.perf_counter() - started
        assert pids and {p.name: p.read_text() for p in tmp_path.rglob("*.pid")} == pids, "adoption started nothing"
    finally:
        stack.down()
    print(f"\nwhole stack ({', '.join(DEFAULT_COMPONENTS)}): fresh start {fresh:.1f} s, adoption {adopt:.2f} s")
    assert {"KUBECONFIG", "FLUX_INSTALL_MANIFEST_URL", "GITHUB_API_URL", "AWS_ENDPOINT_URL"} <= set(env)
