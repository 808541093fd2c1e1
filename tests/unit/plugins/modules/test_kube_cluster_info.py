"""The kube_cluster_info module in-process: the shared kubeconfig options and its failures with error_kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.modules import kube_cluster_info
from devstack import free_port

from tests.lib.kubeconfig import standalone
from tests.lib.module_run import run_module


def test_the_kubeconfig_falls_back_to_k8s_auth_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    path = standalone(tmp_path / "kubeconfig", main=server)
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(path))
    outcome = run_module(kube_cluster_info.main, {"timeout": 2})
    assert outcome.failed and outcome.result["error_kind"] == "failed"
    assert f"the Kubernetes API server at {server} (kubeconfig {path}) does not answer" in outcome.result["msg"]
    assert "Fix: start it (development: `make dev-up`)" in outcome.result["msg"]


def test_an_unusable_kubeconfig_or_context_fails_as_invalid(tmp_path: Path) -> None:
    path = standalone(tmp_path / "kubeconfig", main="https://10.0.0.1:6443")
    outcome = run_module(kube_cluster_info.main, {"kubeconfig": str(path), "context": "production"})
    assert outcome.failed and outcome.result["error_kind"] == "invalid"
    assert outcome.result["msg"].startswith(f"cannot load the kubeconfig {path}: ")
