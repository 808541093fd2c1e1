"""biomage.iac.payloads: the modules a play names, found in its task files in the order it runs them
(task files written the ways roles really are: short and long names, the ``action:`` and
``local_action:`` forms, blocks, includes of a literal or templated file, roles included by name), and
their payloads built by ansible-core's own builder under the name its tasks look for."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from ansible.executor.module_common import _CachedModule
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.mod_args import ModuleArgsParser
from ansible_collections.biomage.iac.plugins.plugin_utils import payloads

REPO_ROOT = Path(__file__).resolve().parents[3]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def parse(task: dict) -> tuple[str, dict]:
    action, args, _delegate_to = ModuleArgsParser(task).parse(skip_action_validation=True)
    return action, args


def scan_role(tmp_path: Path, roles: dict[str, Path] | None = None) -> list[str]:
    scan = payloads.PlayScan(DataLoader(), parse, lambda name: str((roles or {}).get(name, "")) or None)
    scan.role(tmp_path / "roles" / "web")
    return scan.modules


def test_modules_are_listed_in_the_order_the_role_first_runs_them(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "web"
    write(
        role / "tasks" / "main.yml",
        """\
        - name: An old-style short name with key=value arguments
          command: /bin/true
        - name: The action form
          action: ansible.builtin.stat path=/etc
        - name: A block with a rescue
          block:
            - name: A collection module
              amazon.aws.aws_caller_info:
          rescue:
            - name: local_action
              local_action: ansible.builtin.uri url=http://127.0.0.1:1/
          always:
            - ansible.builtin.debug:
                msg: always
        - name: An include of a literal file, followed where it stands
          ansible.builtin.include_tasks: second.yml
        - name: The same module again, by its long name (the builder resolves both to one payload)
          ansible.builtin.command: /bin/false
        - name: And by the same name again
          command: /bin/false
        - name: A templated include (its file is scanned after the literal ones)
          ansible.builtin.include_tasks: "{{ web_flavour }}.yml"
        """,
    )
    write(role / "tasks" / "second.yml", "- kubernetes.core.k8s_info:\n    kind: Namespace\n")
    write(
        role / "tasks" / "zeta.yml",
        "- name: Only reached by the templated include\n  kubernetes.core.helm:\n    name: x\n",
    )

    assert scan_role(tmp_path) == [
        "command",
        "ansible.builtin.stat",
        "amazon.aws.aws_caller_info",
        "ansible.builtin.uri",
        "ansible.builtin.debug",
        "kubernetes.core.k8s_info",
        "ansible.builtin.command",
        "kubernetes.core.helm",
    ]


def test_included_roles_are_followed_by_name_and_task_file(tmp_path: Path) -> None:
    write(
        tmp_path / "roles" / "web" / "tasks" / "main.yml",
        """\
        - ansible.builtin.include_role:
            name: lock
            tasks_from: take
        - ansible.builtin.import_role:
            name: "{{ templated_role }}"
        - ansible.builtin.include_role:
            name: missing
        - ansible.builtin.ping:
        """,
    )
    lock = tmp_path / "elsewhere" / "lock"
    write(lock / "tasks" / "take.yml", "- biomage.iac.environment_lock:\n    state: present\n")
    write(lock / "tasks" / "main.yml", "- ansible.builtin.wait_for:\n    timeout: 1\n")

    # take.yml where the include stands, then the role's other files
    assert scan_role(tmp_path, {"lock": lock}) == [
        "biomage.iac.environment_lock",
        "ansible.builtin.wait_for",
        "ansible.builtin.ping",
    ]


def test_files_the_play_would_refuse_are_passed_over(tmp_path: Path) -> None:
    role = tmp_path / "roles" / "web" / "tasks"
    write(role / "main.yml", "- name: broken\n  ansible.builtin.command: [unbalanced\n")
    write(role / "other.yml", "not: a list of tasks\n")
    write(
        role / "two.yml",
        "- name: two modules\n  ansible.builtin.ping:\n  ansible.builtin.stat:\n    path: /\n- ansible.builtin.ping:\n",
    )

    assert scan_role(tmp_path) == ["ansible.builtin.ping"]


def test_an_action_that_runs_another_module_lists_that_module(tmp_path: Path) -> None:
    write(
        tmp_path / "roles" / "web" / "tasks" / "main.yml",
        """\
        - name: Apply objects (the action plugin runs kubernetes.core.k8s on the host)
          biomage.iac.k8s_apply:
            definitions: []
        - name: The module itself, later
          kubernetes.core.k8s:
            state: present
        """,
    )
    assert scan_role(tmp_path) == ["kubernetes.core.k8s"]
    assert not payloads.runs_code(REPO_ROOT / "plugins" / "modules" / "k8s_apply.py")


def test_a_documentation_only_module_file_runs_no_code(tmp_path: Path) -> None:
    builtin = Path(sys.modules["ansible"].__file__).parent / "modules"
    assert not payloads.runs_code(builtin / "set_fact.py")
    assert not payloads.runs_code(builtin / "assert.py")
    assert not payloads.runs_code(REPO_ROOT / "plugins" / "modules" / "object_diffs.py")
    assert payloads.runs_code(builtin / "stat.py")
    assert payloads.runs_code(REPO_ROOT / "plugins" / "modules" / "cfn_stacks.py")
    assert not payloads.runs_code(write(tmp_path / "bad.py", "def (:\n"))
    assert not payloads.runs_code(tmp_path / "absent.py")


def test_cache_names_are_the_modules_python_names() -> None:
    assert payloads.cache_name("ansible.builtin.stat") == "ansible.modules.stat"
    assert payloads.cache_name("ansible.legacy.command") == "ansible.modules.command"
    assert payloads.cache_name("kubernetes.core.k8s") == "ansible_collections.kubernetes.core.plugins.modules.k8s"


BUILD = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[2]])
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.biomage.iac.plugins.plugin_utils import payloads
names = json.loads(sys.argv[3])
if sys.argv[4] == "reuse":
    payloads.reuse_parsed_sources(module_common)
templar = Templar(loader=DataLoader())
make = module_common.modify_module
built = payloads.build(names, sys.argv[1], "ZIP_DEFLATED", payloads.find_module([]), make, templar)
print(json.dumps(built))
"""


