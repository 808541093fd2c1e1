"""CI's entry point fails when the suite is empty: pytest's "no tests collected" (exit 5) is not success.

The chain is ``.ci/run`` -> ``make test`` -> ``make pytest`` -> ``pytest``; each link is checked here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_make_pytest_fails_when_no_test_is_collected() -> None:
    make = shutil.which("make")
    assert make is not None, "make runs the suite (make test); it must be on PATH"
    env = {
        **os.environ,
        # select nothing: pytest exits 5 ("no tests ran"); the Makefile must not turn that into success
        "PYTEST_ADDOPTS": "-p no:cacheprovider -k this_selects_no_test_at_all",
    }
    result = subprocess.run(
        [make, "--no-print-directory", "pytest"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    # pytest's own exit status 5, as make reports it (with or without test workers)
    assert "pytest] Error 5" in output, output[-3000:]
    assert result.returncode != 0, f"`make pytest` succeeded with no test collected:\n{output[-3000:]}"


def test_ci_entry_point_runs_make_test_and_passes_its_failure_on(tmp_path: Path) -> None:
    # a stand-in `make` first on PATH: records its arguments and fails as make does when pytest exits 5
    fake = tmp_path / "make"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "argv"}\nexit 2\n')
    fake.chmod(0o755)
    result = subprocess.run(
        [str(REPO_ROOT / ".ci/run")],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (tmp_path / "argv").read_text().split() == ["test"]
    assert result.returncode != 0
