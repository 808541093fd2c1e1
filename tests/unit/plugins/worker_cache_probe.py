"""Renders templates written the ways inventories and roles write them, with ansible-core's Templar, and prints
what each gave (a value, or an error's class and message) as JSON.

    python worker_cache_probe.py plain                # ansible-core as it is
    python worker_cache_probe.py cached <local_tmp>   # with biomage.iac.worker_cache installed, as ansible-playbook
                                                      # forks workers: two children render in turn

Run by tests/unit/plugins/test_worker_cache.py in a fresh interpreter each time (the cache is process-wide)."""

from __future__ import annotations

import json
import os
import sys

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

# as ansible-playbook does: collections (this one among them) found on the configured paths
_AnsibleCollectionFinder(paths=[os.environ["BIOMAGE_COLLECTIONS_PATH"]])._install()

VARIABLES = {
    "biomage_devstack": {"AWS_REGION": "eu-west-2", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
    "biomage_region": trust_as_template("{{ biomage_devstack.AWS_REGION | default('eu-west-1') }}"),
    "flux_namespace": "flux-system",
    "flux_tenant_services": ["ui", "api", "worker", "pipeline"],
    "windows_path": "C:\\builds",
    "manifest": "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n---\n"
    "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: releases\n",
}

BLOCKS = "{% for s in flux_tenant_services %}\n{{ s }}\n{% endfor %}\n"

# (how it is rendered, the source, keyword arguments)
CASES = [
    ("template", "{{ biomage_region }}", {}),
    ("template", "region={{ biomage_region }} endpoint={{ biomage_devstack.AWS_ENDPOINT_URL }}", {}),
    ("template", BLOCKS, {}),
    # the same body with a header: another compile-time setting, another result
    ("template", "#jinja2: trim_blocks: False\n" + BLOCKS, {}),
    ("template", "#jinja2: variable_start_string: '[%', variable_end_string: '%]'\n[% flux_namespace %] {{ x }}", {}),
    # backslashes in a string constant: the same source, escaped (task arguments) or not (the template module)
    ("template", "{{ 'C:\\\\new\\\\table' ~ windows_path }}", {}),
    ("template", "{{ 'C:\\\\new\\\\table' ~ windows_path }}", {"escape_backslashes": False}),
    ("template", "{{ flux_tenant_services | join('|') }}", {"overrides": {"trim_blocks": False}}),
    ("template", "{{ manifest | biomage.iac.yaml_documents('tenants.yml') | map(attribute='kind') | list }}", {}),
    ("expression", "flux_tenant_services | length > 3 and flux_namespace is match('^flux')", {}),
    ("expression", "flux_tenant_services | map('upper') | list", {}),
    ("conditional", "biomage_region == 'eu-west-2'", {}),
    ("template", "{{ flux_namespace | }}", {}),  # a syntax error
    ("template", "{{ no_such_variable }}", {}),
    ("expression", "flux_namespace flux_namespace", {}),  # not one expression
]


def render(templar: Templar, kind: str, source: str, options: dict) -> dict:
    try:
        if kind == "template":
            value = templar.template(trust_as_template(source), **options)
        elif kind == "expression":
            value = templar.evaluate_expression(trust_as_template(source))
        else:
            value = templar.evaluate_conditional(trust_as_template(source))
    except Exception as exc:  # the error is what is compared
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"value": value}


def render_all() -> list[dict]:
    templar = Templar(loader=DataLoader(), variables=VARIABLES)
    return [render(templar, kind, source, options) for kind, source, options in CASES]


def in_child(store) -> dict:
    """Render everything in a forked child (as a worker renders a task's templates) and return what it saw."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        results = render_all()
        counts = {"compiled": store.compiled, "loaded": store.loaded} if store else {}
        os.write(write, json.dumps({"results": results, **counts}).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def main() -> None:
    if sys.argv[1] == "plain":
        print(json.dumps({"results": render_all()}))
        return
    # imported once ansible-core's collection finder is installed (above), as in ansible-playbook
    from ansible_collections.biomage.iac.plugins.plugin_utils import worker_cache  # noqa: PLC0415

    if sys.argv[1] == "other-core":
        worker_cache.EXPECTED_CORE = ("9.9.",)
    store = worker_cache.install(sys.argv[2])
    first, second = in_child(store), in_child(store)
    files = sorted(os.listdir(os.path.join(sys.argv[2], worker_cache.FOLDER))) if store else []
    print(json.dumps({"installed": store is not None, "first": first, "second": second, "files": files}))


if __name__ == "__main__":
    main()
