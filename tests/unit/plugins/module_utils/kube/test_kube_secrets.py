"""One Secret read and written whole: decoded data, carried-over metadata, dry runs, and errors without data."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.kube import secrets
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError
from ansible_collections.biomage.iac.plugins.module_utils.kube.secrets import KubernetesSecretStore, StoredSecret
from kubernetes.client.rest import ApiException

from tests.lib.kubeconfig import standalone

MakeStore = Callable[["FakeCore", Path], KubernetesSecretStore]
PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA-not-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"


def api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


class FakeCore:
    """The core API's answers to the store's requests (kube.client.request_json): one stored Secret (or None), the
    requests made, an error to raise."""

    def __init__(self, secret: Any = None, error: Exception | None = None) -> None:
        self.secret = secret
        self.error = error
        self.calls: list[tuple[str, dict]] = []
        self.namespaces: set[str] = set()

    def request(
        self, api: Any, method: str, path: str, body: Any = None, query: Any = None, timeout: Any = None
    ) -> Any:
        parts = path.strip("/").split("/")  # api v1 namespaces <ns> [secrets [<name>]]
        name = {("GET", 4): "read_namespace", ("GET", 6): "read", ("POST", 5): "create", ("PUT", 6): "replace"}[
            (method, len(parts))
        ]
        self.calls.append((name, {"path": path, "body": body, "query": query, "timeout": timeout}))
        if self.error is not None:
            raise self.error
        if name == "read_namespace" and parts[3] not in self.namespaces:
            raise api_error(404, f'namespaces "{parts[3]}" not found')
        if name == "read" and self.secret is None:
            raise api_error(404, f'secrets "{parts[5]}" not found')
        return self.secret if name == "read" else {}


@pytest.fixture
def store_on(monkeypatch: pytest.MonkeyPatch) -> MakeStore:
    def make(core: FakeCore, tmp_path: Path) -> KubernetesSecretStore:
        monkeypatch.setattr(secrets, "request_json", core.request)
        kubeconfig = standalone(tmp_path / "kubeconfig", main="https://10.0.0.1:6443")
        return KubernetesSecretStore("flux-system", "flux-system", str(kubeconfig))

    return make


def live_secret(**data: str) -> dict[str, Any]:
    """A Secret as the API server returns it (JSON)."""
    return {
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        "type": "kubernetes.io/ssh-auth",
        "metadata": {"resourceVersion": "42", "labels": {"team": "platform"}, "annotations": {"note": "kept"}},
    }


def test_a_missing_secret_reads_as_none_and_is_created_labelled(tmp_path: Path, store_on: MakeStore) -> None:
    core = FakeCore()
    store = store_on(core, tmp_path)
    assert store.read() is None
    store.write({"identity": PRIVATE}, None)
    name, call = core.calls[-1]
    assert name == "create" and call["query"] is None and call["timeout"] == 30
    assert call["path"] == "/api/v1/namespaces/flux-system/secrets"
    body = call["body"]
    assert body["metadata"] == {
        "name": "flux-system",
        "namespace": "flux-system",
        "labels": {"app.kubernetes.io/managed-by": "biomage.iac"},
    }
    assert body["type"] == "Opaque" and base64.b64decode(body["data"]["identity"]).decode() == PRIVATE


def test_a_replace_carries_type_labels_annotations_and_resource_version_over(
    tmp_path: Path, store_on: MakeStore
) -> None:
    core = FakeCore(live_secret(identity=PRIVATE, known_hosts="github.com ssh-ed25519 AAAA\n"))
    store = store_on(core, tmp_path)
    existing = store.read()
    assert existing.data == {"identity": PRIVATE, "known_hosts": "github.com ssh-ed25519 AAAA\n"}
    assert PRIVATE not in repr(existing)
    store.write({"identity": PRIVATE}, existing, dry_run=True)
    name, call = core.calls[-1]
    assert name == "replace" and call["query"] == {"dryRun": "All"}
    assert call["path"] == "/api/v1/namespaces/flux-system/secrets/flux-system"
    assert call["body"]["metadata"]["resourceVersion"] == "42"
    assert call["body"]["metadata"]["labels"] == {"team": "platform"}
    assert call["body"]["metadata"]["annotations"] == {"note": "kept"}
    assert call["body"]["type"] == "kubernetes.io/ssh-auth"


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (403, "the identity in the kubeconfig needs get, create and update on secrets in flux-system."),
        (404, "the namespace flux-system does not exist: create it first (the flux role does)."),
        (409, "the Secret flux-system/flux-system was changed by someone else meanwhile: re-run."),
    ],
)
def test_refusals_name_the_secret_the_status_and_the_fix_but_never_the_data(
    tmp_path: Path, status: int, hint: str, store_on: MakeStore
) -> None:
    existing = StoredSecret(data={"identity": PRIVATE}, resource_version="1")
    store = store_on(FakeCore(error=api_error(status, "refused by the API server")), tmp_path)
    with pytest.raises(KubeError) as failure:
        store.write({"identity": PRIVATE}, existing, dry_run=True)
    message = str(failure.value)
    assert message.startswith(f"cannot replace the Secret flux-system/flux-system (dry run): {status} refused")
    assert message.endswith(f"Fix: {hint}") and failure.value.details == {"status": status}
    assert "AAAA-not-a-real-key" not in message


def test_an_api_server_that_does_not_answer_is_named(tmp_path: Path, store_on: MakeStore) -> None:
    store = store_on(FakeCore(error=ConnectionRefusedError(111, "Connection refused")), tmp_path)
    with pytest.raises(KubeError, match=r"does not answer \(\[Errno 111\] Connection refused\)\. Fix: check"):
        store.read()


def test_whether_the_namespace_exists_is_read_and_a_refusal_names_the_fix(tmp_path: Path, store_on: MakeStore) -> None:
    core = FakeCore()
    store = store_on(core, tmp_path)
    assert store.namespace_exists() is False
    core.namespaces.add("flux-system")
    assert store.namespace_exists() is True
    assert [name for name, _call in core.calls] == ["read_namespace", "read_namespace"]
    refused = store_on(FakeCore(error=api_error(403, "namespaces is forbidden")), tmp_path)
    with pytest.raises(KubeError) as failure:
        refused.namespace_exists()
    assert str(failure.value) == (
        "cannot read the namespace flux-system: 403 Reason. "
        "Fix: the identity in the kubeconfig needs get on namespaces."
    )
    assert failure.value.details == {"status": 403}
