"""Secrets off disk (docs/secrets-off-disk.md): with the repository's ansible.cfg (pipelining) a module
holding a token gets its arguments on stdin, so killing the run mid-task leaves no file containing the
token in any temporary folder. The control run without pipelining shows the test would see one."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env

pytestmark = pytest.mark.slow
TOKEN = "ghs_SecretsOffDiskTestToken0123456789abcdef"
PLAYBOOK = f"""---
- name: A slow module that holds a token
  hosts: platform
  gather_facts: false
  tasks:
    - name: Hold the token
      ansible.builtin.wait_for:
        path: "{{{{ playbook_dir }}}}/never-written"
        search_regex: "{TOKEN}"
        timeout: 120
"""


def files_with(folders: list[Path], needle: bytes) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                if path.is_file() and needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def interrupted_run(tmp_path: Path, sig: int, **env_extra: str) -> tuple[list[Path], str]:
    """Start the playbook, wait until the module runs, send ``sig`` to the whole run; the temp folders."""
    playbook = tmp_path / "hold.yml"
    playbook.write_text(PLAYBOOK)
    temp, local, remote, home = (tmp_path / name for name in ("tmp", "local", "remote", "home"))
    for folder in (temp, local, remote, home):
        folder.mkdir(exist_ok=True)
    env = ansible_env(
        TMPDIR=str(temp),
        ANSIBLE_LOCAL_TEMP=str(local),
        ANSIBLE_REMOTE_TEMP=str(remote),
        HOME=str(home),
        **env_extra,
    )
    argv = [str(BIN_DIR / "ansible-playbook"), str(playbook), "-i", "inventories/development", "--limit", "platform"]
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not any("wait_for_payload_" in p.name for p in temp.rglob("*")):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the module never started"
            time.sleep(0.2)
        time.sleep(1)  # the module is running: its process holds the token
        os.killpg(proc.pid, sig)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return [temp, local, remote, home], output


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: the run's TMPDIR holds the Unix socket of ansible-core's local RPC
    server, and a socket path may not exceed 107 bytes (pytest's tmp_path under a test worker can be longer)."""
    with tempfile.TemporaryDirectory(prefix="sod-") as folder:
        yield Path(folder)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_an_interrupted_run_leaves_no_file_with_the_token(short_tmp: Path, sig: int) -> None:
    folders, output = interrupted_run(short_tmp, sig)
    assert files_with(folders, TOKEN.encode()) == [], output[-2000:]


def test_the_check_finds_the_payload_when_pipelining_is_off(short_tmp: Path) -> None:
    """Control: without pipelining the AnsiballZ payload with the token is written to the remote temp folder."""
    folders, output = interrupted_run(short_tmp, signal.SIGKILL, ANSIBLE_PIPELINING="False")
    found = files_with(folders, TOKEN.encode())
    assert found, output[-2000:]
    assert any("AnsiballZ_wait_for.py" in f for f in found), found
