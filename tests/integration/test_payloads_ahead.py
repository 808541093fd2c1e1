"""biomage.iac.payloads through ansible-playbook: the tasks of a play find their modules' payloads
already built (ansible-core reports "using cached module" and never takes the build lock for them),
including a module of an included file; without the callback each task builds its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.lib.ansible_run import ansible_env, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = """---
- name: Modules used after the play has started
  hosts: platform
  gather_facts: false
  tasks:
    - name: Give the background process a head start
      ansible.builtin.command: sleep 3
      changed_when: false
    - name: A module of the play
      ansible.builtin.stat:
        path: "{{ playbook_dir }}"
    - name: A module of an included file
      ansible.builtin.include_tasks: included.yml
"""
INCLUDED = """---
- name: Read this file back
  ansible.builtin.slurp:
    src: "{{ playbook_dir }}/included.yml"
"""


def built_by_tasks(output: str) -> set[str]:
    return set(re.findall(r"ANSIBALLZ: Lock acquired: \S*/ansiballz_cache/ansible\.modules\.(\w+)-", output))


def cached_for_tasks(output: str) -> set[str]:
    return set(re.findall(r"ANSIBALLZ: using cached module: \S*/ansiballz_cache/ansible\.modules\.(\w+)-", output))


def test_the_plays_modules_are_built_before_their_tasks_need_them(tmp_path: Path) -> None:
    playbook = tmp_path / "ahead.yml"
    playbook.write_text(PLAYBOOK)
    (tmp_path / "included.yml").write_text(INCLUDED)

    ahead = run_playbook(playbook, env=ansible_env(ANSIBLE_DEBUG="1")).assert_ok()
    assert {"stat", "slurp"} <= cached_for_tasks(ahead.output)
    assert not {"stat", "slurp"} & built_by_tasks(ahead.output)

    alone = run_playbook(
        playbook, env=ansible_env(ANSIBLE_DEBUG="1", ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan")
    ).assert_ok()
    assert {"command", "stat", "slurp"} <= built_by_tasks(alone.output)
    assert not cached_for_tasks(alone.output)
