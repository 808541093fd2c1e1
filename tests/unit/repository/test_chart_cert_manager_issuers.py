"""infra/k8s-cert-manager-issuers renders with the pinned helm (no server): both Let's Encrypt
ClusterIssuers on cert-manager.io/v1 with the right ACME directories, the e-mail address required
and checked, the solver's ingress class from the values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "infra" / "k8s-cert-manager-issuers"
PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
EMAIL = "ops@example.org"


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    helm = shutil.which("helm", path=f"{Path(sys.executable).parent}") or shutil.which("helm")
    assert helm, "helm is not installed: run tools/kube/install-tools.sh (make setup)"
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def _render(*sets: str) -> dict[str, dict]:
    result = _helm("template", "cert-manager-issuers", str(CHART), "--namespace=cert-manager", *sets)
    assert result.returncode == 0, result.stderr
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(result.stdout) if d}


def test_chart_lints_strictly() -> None:
    result = _helm("lint", "--strict", str(CHART), f"--set=acme.email={EMAIL}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_version_is_pinned() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"].count(".") == 2 and not chart["version"].startswith("0.0")
    assert chart["appVersion"] == "v1.21.2", "the cert-manager release whose CRDs the issuers are validated against"


def test_both_issuers_are_rendered_with_the_lets_encrypt_directories() -> None:
    objects = _render(f"--set=acme.email={EMAIL}")
    assert set(objects) == {"ClusterIssuer/letsencrypt-prod", "ClusterIssuer/letsencrypt-staging"}
    for name, server in (("letsencrypt-prod", PRODUCTION), ("letsencrypt-staging", STAGING)):
        issuer = objects[f"ClusterIssuer/{name}"]
        assert issuer["apiVersion"] == "cert-manager.io/v1", "v1alpha2 was removed upstream"
        assert "namespace" not in issuer["metadata"], "ClusterIssuers are cluster-scoped"
        acme = issuer["spec"]["acme"]
        assert acme == {
            "server": server,
            "email": EMAIL,
            "privateKeySecretRef": {"name": f"{name}-account-key"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": "traefik"}}}],
        }


def test_values_reach_the_solver_and_the_account() -> None:
    objects = _render("--set=acme.email=tls@biomage.test", "--set=acme.ingressClassName=internal-nginx")
    for issuer in objects.values():
        assert issuer["spec"]["acme"]["email"] == "tls@biomage.test"
        assert issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClassName"] == "internal-nginx"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([], "acme.email is required"),
        (["--set=acme.email="], "acme.email is required"),
        (["--set=acme.email=ops"], 'acme.email "ops" is not an e-mail address'),
        ([f"--set=acme.email={EMAIL}", "--set=acme.ingressClassName="], "acme.ingressClassName is required"),
        ([f"--set=acme.email={EMAIL}", "--set=acme.stagingServer=http://acme.test/dir"], "must be https://"),
    ],
)
def test_misconfiguration_fails_with_a_message_naming_the_value(sets: list[str], message: str) -> None:
    result = _helm("template", "cert-manager-issuers", str(CHART), *sets)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr
    assert "cert_manager_acme_email" in result.stderr or "acme.email" not in message
