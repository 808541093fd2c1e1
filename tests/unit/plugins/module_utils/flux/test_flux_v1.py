"""plugins/module_utils/flux/flux_v1.py: Flux v1 HelmReleases converted to v2 objects that pass
the release checks, every change said in a note, placeholders and other documents left alone."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.flux import flux_v1
from ansible_collections.biomage.iac.plugins.module_utils.flux import releases as rel

from tests.lib.ansible_run import REPO_ROOT


def v1_release(chart: dict, values: dict | None = None, **spec) -> dict:
    return {
        "apiVersion": "helm.fluxcd.io/v1",
        "kind": "HelmRelease",
        "metadata": {"name": "ui-master", "namespace": "ui-master", "annotations": {"fluxcd.io/automated": "true"}},
        "spec": {"releaseName": "ui", "chart": chart, **({"values": values} if values is not None else {}), **spec},
    }


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ui-master"}}
VALUES = {
    "image": {"registry": "000000000000.dkr.ecr.eu-west-1.amazonaws.com", "repository": "ui", "tag": "master-0a1b2c3"},
    "kubernetes": {"env": "staging"},
    "ingress": {"domainName": "scp-staging.biomage.test", "subdomain": "ui"},
}


def check(documents: list, environment: str | None = "staging") -> list[str]:
    report = rel.ReleaseChecker(REPO_ROOT).check_documents(documents, environment, "ui.yaml")
    return [str(f) for f in report.findings if f.severity == "error"]


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:biomage-org/iac",
        "git@github.com:biomage-ltd/iac.git",
        "ssh://git@github.com/biomage-org/iac.git",
        "https://github.com/biomage-org/iac",
    ],
)
def test_a_chart_from_this_repository_reads_the_flux_system_source(url: str) -> None:
    conversion = flux_v1.convert_documents(
        [NAMESPACE, v1_release({"git": url, "path": "charts/nodejs", "ref": "master"}, VALUES)]
    )
    namespace, release = conversion.documents
    assert namespace == NAMESPACE
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chart"] == {
        "spec": {
            "chart": "./charts/nodejs",
            "reconcileStrategy": "Revision",
            "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"},
        }
    }
    assert "annotations" not in release["metadata"]
    assert conversion.converted == 1
    assert any("spec.chart.ref 'master' dropped" in n for n in conversion.notes)
    assert check(conversion.documents) == []


def test_the_namespace_is_added_when_the_file_had_none() -> None:
    conversion = flux_v1.convert_documents(
        [v1_release({"git": "git@github.com:biomage-org/iac", "path": "charts/nodejs"}, VALUES)]
    )
    assert len(conversion.documents) == 2
    namespace = conversion.documents[0]
    assert namespace == NAMESPACE
    assert conversion.notes[0] == "added Namespace ui-master before document 1 (Flux prunes both together)"
    assert check(conversion.documents) == []


def test_a_chart_from_another_git_repository_gets_its_own_source() -> None:
    chart = {"git": "git@github.com:example/charts.git", "path": "charts/podinfo", "ref": "v6"}
    documents = flux_v1.convert_documents([NAMESPACE, v1_release(chart)]).documents
    assert len(documents) == 3
    git, release = documents[1:]
    assert git == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "ui-master-chart", "namespace": "ui-master"},
        "spec": {"interval": "5m", "url": "ssh://git@github.com/example/charts", "ref": {"branch": "v6"}},
    }
    assert release["spec"]["chart"]["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "ui-master-chart"}
    assert check(documents) == []


def test_a_chart_from_a_helm_repository_gets_a_helm_repository() -> None:
    chart = {"repository": "https://stefanprodan.github.io/podinfo/", "name": "podinfo", "version": "6.5.0"}
    documents = flux_v1.convert_documents([NAMESPACE, v1_release(chart, {"replicaCount": 2})]).documents
    assert len(documents) == 3
    repository, release = documents[1:]
    assert repository["kind"] == "HelmRepository"
    assert repository["spec"] == {"interval": "1h", "url": "https://stefanprodan.github.io/podinfo"}
    assert release["spec"]["chart"]["spec"] == {
        "chart": "podinfo",
        "sourceRef": {"kind": "HelmRepository", "name": "stefanprodan-github-io"},
        "version": "6.5.0",
    }
    assert release["spec"]["values"] == {"replicaCount": 2}, "only charts/nodejs values are rewritten"
    assert check(documents) == []


def test_v1_options_map_to_their_v2_fields() -> None:
    release = v1_release(
        {"git": "git@github.com:biomage-org/iac", "path": "charts/nodejs"},
        VALUES,
        timeout=600,
        wait=False,
        forceUpgrade=True,
        skipCRDs=True,
        maxHistory=5,
        rollback={"enable": True},
        helmVersion="v3",
        valuesFrom=[
            {"secretKeyRef": {"name": "ui-secrets", "key": "values.yaml", "optional": True}},
            {"configMapKeyRef": {"name": "ui-config"}},
            {"externalSourceRef": {"url": "https://example.org/values.yaml"}},
        ],
    )
    conversion = flux_v1.convert_documents([NAMESPACE, release])
    spec = conversion.documents[1]["spec"]
    assert spec["timeout"] == "600s"
    assert spec["maxHistory"] == 5
    assert spec["install"] == {"remediation": {"retries": 3}, "crds": "Skip", "disableWait": True}
    assert spec["upgrade"] == {"remediation": {"retries": 3}, "crds": "Skip", "disableWait": True, "force": True}
    assert spec["valuesFrom"] == [
        {"kind": "Secret", "name": "ui-secrets", "valuesKey": "values.yaml", "optional": True},
        {"kind": "ConfigMap", "name": "ui-config"},
    ]
    notes = "\n".join(conversion.notes)
    assert "document 2: spec.valuesFrom[2] dropped" in notes
    assert "document 2: spec.rollback dropped" in notes
    assert "document 2: spec.helmVersion dropped" in notes
    assert check(conversion.documents) == []


def test_placeholders_and_other_documents_are_left_alone() -> None:
    release = v1_release(
        {"git": "git@github.com:biomage-org/iac", "path": "charts/nodejs", "ref": rel.PLACEHOLDER}, VALUES
    )
    release["metadata"].update(name=rel.PLACEHOLDER, namespace=rel.PLACEHOLDER)
    release["spec"]["values"] = {**copy.deepcopy(VALUES), "image": {"repository": "ui", "tag": rel.PLACEHOLDER}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    documents = flux_v1.convert_documents([release, other]).documents
    namespace, converted, kept = documents
    assert namespace["metadata"] == {"name": rel.PLACEHOLDER, "labels": {"sandboxId": rel.PLACEHOLDER}}
    assert converted["metadata"]["name"] == rel.PLACEHOLDER
    assert converted["spec"]["values"]["image"]["tag"] == rel.PLACEHOLDER
    assert kept is other


def test_a_v2_release_is_not_converted() -> None:
    v2 = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "x"}}
    conversion = flux_v1.convert_documents([NAMESPACE, v2])
    assert not conversion.changed
    assert conversion.documents == [NAMESPACE, v2]


def test_nodejs_values_of_the_older_shapes_are_rewritten() -> None:
    old = {
        **VALUES,
        "replicaCount": 1,
        "service": {"internalPort": 8080, "externalPort": 80, "name": "web", "enabled": True, "additionalHosts": True},
        "livenessProbe": {"path": "/", "probeType": "tcpSocket", "initialDelaySeconds": 30},
        "readinessProbe": {"path": "/ready", "probeType": "httpGet", "timeoutSeconds": 30},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
    }
    values, notes = flux_v1.convert_nodejs_values(old, "document 2")
    assert values == {
        **VALUES,
        "replicaCount": 1,
        "hpa": {"enabled": False},
        "containerPort": 8080,
        "service": {"port": 80},
        "ingress": {**VALUES["ingress"], "enabled": True, "extraHosts": ["scp-staging.biomage.test"]},
        "probes": {
            "liveness": {"path": "/", "type": "tcpSocket", "initialDelaySeconds": 30},
            "readiness": {"path": "/ready", "type": "httpGet", "timeoutSeconds": 30},
        },
        "pdb": {"enabled": True, "minAvailable": 1},
    }
    assert "document 2: spec.values.service.internalPort -> spec.values.containerPort" in notes
    assert old["service"]["internalPort"] == 8080, "the input is not modified"
    release = v1_release({"git": "git@github.com:biomage-org/iac", "path": "charts/nodejs"}, old)
    assert check(flux_v1.convert_documents([NAMESPACE, release]).documents) == []


def test_what_cannot_be_converted_is_left_for_validation_to_name() -> None:
    release = v1_release(
        {"git": "git@github.com:biomage-org/iac", "path": "charts/nodejs"},
        {**VALUES, "image": {**VALUES["image"], "secrets": ["x"]}},
    )
    conversion = flux_v1.convert_documents([NAMESPACE, release])
    (found,) = check(conversion.documents)
    assert found.startswith(
        "ui.yaml: document 2 spec.values.image.secrets: is not a field of charts/nodejs/values.schema.json"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:biomage-org/iac.git", ("github.com", "biomage-org/iac")),
        ("ssh://git@github.com:22/biomage-org/iac", ("github.com", "biomage-org/iac")),
        ("https://GitHub.com/biomage-org/iac/", ("github.com", "biomage-org/iac")),
        ("not a url", None),
    ],
)
def test_git_urls(url: str, expected: tuple | None) -> None:
    assert flux_v1.git_repository(url) == expected
