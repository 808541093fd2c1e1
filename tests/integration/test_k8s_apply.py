"""biomage.iac.k8s_apply against the session's API server: one kubernetes.core.k8s run for a list of objects, its
check run planning what the dry run cannot judge, its diffs and plan entries, and a result that does not carry the
objects it applied."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lib.ansible_run import PlaybookResult, ansible_env, run_playbook

pytestmark = pytest.mark.slow
BULK = "x" * 60_000  # a large value: the registered result must not carry it back


# written as a platform team writes them: one YAML stream, flow and block styles mixed
def objects(ns: str, group: str, mode: str = "enabled", *, widget: bool = True) -> str:
    """A CRD and a custom resource of it, a namespace and a ConfigMap in it (without the custom resource, whose
    kind a real run can only find once the API server serves the CRD it has just created)."""
    stream = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    app.kubernetes.io/part-of: biomage
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer, minimum: 1}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  bulk: {BULK}
  mode: {mode}
---
apiVersion: {group}/v1
kind: Widget
metadata:
  name: first
  namespace: {ns}
spec:
  size: 3
"""
    return stream if widget else stream.rsplit("---", 1)[0]


def play(arguments: str) -> str:
    """A play of one biomage.iac.k8s_apply task with these (indented) arguments, its result kept in a file."""
    return f"""
- name: Apply with biomage.iac.k8s_apply
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Apply the probe's objects
      biomage.iac.k8s_apply:
        kubeconfig: "{{{{ kubeconfig }}}}"
{arguments}
      register: applied

    - name: Keep the registered result
      ansible.builtin.copy:
        content: "{{{{ applied | to_json }}}}"
        dest: "{{{{ registered_file }}}}"
        mode: "0600"
      check_mode: false
      changed_when: false  # the test's own record, not a change of the cluster
"""


PLAY = play(
    """\
        definitions: "{{ lookup('ansible.builtin.file', objects_file) | biomage.iac.yaml_documents(objects_file) }}"
        field_manager: "{{ field_manager | default(omit) }}"
        return_kinds: [Namespace]"""
)


def _run_play(
    tmp_path: Path, devstack: dict[str, str], play_text: str, *, check: bool, diff: bool = True, **extra: object
) -> PlaybookResult:
    """Run ``play_text`` (one of :func:`play`'s) against the session's API server, its plan kept in plan.json."""
    (tmp_path / "play.yml").write_text(play_text)
    env = ansible_env(devstack, BIOMAGE_PLAN_JSON=str(tmp_path / "plan.json"))
    extra_vars = {
        "ansible_python_interpreter": sys.executable,
        "kubeconfig": devstack["KUBECONFIG"],
        "registered_file": str(tmp_path / "registered.json"),
        **extra,
    }
    return run_playbook(tmp_path / "play.yml", "localhost,", env=env, check=check, diff=diff, extra_vars=extra_vars)


def _run(
    tmp_path: Path, devstack: dict[str, str], definitions: str, *, check: bool, diff: bool = True, **extra: object
) -> PlaybookResult:
    (tmp_path / "objects.yaml").write_text(definitions)
    return _run_play(
        tmp_path, devstack, PLAY, check=check, diff=diff, objects_file=str(tmp_path / "objects.yaml"), **extra
    )


def _plan(tmp_path: Path) -> list[tuple[str, str, str]]:
    changes = json.loads((tmp_path / "plan.json").read_text())["changes"]
    return [(item["kind"], item["name"], item["action"]) for item in changes]


def _registered(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "registered.json").read_text())


