"""biomage.iac.worker_cache: templates compiled once per run render exactly as ansible-core renders them, a
worker forked later reads the code an earlier one compiled, and the play's connection plugins are loaded in the
playbook's process (inventories written as operators write them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ansible_collections.biomage.iac.plugins.plugin_utils import worker_cache

REPO_ROOT = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).with_name("worker_cache_probe.py")


def probe(*args: str) -> dict:
    env = {**os.environ, "BIOMAGE_COLLECTIONS_PATH": str(REPO_ROOT / "collections")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "collections"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(PROBE), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_templates_render_as_ansible_core_renders_them_and_a_later_worker_compiles_none(tmp_path: Path) -> None:
    plain = probe("plain")["results"]
    cached = probe("cached", str(tmp_path))
    assert cached["installed"] is True
    # every case, errors included, gives what ansible-core alone gives: in the worker that compiled the code and
    # in the one forked after it, which read that code from the run's folder
    assert cached["first"]["results"] == plain
    assert cached["second"]["results"] == plain
    assert cached["first"]["loaded"] == 0 and cached["first"]["compiled"] > 0
    assert cached["second"]["compiled"] == 0
    assert cached["second"]["loaded"] == cached["first"]["compiled"] == len(cached["files"])
    # the settings that change the generated code are told apart: a header, other delimiters, no escaping
    values = [result.get("value") for result in plain]
    assert values[2] == "ui\napi\nworker\npipeline\n" and values[3] == "\nui\n\napi\n\nworker\n\npipeline\n"
    assert values[4] == "flux-system {{ x }}"
    assert values[5] != values[6] == "C:\\new\\tableC:\\builds"
    assert values[8] == ["Namespace", "ServiceAccount"], "the collection's filters are found"
    errors = [result["error"] for result in plain if "error" in result]
    assert errors == ["AnsibleTemplateSyntaxError", "AnsibleUndefinedVariable", "AnsibleTemplateSyntaxError"]


def test_under_another_ansible_core_nothing_is_installed(tmp_path: Path) -> None:
    plain = probe("plain")["results"]
    other = probe("other-core", str(tmp_path))
    assert other["installed"] is False
    assert other["first"]["results"] == other["second"]["results"] == plain
    assert not (tmp_path / worker_cache.FOLDER).exists()


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    store = worker_cache.CodeStore(str(tmp_path))
    key = store.key("template", "{{ flux_namespace }}", "settings")
    (tmp_path / key).write_bytes(b"not marshal data")
    assert store.get(key) is None
    code = compile("x = 1", "<template>", "exec")
    store.put(key, code)
    assert worker_cache.CodeStore(str(tmp_path)).get(key) == code
    assert store.key("template", "{{ flux_namespace }}", "other settings") != key
    assert store.key("expression", "{{ flux_namespace }}", "settings") != key
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".staging-")]


def write_inventory(tmp_path: Path) -> None:
    # the repository's own shape (YAML, the connection on the host), an INI group setting it for its hosts,
    # a host that names none and one whose connection is templated (left to its tasks)
    (tmp_path / "hosts.yml").write_text(
        textwrap.dedent(
            """\
            all:
              children:
                platform:
                  hosts:
                    biomage-staging:
                      ansible_connection: biomage.iac.forkserver
                      ansible_python_interpreter: "{{ ansible_playbook_python }}"
                    bastion:
                      ansible_connection: "{{ bastion_connection }}"
            """
        )
    )
    (tmp_path / "legacy.ini").write_text("[runners]\nrunner-1\nrunner-2\n\n[runners:vars]\nansible_connection=local\n")
    (tmp_path / "plain.ini").write_text("[others]\nbuild-host\n")


# in a fresh interpreter, as ansible-playbook starts: the plugin loader set up, then the inventory read
SCRIPT = textwrap.dedent(
    """\
    import json, os, sys
    from ansible.inventory.helpers import get_group_vars
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import connection_loader, init_plugin_loader
    init_plugin_loader([sys.argv[1]])
    from ansible_collections.biomage.iac.plugins.plugin_utils import worker_cache
    folder = sys.argv[2]
    sources = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    manager = InventoryManager(DataLoader(), sources=sources)
    module = "ansible_collections.biomage.iac.plugins.connection.forkserver"
    before = module in sys.modules
    names = worker_cache.connection_names(manager.get_hosts("all"), get_group_vars)
    none = worker_cache.connection_names(manager.get_hosts("others"), get_group_vars)
    loaded = worker_cache.load_connections(names + ["no.such.connection"], connection_loader)
    after = module in sys.modules
    print(json.dumps({"names": names, "none": none, "before": before, "after": after, "loaded": loaded}))
    """
)


def test_the_connections_the_inventory_names_are_found_and_loaded(tmp_path: Path) -> None:
    write_inventory(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "collections"), "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO_ROOT / "collections"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "names": ["biomage.iac.forkserver", "local"],
        "none": [],
        "before": False,
        "after": True,
        "loaded": ["biomage.iac.forkserver", "local"],
    }
