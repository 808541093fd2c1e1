"""biomage.iac.object_diffs: the per-object diffs of one kubernetes.core.k8s call, as --diff shows a single object's."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.biomage.iac.plugins.action import object_diffs

from tests.lib.ansible_run import ansible_env, run_playbook


def issuer(email: str) -> dict[str, object]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "letsencrypt-prod"},
        "spec": {"acme": {"email": email, "server": "https://acme-v02.api.letsencrypt.org/directory"}},
    }


# the shape kubernetes.core.k8s (6.x) returns per object of a definition list, in diff mode
CHANGED = {"changed": True, "method": "update", "result": issuer("new@biomage.test"),
           "diff": {"before": issuer("old@biomage.test"), "after": issuer("new@biomage.test")}}  # fmt: skip
CREATED = {"changed": True, "method": "create", "result": {"kind": "Service", "metadata": {"name": "traefik",
           "namespace": "traefik"}}, "diff": {"before": {}, "after": {"kind": "Service"}}}  # fmt: skip
UNCHANGED = {"changed": False, "method": "update", "result": issuer("same@biomage.test"), "diff": {}}
DELETED = {"changed": True, "method": "delete", "result": {}, "diff": {"before": issuer("x@biomage.test"), "after": {}}}


def test_only_changed_objects_are_listed_with_their_headers() -> None:
    labels, entries = object_diffs.diffs([UNCHANGED, CHANGED, CREATED, DELETED])
    assert labels == ["ClusterIssuer letsencrypt-prod", "Service traefik/traefik", "ClusterIssuer letsencrypt-prod"]
    headers = [(entry["before_header"], entry["after_header"]) for entry in entries]
    assert headers == [(label, label) for label in labels]
    assert entries[0]["before"]["spec"]["acme"]["email"] == "old@biomage.test"
    assert entries[0]["after"]["spec"]["acme"]["email"] == "new@biomage.test"
    assert entries[2]["after"] == {}, "a deletion's after is empty"


def test_a_change_without_a_diff_is_named_but_shows_nothing() -> None:
    labels, entries = object_diffs.diffs([{"changed": True, "method": "update", "result": issuer("a@biomage.test")}])
    assert labels == ["ClusterIssuer letsencrypt-prod"] and entries == []


def test_the_diff_shows_line_by_line_and_adds_no_plan_entry(tmp_path: Path) -> None:
    play = tmp_path / "play.yml"
    task = {"name": "Show the objects' changes", "biomage.iac.object_diffs": {"results": [UNCHANGED, CHANGED]}}
    play.write_text(json.dumps([{"name": "Diffs", "hosts": "localhost", "connection": "local",
                                 "gather_facts": False, "tasks": [task]}]))  # fmt: skip
    env = ansible_env(ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan", BIOMAGE_PLAN_JSON=str(tmp_path / "plan.json"))
    result = run_playbook(play, "localhost,", env=env, check=True, diff=True)
    result.assert_ok()
    assert "--- before: ClusterIssuer letsencrypt-prod\n+++ after: ClusterIssuer letsencrypt-prod\n" in result.stdout
    assert "-            email: old@biomage.test" in result.stdout
    assert "+            email: new@biomage.test" in result.stdout
    assert json.loads((tmp_path / "plan.json").read_text())["changes"] == []


# kubernetes.core.k8s with continue_on_error, in check mode, on a cluster without the namespace or the CRD yet
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "traefik"}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "traefik", "namespace": "traefik"}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "middlewares.traefik.io"},
       "spec": {"group": "traefik.io", "names": {"kind": "Middleware", "plural": "middlewares"}}}  # fmt: skip
MIDDLEWARE = {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "redirect"}}
NS_CREATED = {"changed": True, "method": "create", "result": {**NAMESPACE, "status": {"phase": "Active"}},
              "diff": {"before": {}, "after": NAMESPACE}}  # fmt: skip
CRD_CREATED = {"changed": True, "method": "create", "result": CRD, "diff": {"before": {}, "after": CRD}}
# the message as kubernetes.core 6 words it: the API server's Status, as JSON, after its own words
STATUS = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \\"traefik\\" not '
    'found","reason":"NotFound","details":{"name":"traefik","kind":"namespaces"},"code":404}'
)
NOT_FOUND = {
    "changed": False,
    "result": {},
    "error": {"msg": f"Failed to create object: {STATUS}", "reason": "Not Found"},
}
PLAIN_NOT_FOUND = {"changed": False, "result": {}, "error": {"msg": 'namespaces "traefik" not found'}}
NO_KIND = {
    "changed": False,
    "result": {},
    "error": {"msg": "Failed to find exact match for traefik.io/v1alpha1.Middleware by [kind, name]"},
}


def test_objects_of_a_namespace_the_call_only_plans_are_planned_as_creations() -> None:
    labels, entries, plan, failures = object_diffs.planned([NS_CREATED, NOT_FOUND], [NAMESPACE, SERVICE])
    assert failures == []
    assert labels == ["Service traefik/traefik"]
    assert entries == [{"before_header": "Service traefik/traefik", "after_header": "Service traefik/traefik",
                        "before": {}, "after": SERVICE}]  # fmt: skip
    assert plan == [{"kind": "Service", "name": "traefik/traefik", "action": "create",
                     "reason": "in namespace traefik, still to be created"}]  # fmt: skip


def test_a_not_found_in_plain_words_is_read_too() -> None:
    _labels, _entries, plan, failures = object_diffs.planned([NS_CREATED, PLAIN_NOT_FOUND], [NAMESPACE, SERVICE])
    assert failures == [] and [item["name"] for item in plan] == ["traefik/traefik"]
    other = {**NAMESPACE, "metadata": {"name": "other"}}
    _labels, _entries, plan, failures = object_diffs.planned(
        [{**NS_CREATED, "result": other}, NOT_FOUND], [other, SERVICE]
    )
    assert plan == [] and len(failures) == 1, "the NotFound of another namespace is not explained"


def test_objects_of_a_kind_whose_crd_the_call_only_plans_are_planned_as_creations() -> None:
    _labels, _entries, plan, failures = object_diffs.planned([CRD_CREATED, NO_KIND], [CRD, MIDDLEWARE])
    assert failures == []
    assert [(item["kind"], item["name"], item["action"]) for item in plan] == [("Middleware", "redirect", "create")]
    assert "Middleware.traefik.io" in plan[0]["reason"]


def test_an_error_the_call_does_not_explain_fails_with_the_object_named() -> None:
    # the namespace exists (no create in this call): its Service's error is the API server's own refusal
    existing = {**NS_CREATED, "changed": False, "method": "update"}
    _labels, _entries, plan, failures = object_diffs.planned([existing, NOT_FOUND], [NAMESPACE, SERVICE])
    assert plan == []
    assert len(failures) == 1 and failures[0].startswith('Service traefik/traefik: Failed to create object: {"kind"')
    _labels, _entries, _plan, failures = object_diffs.planned([NS_CREATED], [NAMESPACE, SERVICE])
    assert failures and failures[0].startswith("1 results for 2 definitions")


def test_the_plugin_fails_on_a_refused_object_and_plans_the_others(tmp_path: Path) -> None:
    play = tmp_path / "play.yml"
    definitions = [NAMESPACE, SERVICE]
    planned_task = {
        "name": "Plan",
        "biomage.iac.object_diffs": {"results": [NS_CREATED, NOT_FOUND], "definitions": definitions},
    }
    refused_task = {
        "name": "Refuse",
        "biomage.iac.object_diffs": {"results": [UNCHANGED, NOT_FOUND], "definitions": definitions},
    }
    play.write_text(json.dumps([{"name": "Diffs", "hosts": "localhost", "connection": "local",
                                 "gather_facts": False, "tasks": [planned_task, refused_task]}]))  # fmt: skip
    env = ansible_env(ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan", BIOMAGE_PLAN_JSON=str(tmp_path / "plan.json"))
    result = run_playbook(play, "localhost,", env=env, check=True, diff=True)
    assert result.returncode != 0
    assert "+++ after: Service traefik/traefik" in result.stdout
    assert "The dry run refused: Service traefik/traefik: Failed to create object" in " ".join(result.stdout.split())
    changes = json.loads((tmp_path / "plan.json").read_text())["changes"]
    assert [(c["kind"], c["name"], c["action"]) for c in changes] == [("Service", "traefik/traefik", "create")]


def test_only_the_errors_a_planned_namespace_or_crd_explains_are_planned() -> None:
    # server-side apply (method apply) of a namespace to be created; a different refusal of the object in it
    applied = {"changed": True, "method": "apply", "result": NAMESPACE, "diff": {}}
    quota = {"changed": False, "result": {}, "error": {"msg": 'services "traefik" is forbidden: exceeded quota'}}
    _labels, _entries, plan, failures = object_diffs.planned([applied, NOT_FOUND], [NAMESPACE, SERVICE])
    assert [item["name"] for item in plan] == ["traefik/traefik"] and failures == []
    _labels, _entries, plan, failures = object_diffs.planned([applied, quota], [NAMESPACE, SERVICE])
    assert plan == [] and failures == ['Service traefik/traefik: services "traefik" is forbidden: exceeded quota']
    # a kind whose CRD the call does not create: the discovery error is the API server's answer
    _labels, _entries, plan, failures = object_diffs.planned([NO_KIND], [MIDDLEWARE])
    assert plan == [] and failures[0].startswith("Middleware redirect: Failed to find exact match")
