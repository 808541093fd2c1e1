"""biomage.iac.progress: long tasks print a progress line at the promised interval, with the elapsed
time and the latest status; eksctl-like commands keep their whole log in a file named in the output."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from ansible_collections.biomage.iac.plugins.callback import progress

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env, run_playbook

FIXTURE = REPO_ROOT / "tests/fixtures/playbooks/plan"
LINE = re.compile(r"^\[progress\] (?P<task>[^:]+): (?:(?P<m>\d+)m)?(?P<s>\d+)s elapsed; (?P<status>.*)$", re.M)


def seconds(match: re.Match) -> int:
    return int(match["m"] or 0) * 60 + int(match["s"])


def test_long_waits_print_progress_at_the_interval(tmp_path: Path) -> None:
    env = ansible_env(ANSIBLE_LIBRARY=str(FIXTURE / "library"), BIOMAGE_PROGRESS_INTERVAL="2")
    result = run_playbook(
        FIXTURE / "progress.yml", "localhost,", env=env, extra_vars={"fixture_dir": str(tmp_path), "fixture_seconds": 7}
    ).assert_ok()
    lines = list(LINE.finditer(result.stdout))
    command = [m for m in lines if m["task"] == "A long command (eksctl-like)"]
    wait = [m for m in lines if m["task"] == "A wait retried with until (like the load balancer's hostname)"]
    # 7 s at a 2 s interval: lines at about 2, 4 and 6 s, each at most one interval after the one before
    for found in (command, wait):
        assert len(found) >= 2, result.stdout
        times = [seconds(m) for m in found]
        assert times[0] <= 4
        assert all(0 < later - earlier <= 4 for earlier, later in itertools.pairwise(times)), times
    # the status is the command's latest log line (before its first line, on a loaded machine: the command's
    # start and its log, or none yet)
    step = "waiting for CloudFormation stack eksctl-demo-cluster: step"
    started = f"python3 started, its log is {tmp_path / 'eksctl.log'}"
    assert all(step in m["status"] or m["status"] in (started, "no status reported yet") for m in command)
    assert step in command[-1]["status"]
    assert all(re.match(r"attempt \d+/\d+", m["status"]) for m in wait)
    assert not [m for m in lines if m["task"] == "A short task"]  # a task shorter than the interval: no line
    log = tmp_path / "eksctl.log"
    assert f"A long command (eksctl-like): full log in {log}" in result.stdout
    assert len(re.findall(r"eksctl-demo-cluster: step \d", log.read_text())) == 7


def test_the_promised_interval_is_30_seconds() -> None:
    options = yaml.safe_load(progress.DOCUMENTATION)["options"]
    assert options["interval"]["default"] == 30
    assert progress.elapsed(95) == "1m35s" and progress.elapsed(7) == "7s"


def test_an_interrupted_run_leaves_no_progress_folder(tmp_path: Path) -> None:
    # Ctrl-C ends the run before its summary (v2_playbook_on_stats): the folder of the tasks' progress files goes too
    playbook = tmp_path / "interrupted.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: A long command\n      ansible.builtin.command: sleep 60\n"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = ansible_env(TMPDIR=str(temp))
    argv = [str(BIN_DIR / "ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local"]
    argv += ["-e", f"ansible_python_interpreter={sys.executable}"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(temp.glob("biomage-progress-*/*.log")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(temp.glob("biomage-progress-*")), "the long task's progress file was written"
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 99, output  # ansible-playbook's "User interrupted execution"
    assert "User interrupted execution" in output
    assert not list(temp.glob("biomage-progress-*"))
