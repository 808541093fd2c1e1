"""A hostile `.ci.yaml` committed to service repositories of the GitHub stand-in: an alias bomb (a few
hundred bytes that expand to billions of nodes) in one, a 10 MB file in another. playbooks/ci.yml runs
under an address-space limit (as a CI runner or a container would impose): it fails fast naming each
repository, the file and the limit it exceeds, within the memory limit, and changes nothing.

The parsers' limits themselves are tests/unit/plugins/module_utils/test_bounded_inputs.py."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lib import aws
from tests.lib.ansible_run import PlaybookResult, run_playbook
from tests.lib.github import OWNER, call, commit_files

pytestmark = pytest.mark.slow
SEED = json.loads((Path(__file__).resolve().parents[2] / "tools/devstack/github_seed.json").read_text())
CI_FILES = {r["name"]: r["files"][".ci.yaml"] for r in SEED if ".ci.yaml" in r["files"]}
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of ansible-playbook and every process it starts


def alias_bomb(levels: int = 10) -> str:
    """Valid YAML of under 1 kB whose aliases expand to 9**levels strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


TEN_MB = CI_FILES["api"] + "# padding\n" * (10 * 1024 * 1024 // 10)


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def ci_state(env: dict[str, str], devstack: dict[str, str]) -> dict[str, object]:
    """What a run could change: the CI stacks (status, last update) and the repositories' variables."""
    stacks = {
        s["StackName"]: (s["StackStatus"], str(s.get("LastUpdatedTime", s["CreationTime"])))
        for s in aws.all_stacks(aws.client(devstack, "cloudformation"))
        if s["StackName"].startswith("biomage-ci-")
    }
    variables = {
        repo: call(env, "GET", f"/repos/{OWNER}/{repo}/actions/variables")[1] for repo in ("api", "ui", "worker")
    }
    return {"stacks": stacks, "variables": variables}


def test_an_alias_bomb_and_a_10_mb_ci_yaml_fail_fast_naming_repository_file_and_limit_in_bounded_memory(
    stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    env = stack_ansible_env
    # the limit bites: a child under it cannot hold the 2 GB an unbounded parse of the bomb would need
    grow = [sys.executable, "-c", "bytearray(2 * 1024**3)"]
    refused = subprocess.run(grow, preexec_fn=limit_memory, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "MemoryError" in refused.stderr
    before = ci_state(env, devstack)
    try:
        commit_files(env, {".ci.yaml": alias_bomb()}, repo="ui", message="a .ci.yaml alias bomb")
        commit_files(env, {".ci.yaml": TEN_MB}, repo="api", message="a 10 MB .ci.yaml")
        started = time.monotonic()
        result: PlaybookResult = run_playbook("playbooks/ci.yml", env=env, timeout=120, preexec_fn=limit_memory)
        took = time.monotonic() - started
    finally:
        commit_files(env, {".ci.yaml": CI_FILES["ui"]}, repo="ui", message="restore .ci.yaml")
        commit_files(env, {".ci.yaml": CI_FILES["api"]}, repo="api", message="restore .ci.yaml")
    output = " ".join(result.output.split())
    assert result.returncode != 0
    assert f"{OWNER}/ui:.ci.yaml" in output and "expands to more than 200000 nodes" in output
    assert f"{OWNER}/api:.ci.yaml: {len(TEN_MB)} bytes exceeds the limit of 262144 bytes" in output
    assert "MemoryError" not in output and "Killed" not in output, "refused, not run out of memory"
    assert "Read and validate the CI privileges files of biomage-org] *** [ERROR]" in output, "stopped there"
    assert result.total("changed") == 0
    assert ci_state(env, devstack) == before, "nothing was changed"
    assert took < 45, f"the run took {took:.0f} s"
