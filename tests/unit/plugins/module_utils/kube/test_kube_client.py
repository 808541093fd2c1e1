"""The one Kubernetes client factory: a kubeconfig and a context become an ApiClient, or a KubeError with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError, api_client

from tests.lib.kubeconfig import standalone


def test_the_current_or_the_named_context_is_used(tmp_path: Path) -> None:
    path = standalone(tmp_path / "kubeconfig", main="https://10.0.0.1:6443", other="https://10.0.0.2:6443")
    assert api_client(str(path)).configuration.host == "https://10.0.0.1:6443"
    assert api_client(str(path), "other").configuration.host == "https://10.0.0.2:6443"


@pytest.mark.parametrize("problem", ["empty", "unknown context", "missing file"])
def test_an_unusable_kubeconfig_is_named_with_the_fix(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "kubeconfig"
    context = None
    if problem == "empty":
        path.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    elif problem == "unknown context":
        standalone(path, main="https://10.0.0.1:6443")
        context = "production"
    with pytest.raises(KubeError) as failure:
        api_client(str(path), context)
    assert isinstance(failure.value, BiomageError) and failure.value.kind == "invalid"
    assert str(failure.value).startswith(f"cannot load the kubeconfig {path}: ")
    assert "Fix: point kubeconfig to a valid file" in str(failure.value)
