"""charts/nodejs renders with the pinned helm (no server): lint passes, the values each release
must give are required with a message naming them, and nothing environment-specific is hard-coded."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "nodejs"
RELEASE_VALUES = {
    "image.repository": "ui",
    "image.tag": "master-0123abc",
    "kubernetes.env": "staging",
    "ingress.domainName": "scp-staging.example.org",
    "ingress.subdomain": "ui",
}


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    helm = shutil.which("helm", path=f"{Path(sys.executable).parent}") or shutil.which("helm")
    assert helm, "helm is not installed: run tools/kube/install-tools.sh (make setup)"
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def _set(values: dict[str, str]) -> list[str]:
    return [f"--set={key}={value}" for key, value in values.items()]


def _render(values: dict[str, str]) -> dict[str, dict]:
    result = _helm("template", "ui", str(CHART), "--namespace=ui-master", *_set(values))
    assert result.returncode == 0, result.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(result.stdout) if d}


def test_chart_lints_strictly() -> None:
    result = _helm("lint", "--strict", str(CHART), *_set(RELEASE_VALUES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["image.repository", "image.tag", "kubernetes.env", "ingress.domainName"])
def test_required_values_are_named_when_missing(missing: str) -> None:
    values = {key: value for key, value in RELEASE_VALUES.items() if key != missing}
    result = _helm("template", "ui", str(CHART), *_set(values))
    assert result.returncode != 0
    assert f"{missing} is required" in result.stderr


def test_rendered_objects_follow_the_environment() -> None:
    objects = _render(RELEASE_VALUES)
    assert set(objects) == {
        "ServiceAccount/deployment-runner",
        "Service/ui",
        "Deployment/ui",
        "Ingress/ui",
        "HorizontalPodAutoscaler/ui",
        "PodDisruptionBudget/ui",
        "NetworkPolicy/ui",
    }
    assert objects["Ingress/ui"]["spec"]["rules"][0]["host"] == "ui.scp-staging.example.org"
    assert "annotations" not in objects["ServiceAccount/deployment-runner"]["metadata"], "no IRSA role given"
    assert "replicas" not in objects["Deployment/ui"]["spec"], "the HPA owns the replica count"

    production = _render({**RELEASE_VALUES, "kubernetes.env": "production", "ingress.subdomain": ""})
    assert production["Ingress/ui"]["spec"]["tls"][0]["hosts"] == ["scp-staging.example.org"]

    fixed = _render({**RELEASE_VALUES, "hpa.enabled": "false", "ingress.enabled": "false"})
    assert "Ingress/ui" not in fixed and "HorizontalPodAutoscaler/ui" not in fixed
    assert fixed["Deployment/ui"]["spec"]["replicas"] == 2
