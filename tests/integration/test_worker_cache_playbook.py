"""biomage.iac.worker_cache through ansible-playbook: each template of the run is compiled once, by the first
process that renders it, and the later tasks' workers read that code (ansible-core's debug log names each);
the play's results are those of a run without the callback, which compiles the same templates again in every
task."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.lib.ansible_run import ansible_env, run_playbook

pytestmark = pytest.mark.slow
# written as the roles are: role-default-like variables built from other variables, a conditional, a loop,
# a template file with a #jinja2: header, a filter of the collection
PLAYBOOK = """---
- name: Templates rendered again and again
  hosts: platform
  gather_facts: false
  vars:
    demo_services: [ui, api, worker, pipeline]
    demo_namespace: "{{ demo_services | first }}-{{ demo_ref }}"
    demo_ref: master
    demo_manifest: >-
      {{ lookup('ansible.builtin.template', 'objects.yml.j2') | biomage.iac.yaml_documents('objects.yml.j2') }}
  tasks:
    - name: First use
      ansible.builtin.debug:
        msg: "{{ demo_namespace }} {{ demo_manifest | map(attribute='metadata.name') | list }}"
    - name: Second use, with a condition
      ansible.builtin.debug:
        msg: "{{ demo_namespace }} {{ demo_manifest | map(attribute='metadata.name') | list }}"
      when: demo_services | length > 3
    - name: Third use, in a loop
      ansible.builtin.debug:
        msg: "{{ item }}: {{ demo_namespace }}"
      loop: "{{ demo_services }}"
"""
OBJECTS = """#jinja2: trim_blocks: False
{% for service in demo_services %}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {{ service }}-{{ demo_ref }}
{% endfor %}
"""


def events(output: str) -> list[tuple[str, str]]:
    """(compiled|loaded, key) of each debug line of the cache. A process reads the folder only for code it does
    not hold itself: the one that compiled it holds it, so a read is another process's (a later worker's)."""
    return re.findall(r"^\s*\d+ [\d.]+: worker_cache: (compiled|loaded) (\w+)$", output, re.M)


def messages(output: str) -> list[str]:
    return [line.strip().removeprefix("msg: ").strip("'") for line in output.splitlines() if "msg: " in line]


def test_each_template_is_compiled_once_per_run_and_read_by_the_later_workers(tmp_path: Path) -> None:
    playbook = tmp_path / "templates.yml"
    playbook.write_text(PLAYBOOK)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "objects.yml.j2").write_text(OBJECTS)

    cached = run_playbook(playbook, env=ansible_env(ANSIBLE_DEBUG="1")).assert_ok()
    seen = events(cached.output)
    compiled = Counter(key for event, key in seen if event == "compiled")
    assert compiled, "the run compiled its templates through the cache"
    assert max(compiled.values()) == 1, "no template is compiled twice in a run"
    read_by_later_workers = {key for event, key in seen if event == "loaded"}
    assert len(read_by_later_workers) >= 3 and read_by_later_workers <= set(compiled)

    plain = run_playbook(
        playbook, env=ansible_env(ANSIBLE_DEBUG="1", ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan")
    ).assert_ok()
    assert not events(plain.output)
    assert messages(cached.output) == messages(plain.output)
    assert messages(plain.output) == [
        "ui-master ['ui-master', 'api-master', 'worker-master', 'pipeline-master']",
        "ui-master ['ui-master', 'api-master', 'worker-master', 'pipeline-master']",
        "ui: ui-master",
        "api: ui-master",
        "worker: ui-master",
        "pipeline: ui-master",
    ]
    assert cached.total("ok") == plain.total("ok") == 3
    # ansible-core's own filters and tests: loaded by every worker whose templates use one, or once, by the
    # playbook's process, whose workers inherit them
    assert builtin_plugin_loads(plain.output) == {"filter": 3, "test": 0}
    assert builtin_plugin_loads(cached.output) == {"filter": 1, "test": 1}


def builtin_plugin_loads(output: str) -> dict[str, int]:
    return {
        kind: len(re.findall(rf"^\s*\d+ [\d.]+: Loading {kind.title()}Module 'core' from ", output, re.M))
        for kind in ("filter", "test")
    }