def test_a_first_check_run_plans_every_object_and_changes_nothing(
    tmp_path: Path, devstack: dict[str, str], kube_api: client.ApiClient
) -> None:
    ns, group = "k8s-apply-plan", "plan.biomage.test"
    result = _run(tmp_path, devstack, objects(ns, group), check=True).assert_ok()
    assert _plan(tmp_path) == [
        ("Namespace", ns, "create"),
        ("CustomResourceDefinition", f"widgets.{group}", "create"),
        ("ConfigMap", f"{ns}/settings", "create"),
        ("Widget", f"{ns}/first", "create"),
    ]
    registered = _registered(tmp_path)
    assert registered["changed"] is True
    assert registered["objects"] == [
        f"Namespace {ns}",
        f"CustomResourceDefinition widgets.{group}",
        f"ConfigMap {ns}/settings",
        f"Widget {ns}/first",
    ]
    reasons = {item["name"]: item["reason"] for item in registered["plan"]}
    assert reasons[f"{ns}/settings"] == f"in namespace {ns}, still to be created"
    assert reasons[f"{ns}/first"] == f"its CustomResourceDefinition (Widget.{group}) is still to be created"
    # --diff shows each object under its own header, line by line
    assert f"+++ after: Widget {ns}/first" in result.stdout
    assert re.search(r"^\+\s+size: 3$", result.stdout, re.MULTILINE)
    with pytest.raises(ApiException) as missing:
        client.CoreV1Api(kube_api).read_namespace(ns)
    assert missing.value.status == 404, "a check run created the namespace"


def test_an_apply_converges_reports_each_object_and_returns_none_of_them(
    tmp_path: Path, devstack: dict[str, str], kube_api: client.ApiClient
) -> None:
    ns, group = "k8s-apply-probe", "probe.biomage.test"
    definitions = objects(ns, group, widget=False)
    # without --diff (an apply's usual run): no diff to carry the objects either
    _run(tmp_path, devstack, definitions, check=False, diff=False, field_manager="biomage-probe").assert_ok()
    created = client.CoreV1Api(kube_api).read_namespaced_config_map("settings", ns)
    assert created.data["mode"] == "enabled"
    assert "biomage-probe" in [entry.manager for entry in created.metadata.managed_fields]
    registered = _registered(tmp_path)
    text = json.dumps(registered)
    assert BULK not in text, "the result carries the applied objects"
    assert "invocation" not in registered and "result" not in registered
    assert [item["metadata"]["name"] for item in registered["resources"]] == [ns]
    assert registered["resources"][0]["kind"] == "Namespace"

    again = _run(tmp_path, devstack, definitions, check=False, field_manager="biomage-probe").assert_ok()
    assert again.total("changed") == 0
    assert _plan(tmp_path) == []
    planned = _run(tmp_path, devstack, definitions, check=True, field_manager="biomage-probe").assert_ok()
    assert planned.total("changed") == 0
    assert _registered(tmp_path)["objects"] == []

    # one value changed: only that object is planned, as an update, with its line in the diff
    changed = objects(ns, group, mode="disabled", widget=False)
    result = _run(tmp_path, devstack, changed, check=True, field_manager="biomage-probe").assert_ok()
    assert _plan(tmp_path) == [("ConfigMap", f"{ns}/settings", "update")]
    assert re.search(r"^-\s+mode: enabled$", result.stdout, re.MULTILINE)
    assert re.search(r"^\+\s+mode: disabled$", result.stdout, re.MULTILINE)
    assert client.CoreV1Api(kube_api).read_namespaced_config_map("settings", ns).data["mode"] == "enabled"


def test_a_dry_run_refusal_names_the_object_and_changes_nothing(
    tmp_path: Path, devstack: dict[str, str], kube_api: client.ApiClient
) -> None:
    other = """
apiVersion: v1
kind: ConfigMap
metadata: {name: before-the-refusal, namespace: default}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: Not_A_DNS_Name, namespace: default}
data: {a: "1"}
"""
    result = _run(tmp_path, devstack, other, check=True)
    assert result.returncode != 0
    words = " ".join(result.stdout.split())
    assert "The dry run refused: ConfigMap default/Not_A_DNS_Name:" in words
    assert "ConfigMap default/before-the-refusal" not in words.split("The dry run refused:")[1]
    with pytest.raises(ApiException) as missing:
        client.CoreV1Api(kube_api).read_namespaced_config_map("before-the-refusal", "default")
    assert missing.value.status == 404


# an upstream release file as projects publish them: a leading comment, an empty document, and a binding to a
# namespace the platform does not use (kept out with kinds)
UPSTREAM = """# Source: widget-operator/templates/rbac.yaml
---
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widget-operator
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: widget-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widget-operator}
subjects: [{kind: ServiceAccount, name: widget-operator, namespace: default}]
"""