def build(local_tmp: Path, names: list[str], parse: str = "each") -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, str(local_tmp), str(REPO_ROOT / "collections"), json.dumps(names), parse],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(proc.stdout)


def test_payloads_are_built_under_the_names_ansible_core_looks_for(tmp_path: Path) -> None:
    names = ["biomage.iac.route53_alias_info", "ansible.builtin.set_fact", "no.such.module", "ansible.builtin.stat"]
    assert build(tmp_path, names) == ["biomage.iac.route53_alias_info", "ansible.builtin.stat"]

    cache = tmp_path / "ansiballz_cache"
    # ansible-core's name: <the module's Python name>-<compression>-<AnsiballZ extensions, none>
    assert sorted(path.name for path in cache.iterdir()) == [
        "ansible.modules.stat-ZIP_DEFLATED-none",
        "ansible_collections.biomage.iac.plugins.modules.route53_alias_info-ZIP_DEFLATED-none",
    ]
    cached = _CachedModule.load(
        str(cache / "ansible_collections.biomage.iac.plugins.modules.route53_alias_info-ZIP_DEFLATED-none")
    )
    members = zipfile.ZipFile(io.BytesIO(base64.b64decode(cached.zip_data))).namelist()
    assert "ansible_collections/biomage/iac/plugins/modules/route53_alias_info.py" in members
    assert "ansible/module_utils/basic.py" in members

    # a second play's builder leaves what is there (built by an earlier play or by a task)
    before = {path.name: path.stat().st_mtime_ns for path in cache.iterdir()}
    assert build(tmp_path, ["ansible.builtin.stat"]) == []
    assert {path.name: path.stat().st_mtime_ns for path in cache.iterdir()} == before


def payload_files(cache: Path, fqcn: str) -> dict[str, bytes]:
    cached = _CachedModule.load(str(cache / f"{payloads.cache_name(fqcn)}-ZIP_DEFLATED-none"))
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(cached.zip_data)))
    return {name: archive.read(name) for name in archive.namelist()}


def test_sources_parsed_once_for_several_payloads_give_the_same_payloads(tmp_path: Path) -> None:
    # modules that share most of their module_utils (ansible-core's, kubernetes.core's), built in one process
    names = ["kubernetes.core.k8s_info", "kubernetes.core.k8s", "biomage.iac.route53_alias_info"]
    (tmp_path / "each").mkdir()
    (tmp_path / "once").mkdir()
    assert build(tmp_path / "each", names) == names
    assert build(tmp_path / "once", names, parse="reuse") == names
    for fqcn in names:
        each = payload_files(tmp_path / "each" / "ansiballz_cache", fqcn)
        once = payload_files(tmp_path / "once" / "ansiballz_cache", fqcn)
        assert once == each, fqcn
        assert "ansible/module_utils/basic.py" in once
