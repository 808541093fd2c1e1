"""The inventories' connection, biomage.iac.forkserver, through ansible-playbook: the same play gives the
same results as with ansible.builtin.local (commands and their exit status, a task's environment, file
transfers, no_log), its module runs go to one fork server, and that server is gone when the run ends."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.lib.ansible_run import ansible_env, run_playbook

pytestmark = pytest.mark.slow
SECRET = "fork-server-test-secret-0123456789"
PLAYBOOK = """---
- name: Module runs of several kinds
  hosts: platform
  gather_facts: false
  vars:
    out: "{{ playbook_dir }}/out-{{ ansible_connection | regex_replace('\\\\W', '_') }}"
  tasks:
    - name: A folder for this connection's results
      ansible.builtin.file:
        path: "{{ out }}"
        state: directory
        mode: "0700"
    - name: A command with the task's environment, both streams and the working folder
      ansible.builtin.command:
        argv: [sh, -c, 'echo "$FORK_TEST_VALUE"; echo "to stderr" >&2; pwd; umask']
      environment:
        FORK_TEST_VALUE: "a value with 'quotes', \\"double quotes\\" and  spaces"
      register: command
      changed_when: false
    - name: A command that fails
      ansible.builtin.command:
        argv: [sh, -c, "echo refused >&2; exit 4"]
      register: failing
      failed_when: false
      changed_when: false
    - name: A file transfer and a module run holding a secret
      ansible.builtin.copy:
        content: "{{ secret }}"
        dest: "{{ out }}/secret.txt"
        mode: "0600"
      no_log: true
      register: copied
    - name: A module that reads the file back
      ansible.builtin.slurp:
        src: "{{ out }}/secret.txt"
      register: slurped
      no_log: true
    - name: The results
      ansible.builtin.copy:
        dest: "{{ out }}/results.json"
        mode: "0600"
        content: >-
          {{ {'stdout': command.stdout_lines, 'stderr': command.stderr, 'rc': command.rc,
              'failing': [failing.rc, failing.stderr], 'copied': copied.changed,
              'secret_back': (slurped.content | b64decode) == secret} | to_json }}
"""


def test_a_play_gives_the_local_connections_results_through_one_fork_server(tmp_path: Path) -> None:
    playbook = tmp_path / "kinds.yml"
    playbook.write_text(PLAYBOOK)
    env = ansible_env()
    forked = run_playbook(playbook, env=env, extra_vars={"secret": SECRET}, args=["-vvv"]).assert_ok()
    local = run_playbook(
        playbook, env=env, extra_vars={"secret": SECRET, "ansible_connection": "ansible.builtin.local"}, args=["-vvv"]
    ).assert_ok()

    results = {
        name: json.loads((tmp_path / f"out-{name}" / "results.json").read_text())
        for name in ("biomage_iac_forkserver", "ansible_builtin_local")
    }
    assert results["biomage_iac_forkserver"] == results["ansible_builtin_local"]
    found = results["biomage_iac_forkserver"]
    assert found["stdout"][0].startswith("a value with 'quotes', ") and found["stdout"][0].endswith(" and  spaces")
    assert found["stdout"][1] == str(tmp_path)  # the playbook's folder, as for the local connection
    assert found["stderr"] == "to stderr"
    assert found["failing"] == [4, "refused"]
    assert found["copied"] is True and found["secret_back"] is True

    # every module run (eight: copy runs stat, then copy) went to a fork server; none with the local connection.
    # The task with an environment of its own had a server of its own (libraries read it when imported).
    servers = re.findall(r"\(in a child of the fork server (\S+)\)", forked.stdout)
    assert len(servers) == forked.stdout.count("Using module file") == 8, forked.stdout[-3000:]
    assert sorted(servers.count(path) for path in set(servers)) == [1, 7]
    assert servers[1] != servers[0]
    assert "in a child of the fork server" not in local.stdout
    assert SECRET not in forked.output and SECRET not in local.output

    # the servers end with their run (each sees its owner's end a moment after it)
    deadline = time.monotonic() + 10
    while any(running(path) or Path(path).exists() for path in servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [path for path in set(servers) if running(path) or Path(path).exists()] == []


def running(path: str) -> bool:
    return subprocess.run(["pgrep", "-f", path], capture_output=True, text=True, check=False).stdout != ""
