"""The clean-up before a cluster is deleted, on a scripted API: which Services go, and API errors as KubeError.

tests/integration/test_kube_discovery.py runs the same against a real kube-apiserver.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.kube import discovery
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError
from kubernetes.client.rest import ApiException

from tests.lib.kubeconfig import standalone


def service(namespace: str, name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(metadata=SimpleNamespace(namespace=namespace, name=name), spec=SimpleNamespace(type=kind))


class ScriptedCore:
    """Services that disappear ``lag`` listings after their deletion; ``fail_listing`` raises from that listing on."""

    def __init__(self, services: list[SimpleNamespace], lag: int = 1, fail_listing: int | None = None) -> None:
        self.services = services
        self.lag = lag
        self.fail_listing = fail_listing
        self.listings = 0
        self.deleted: dict[tuple[str, str], int] = {}

    def list_service_for_all_namespaces(self) -> SimpleNamespace:
        self.listings += 1
        if self.fail_listing is not None and self.listings >= self.fail_listing:
            raise ApiException(status=403, reason="Forbidden")
        gone = {key for key, at in self.deleted.items() if self.listings - at > self.lag}
        return SimpleNamespace(items=[s for s in self.services if (s.metadata.namespace, s.metadata.name) not in gone])

    def delete_namespaced_service(self, name: str, namespace: str) -> None:
        if name == "already-gone":  # deleted by someone else since the listing
            self.deleted[(namespace, name)] = self.listings - self.lag - 1
            raise ApiException(status=404, reason="Not Found")
        self.deleted[(namespace, name)] = self.listings


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    return str(standalone(tmp_path / "kubeconfig", main="https://10.0.0.1:6443"))


def patch_core(monkeypatch: pytest.MonkeyPatch, core: ScriptedCore) -> None:
    monkeypatch.setattr(discovery, "k8s_client", SimpleNamespace(CoreV1Api=lambda _api: core))


def test_only_load_balancers_are_deleted_and_waited_for(monkeypatch: pytest.MonkeyPatch, kubeconfig: str) -> None:
    core = ScriptedCore(
        [
            service("ingress-nginx", "controller", "LoadBalancer"),
            service("api", "api", "ClusterIP"),
            service("ui", "already-gone", "LoadBalancer"),
        ]
    )
    patch_core(monkeypatch, core)
    slept: list[float] = []
    deleted = discovery.delete_load_balancer_services(
        kubeconfig, timeout=60, poll_interval=1, sleep=slept.append, clock=lambda: 0
    )
    assert deleted == ["ingress-nginx/controller", "ui/already-gone"]
    assert list(core.deleted) == [("ingress-nginx", "controller"), ("ui", "already-gone")]
    assert slept == [1], "it waited until the deleted Service was gone"


def test_an_api_error_while_waiting_is_a_kube_error_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, kubeconfig: str
) -> None:
    patch_core(monkeypatch, ScriptedCore([service("ingress-nginx", "controller", "LoadBalancer")], fail_listing=2))
    with pytest.raises(KubeError) as failure:
        discovery.delete_load_balancer_services(
            kubeconfig, timeout=60, poll_interval=0, sleep=lambda _s: None, clock=lambda: 0
        )
    assert failure.value.kind == "failed"
    assert str(failure.value).startswith("cannot delete the cluster's LoadBalancer Services: (403)")
    assert "it needs to list and delete Services" in str(failure.value)
