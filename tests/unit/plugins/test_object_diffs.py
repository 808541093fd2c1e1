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
