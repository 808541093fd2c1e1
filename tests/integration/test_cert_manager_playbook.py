"""playbooks/base.yml with the cert_manager role in development, against the session's real
kube-apiserver (cert-manager v1.21.2 CRDs enforced, no controllers): the issuers chart is installed,
both ClusterIssuers are stored as the CRD schema accepts them, a second run and --check after apply
change nothing, a values change is planned with its diff and applied by the next run, and a
misconfigured value stops the run with its name before any change."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.lib.ansible_run import REPO_ROOT, run_playbook

pytestmark = pytest.mark.slow
TAGS = ["--tags", "eks_cluster,cert_manager"]
EMAIL = "platform@biomage.test"  # inventories/development/group_vars/all/cert_manager.yml
SERVERS = {
    "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


@pytest.fixture(scope="module")
def custom(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def _issuers(custom: client.CustomObjectsApi) -> dict[str, dict]:
    listed = custom.list_cluster_custom_object("cert-manager.io", "v1", "clusterissuers")
    return {i["metadata"]["name"]: i for i in listed["items"] if i["metadata"]["name"] in SERVERS}


def _assert_issuers(custom: client.CustomObjectsApi, email: str) -> None:
    issuers = _issuers(custom)
    assert set(issuers) == set(SERVERS)
    for name, issuer in issuers.items():
        assert issuer["metadata"]["annotations"]["meta.helm.sh/release-name"] == "cert-manager-issuers"
        assert issuer["spec"]["acme"] == {
            "server": SERVERS[name],
            "email": email,
            "privateKeySecretRef": {"name": f"{name}-account-key"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": "traefik"}}}],
        }


def test_issuers_are_installed_idempotently_with_an_honest_plan(
    stack_ansible_env: dict[str, str], custom: client.CustomObjectsApi
) -> None:
    env = stack_ansible_env
    first = run_playbook("playbooks/base.yml", env=env, args=TAGS).assert_ok()
    assert "cert_manager_install_controllers is false in development" in " ".join(first.stdout.split())
    _assert_issuers(custom, EMAIL)
    helm = shutil.which("helm", path=env["PATH"])
    assert helm
    releases = subprocess.run(
        [helm, "list", "--namespace=cert-manager", "--output=json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert [(r["name"], r["status"], r["chart"]) for r in json.loads(releases)] == [
        ("cert-manager-issuers", "deployed", "k8s-cert-manager-issuers-1.0.0")
    ]

    again = run_playbook("playbooks/base.yml", env=env, args=TAGS).assert_ok()
    assert again.total("changed") == 0, again.stdout
    check = run_playbook("playbooks/base.yml", env=env, check=True, diff=True, args=TAGS).assert_ok()
    assert check.total("changed") == 0, check.stdout

    changed = {"cert_manager_acme_email": "tls@biomage.test"}
    plan = run_playbook("playbooks/base.yml", env=env, check=True, diff=True, extra_vars=changed, args=TAGS)
    plan.assert_ok()
    assert plan.total("changed") >= 1
    assert f"-            email: {EMAIL}" in plan.stdout and "+            email: tls@biomage.test" in plan.stdout
    _assert_issuers(custom, EMAIL)  # check mode changed nothing

    try:
        applied = run_playbook("playbooks/base.yml", env=env, extra_vars=changed, args=TAGS).assert_ok()
        assert applied.total("changed") >= 1
        _assert_issuers(custom, "tls@biomage.test")
        settled = run_playbook("playbooks/base.yml", env=env, check=True, extra_vars=changed, args=TAGS).assert_ok()
        assert settled.total("changed") == 0, settled.stdout
    finally:
        run_playbook("playbooks/base.yml", env=env, args=TAGS).assert_ok()
    _assert_issuers(custom, EMAIL)


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"cert_manager_acme_email": ""}, "cert_manager_acme_email=(empty)"),
        ({"cert_manager_acme_email": "platform"}, "Fix: set cert_manager_acme_email"),
        (
            {"cert_manager_issuers_extra_values": {"acme": {"stagingServer": "http://acme.test/directory"}}},
            "the ACME server URL of letsencrypt-staging must be https://",
        ),
    ],
)
def test_misconfigured_value_stops_the_run_before_any_change(
    stack_ansible_env: dict[str, str], custom: client.CustomObjectsApi, extra_vars: dict, message: str
) -> None:
    run_playbook("playbooks/base.yml", env=stack_ansible_env, args=TAGS).assert_ok()
    before = {n: i["metadata"]["resourceVersion"] for n, i in _issuers(custom).items()}
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, extra_vars=extra_vars, args=TAGS)
    assert result.returncode != 0
    assert message in " ".join(result.output.split())
    assert {n: i["metadata"]["resourceVersion"] for n, i in _issuers(custom).items()} == before


def test_the_crd_schema_rejects_an_issuer_the_chart_must_never_render(
    stack_ansible_env: dict[str, str], custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    """The server-side plan validates the rendered objects against the real CRD before the release
    changes: a copy of the chart without privateKeySecretRef fails with the server's message."""
    run_playbook("playbooks/base.yml", env=stack_ansible_env, args=TAGS).assert_ok()
    before = {n: i["metadata"]["resourceVersion"] for n, i in _issuers(custom).items()}
    chart = tmp_path / "issuers"
    shutil.copytree(REPO_ROOT / "infra/k8s-cert-manager-issuers", chart)
    helpers = chart / "templates/_helpers.tpl"
    text = helpers.read_text()
    broken = text.replace('    privateKeySecretRef:\n      name: {{ printf "%s-account-key" .name }}\n', "")
    assert broken != text
    helpers.write_text(broken)
    chart_yaml = chart / "Chart.yaml"  # a changed chart carries a new version (Chart.yaml says why)
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    result = run_playbook(
        "playbooks/base.yml", env=stack_ansible_env, extra_vars={"cert_manager_issuers_chart": str(chart)}, args=TAGS
    )
    assert result.returncode != 0
    assert "spec.acme.privateKeySecretRef: Required value" in result.output
    assert {n: i["metadata"]["resourceVersion"] for n, i in _issuers(custom).items()} == before
    run_playbook("playbooks/base.yml", env=stack_ansible_env, args=TAGS).assert_ok()  # the real chart recovers
    _assert_issuers(custom, EMAIL)
