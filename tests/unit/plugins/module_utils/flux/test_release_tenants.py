"""Tenants (docs/tenants.md): a service's releases live only in its own namespaces <app>-<ref>, name only
its own repository and run only with its own IRSA role; the checker refuses the rest."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown
from ansible_collections.biomage.iac.plugins.module_utils.flux import releases as rel

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.releases import filled_release

LABEL = "releases/staging/ui-x.yaml"


@pytest.fixture(scope="module")
def checker() -> rel.ReleaseChecker:
    return rel.ReleaseChecker(REPO_ROOT)


def in_namespace(namespace: str) -> list[dict]:
    ns, release = filled_release("staging")
    ns["metadata"]["name"] = namespace
    release["metadata"]["namespace"] = namespace
    return lockdown.with_deployer([ns, release])  # as the release step writes it


def messages(checker: rel.ReleaseChecker, documents: list[dict]) -> list[str]:
    return [str(f) for f in checker.check_documents(documents, "staging", LABEL).findings]


def test_the_services_come_from_the_irsa_templates(checker: rel.ReleaseChecker) -> None:
    assert checker.services() == ["api", "pipeline", "ui", "worker"]


def test_a_release_in_its_own_namespace_passes(checker: rel.ReleaseChecker) -> None:
    assert messages(checker, in_namespace("ui-feature-x")) == []


def test_a_ui_release_in_an_api_namespace_is_refused(checker: rel.ReleaseChecker) -> None:
    (finding,) = messages(checker, in_namespace("api-x"))
    assert "document 2 metadata.namespace" in finding
    assert "'api-x' is a namespace of service api, but the release belongs to ui (spec.releaseName)" in finding
    assert "use namespace ui-<ref>" in finding


def test_a_namespace_of_no_service_prefix_is_refused(checker: rel.ReleaseChecker) -> None:
    (finding,) = messages(checker, in_namespace("team-x"))
    assert "'team-x' is not a namespace of ui" in finding


def test_another_services_role_or_repository_is_refused(checker: rel.ReleaseChecker) -> None:
    ns, release = filled_release("staging")
    release["spec"]["values"]["serviceAccount"]["iamRole"] = (
        "arn:aws:iam::000000000000:role/biomage-api-staging-eu-west-1"
    )
    release["metadata"]["annotations"]["biomage.net/ci-repo"] = "biomage-org/api"
    found = messages(checker, [ns, release])
    assert any("iamRole: is the IAM role of service api, but the release belongs to ui" in f for f in found), found
    assert any("ci-repo: names repository biomage-org/api, but the release belongs to ui" in f for f in found), found


def test_the_owner_is_the_longest_matching_service() -> None:
    assert rel.namespace_owner("ui-admin-x", ["ui", "ui-admin"]) == "ui-admin"
    assert rel.namespace_owner("ui-x", ["ui", "ui-admin"]) == "ui"
    assert rel.namespace_owner("kube-system", ["ui"]) is None


# -- Flux's multi-tenancy lockdown: helm-controller's account in each release namespace ---------------------------
def test_a_release_file_of_the_older_layout_passes_with_a_warning_naming_the_file_and_the_fix(
    checker: rel.ReleaseChecker,
) -> None:
    ns, release = filled_release("staging")
    report = checker.check_documents([ns, release], "staging", LABEL)
    assert report.errors == []
    (warning,) = report.findings
    assert warning.severity == "warning"
    text = str(warning)
    assert text.startswith(f"{LABEL}: document 2 (HelmRelease ui-master/ui-master): has no ServiceAccount ")
    assert "release-deployer and no RoleBinding release-deployer in namespace ui-master" in text
    assert "helm-controller installs it as system:serviceaccount:ui-master:release-deployer" in text
    assert "Fix: run the release step again for this release (tools/release.py, or biomage.iac.flux_release)" in text


def test_only_the_release_steps_account_and_binding_are_accepted(checker: rel.ReleaseChecker) -> None:
    documents = in_namespace("ui-master")
    account, binding = documents[-2:]
    for tampered in (
        [*documents[:-1], {**binding, "roleRef": {**binding["roleRef"], "name": "cluster-admin"}}],
        [*documents[:-1], {**binding, "subjects": [{"kind": "Group", "name": "system:authenticated"}]}],
        [*documents[:-2], {**account, "metadata": {"name": "deployment-runner", "namespace": "ui-master"}}, binding],
    ):
        found = [f for f in checker.check_documents(tampered, "staging", LABEL).findings if f.severity == "error"]
        assert len(found) == 1, found
        assert "is not the release step's" in str(found[0])
        assert "Fix: run the release step again for this release" in str(found[0])
    # a renamed account also leaves the release without its account: warned as well
    renamed = [*documents[:-2], {**account, "metadata": {"name": "other", "namespace": "ui-master"}}, binding]
    assert [f.severity for f in checker.check_documents(renamed, "staging", LABEL).findings] == ["error", "warning"]


def test_a_chart_from_another_namespaces_source_is_refused(checker: rel.ReleaseChecker) -> None:
    """helm-controller runs without --no-cross-namespace-refs: the checker (and the admission policy) keep a
    release to its own namespace's sources and this repository's GitRepository."""
    documents = in_namespace("ui-master")
    release = documents[1]
    foreign = {"kind": "HelmRepository", "name": "p", "namespace": "api-master"}
    release["spec"]["chart"]["spec"].update(chart="podinfo", sourceRef=foreign)
    (finding,) = messages(checker, documents)
    assert "document 2 spec.chart.spec.sourceRef.namespace: 'api-master' is not the release's namespace" in finding
    assert "Fix: declare the source in ui-master (this file)" in finding
    release["spec"]["chart"]["spec"]["sourceRef"]["namespace"] = "ui-master"
    assert messages(checker, documents) == []
    del release["spec"]["chart"]
    release["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "p", "namespace": "worker-x"}
    (finding,) = messages(checker, documents)
    assert "document 2 spec.chartRef.namespace: 'worker-x' is not the release's namespace" in finding