TEMPLATE = """{#- the role's own objects -#}
apiVersion: v1
kind: Namespace
metadata:
  name: {{ sources_ns }}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: "{{ sources_ns }}"}
data:
  roles: "{{ ['widget-operator'] | join(',') }}"
"""

SOURCES_PLAY = play('        sources: "{{ sources }}"')


def _run_sources(
    tmp_path: Path, devstack: dict[str, str], sources: list[dict], *, check: bool, ns: str = "k8s-apply-sources"
) -> PlaybookResult:
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "files" / "rbac.yaml.upstream").write_text(UPSTREAM)
    (tmp_path / "templates" / "objects.yaml.j2").write_text(TEMPLATE)
    return _run_play(tmp_path, devstack, SOURCES_PLAY, check=check, sources_ns=ns, sources=sources)


def test_sources_are_read_rendered_and_filtered_by_kind_in_order(
    tmp_path: Path, devstack: dict[str, str], kube_api: client.ApiClient
) -> None:
    ns = "k8s-apply-sources"
    sources = [{"file": "rbac.yaml.upstream", "kinds": ["ClusterRole"]}, {"template": "objects.yaml.j2"}]
    _run_sources(tmp_path, devstack, sources, check=True).assert_ok()
    assert _plan(tmp_path) == [
        ("ClusterRole", "widget-operator", "create"),
        ("Namespace", ns, "create"),
        ("ConfigMap", f"{ns}/settings", "create"),
    ]
    _run_sources(tmp_path, devstack, sources, check=False).assert_ok()
    assert client.CoreV1Api(kube_api).read_namespaced_config_map("settings", ns).data == {"roles": "widget-operator"}
    rbac = client.RbacAuthorizationV1Api(kube_api)
    assert rbac.read_cluster_role("widget-operator").rules[0].resources == ["configmaps"]
    with pytest.raises(ApiException) as missing:
        rbac.read_cluster_role_binding("widget-operator")
    assert missing.value.status == 404, "kinds let the binding through"
    # an empty kinds list keeps none of the file's objects
    _run_sources(tmp_path, devstack, [{"file": "rbac.yaml.upstream", "kinds": []}], check=True).assert_ok()
    assert _registered(tmp_path)["objects"] == []
    again = _run_sources(tmp_path, devstack, sources, check=True).assert_ok()
    assert again.total("changed") == 0


@pytest.mark.parametrize(
    ("files", "sources", "says"),
    [
        ({}, [{"file": "absent.yaml"}], "sources: absent.yaml: Could not find or access 'absent.yaml'"),
        ({"bad.yaml": "kind: [ConfigMap\n"}, [{"file": "bad.yaml"}], "sources: bad.yaml: not valid YAML"),
        (
            {"list.yaml": "kind: ConfigMap\n---\n- a\n- b\n"},
            [{"file": "list.yaml"}],
            "sources: list.yaml: document 2 is a list, not a Kubernetes object.",
        ),
        ({}, [{"template": "objects.yaml.j2", "file": "rbac.yaml.upstream"}], "mutually exclusive: file|template"),
    ],
)
def test_a_bad_source_is_refused_naming_it_before_anything_is_applied(
    tmp_path: Path, devstack: dict[str, str], kube_api: client.ApiClient, files: dict, sources: list, says: str
) -> None:
    (tmp_path / "files").mkdir()
    for name, text in files.items():
        (tmp_path / "files" / name).write_text(text)
    # the template's namespace comes first: nothing of it may be created when a later source is bad
    ns = "k8s-apply-sources-bad"
    result = _run_sources(tmp_path, devstack, [{"template": "objects.yaml.j2"}, *sources], check=False, ns=ns)
    assert result.returncode != 0
    words = " ".join(result.stdout.split())
    assert says in words
    if "exclusive" not in says:
        assert "Nothing was applied." in words
    with pytest.raises(ApiException) as missing:
        client.CoreV1Api(kube_api).read_namespace(ns)
    assert missing.value.status == 404
