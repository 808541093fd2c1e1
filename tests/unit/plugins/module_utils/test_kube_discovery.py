"""Kubernetes API helpers against a stand-in API server: discovery and LoadBalancer Service removal."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.eksctl import EksError
from ansible_collections.biomage.iac.plugins.module_utils.kube_discovery import (
    cluster_info,
    delete_load_balancer_services,
)
from devstack import free_port

from tests.lib.kube_stub import ISSUER, KubeStub


def test_cluster_info_reads_version_and_issuer(tmp_path: Path) -> None:
    with KubeStub().running() as stub:
        info = cluster_info(str(stub.kubeconfig(tmp_path / "kubeconfig")))
    assert info == {"endpoint": stub.url, "version": "v1.34.4", "oidc_issuer": ISSUER}


def test_unpublished_issuer_is_none(tmp_path: Path) -> None:
    with KubeStub(publish_issuer=False).running() as stub:
        info = cluster_info(str(stub.kubeconfig(tmp_path / "kubeconfig")))
    assert info["version"] == "v1.34.4" and info["oidc_issuer"] is None


def test_silent_api_server_is_named_with_the_fix(tmp_path: Path) -> None:
    with KubeStub().running() as stub:
        kubeconfig = stub.kubeconfig(tmp_path / "kubeconfig")
    dead = kubeconfig.read_text().replace(stub.url, f"http://127.0.0.1:{free_port()}")
    kubeconfig.write_text(dead)
    with pytest.raises(EksError) as failure:
        cluster_info(str(kubeconfig), timeout=2)
    assert "does not answer" in failure.value.msg and "make dev-up" in failure.value.msg


def test_bad_kubeconfig_is_named(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(EksError, match="cannot load the kubeconfig"):
        cluster_info(str(tmp_path / "kubeconfig"))


def test_only_load_balancer_services_are_deleted_and_waited_for(tmp_path: Path) -> None:
    stub = KubeStub(delete_delay=2)
    stub.add_service("ingress-nginx", "ingress-nginx-controller", "LoadBalancer")
    stub.add_service("api-master", "api", "ClusterIP")
    stub.add_service("ui-master", "ui-public", "LoadBalancer")
    waits: list[float] = []
    with stub.running():
        deleted = delete_load_balancer_services(
            str(stub.kubeconfig(tmp_path / "kubeconfig")), timeout=60, poll_interval=0, sleep=waits.append
        )
    assert deleted == ["ingress-nginx/ingress-nginx-controller", "ui-master/ui-public"]
    assert list(stub.services) == [("api-master", "api")]
    assert ("DELETE", "/api/v1/namespaces/ingress-nginx/services/ingress-nginx-controller") in stub.requests
    assert len(waits) == 2  # it waited until the services were really gone


def test_load_balancers_that_never_go_stop_the_deletion(tmp_path: Path) -> None:
    stub = KubeStub(delete_delay=10_000)
    stub.add_service("ingress-nginx", "ingress-nginx-controller", "LoadBalancer")
    ticks = iter(range(100))
    with stub.running(), pytest.raises(EksError) as failure:
        delete_load_balancer_services(
            str(stub.kubeconfig(tmp_path / "kubeconfig")),
            timeout=3,
            poll_interval=0,
            sleep=lambda _s: None,
            clock=lambda: float(next(ticks)),
        )
    assert "ingress-nginx/ingress-nginx-controller were still being deleted after 3s" in failure.value.msg
    assert "the cluster was not deleted" in failure.value.msg
