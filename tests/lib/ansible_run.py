"""Run ansible-playbook from the checkout the way an operator does, and read its recap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


@dataclass
class PlaybookResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """``{host: {"ok": n, "changed": n, "failed": n, ...}}`` from the PLAY RECAP."""
        tail = self.stdout.rsplit("PLAY RECAP", 1)[-1]
        return {
            m["host"]: {k: int(v) for k, v in (pair.split("=") for pair in m["counts"].split())}
            for m in RECAP_LINE.finditer(tail)
        }

    def total(self, counter: str) -> int:
        return sum(host.get(counter, 0) for host in self.recap.values())

    def assert_ok(self) -> PlaybookResult:
        assert self.returncode == 0, f"{' '.join(self.argv)} failed:\n{self.output[-6000:]}"
        assert self.recap, f"no PLAY RECAP in output:\n{self.output[-3000:]}"
        assert self.total("failed") == 0 and self.total("unreachable") == 0, self.output[-6000:]
        return self


def ansible_env(stack_env: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of an operator's shell after `make dev-up`, plus ``extra``."""
    env = {
        **os.environ,
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONPATH": str(REPO_ROOT / "tools"),
    }
    # ansible.cfg enables biomage.iac.plan: the test suite's playbooks stay out of CI's step summary
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(stack_env or {})
    env.update(extra)
    return env


def run_playbook(
    playbook: str | Path,
    inventory: str | Path = "inventories/development",
    *,
    env: dict[str, str] | None = None,
    check: bool = False,
    diff: bool = False,
    extra_vars: dict[str, object] | None = None,
    args: list[str] | None = None,
    timeout: float = 900,
    preexec_fn: Callable[[], object] | None = None,  # run in the child before exec (e.g. resource limits)
) -> PlaybookResult:
    argv = [str(BIN_DIR / "ansible-playbook"), str(playbook), "-i", str(inventory)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    argv += args or []
    proc = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env or ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec_fn,
    )
    return PlaybookResult(argv, proc.returncode, proc.stdout, proc.stderr)


def converge_local_cluster(env: dict[str, str]) -> PlaybookResult:
    """The development cluster first, as in the cloud: `base.yml --tags eks_cluster` registers the local
    API server with the emulator (EKS cluster, IAM OIDC provider, eksctl's network stack), which
    resources.yml then reads (the IRSA issuer, Redis's network)."""
    return run_playbook("playbooks/base.yml", env=env, args=["--tags", "eks_cluster"]).assert_ok()


@contextmanager
def playbook_in_checkout(name: str, text: str) -> Iterator[Path]:
    """A test's playbook written into playbooks/ (so that ansible.cfg's collection path and the inventories'
    playbook-relative lookups resolve as for the real ones) as ``.itest-<name>-<pid>.yml``, removed after.
    The name is hidden, per process (two test workers) and left out of the collection build (galaxy.yml)."""
    path = REPO_ROOT / "playbooks" / f".itest-{name}-{os.getpid()}.yml"
    path.write_text(text, encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
