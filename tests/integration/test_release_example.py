"""The release template a service's CI fills in (docs/examples/ui.flux.ci), checked on the real API
server of the local stack (Flux's CRDs installed) and rendered with the chart it names; the offline
release checks (plugins/module_utils/flux/releases.py) judged against that API server."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import flux_v1, releases
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.releases import filled_release

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dyn(kube_api: client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(kube_api)


def test_the_filled_example_is_accepted_by_the_api_server(dyn: dynamic.DynamicClient) -> None:
    namespace, release = filled_release("development", ref="example-check")
    dyn.resources.get(api_version="v1", kind="Namespace").create(body=namespace)
    helm_releases = dyn.resources.get(api_version="helm.toolkit.fluxcd.io/v2", kind="HelmRelease")
    accepted = helm_releases.create(
        body=release,
        namespace=release["metadata"]["namespace"],
        query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
    )
    assert accepted.spec.chart.spec.chart == "./charts/nodejs"

    del release["spec"]["chart"]["spec"]["sourceRef"]
    with pytest.raises(ApiException) as rejected:
        helm_releases.create(body=release, namespace=release["metadata"]["namespace"], query_params=[("dryRun", "All")])
    assert rejected.value.status == 422
    assert "spec.chart.spec.sourceRef: Required value" in json.loads(rejected.value.body)["message"]


def test_the_filled_example_renders_with_its_chart(stack_ansible_env: dict[str, str], tmp_path: Path) -> None:
    release = filled_release("staging", domain="scp-staging.biomage.test")[1]
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(release["spec"]["values"]))
    helm = shutil.which("helm", path=stack_ansible_env["PATH"])
    assert helm, "helm is not on the virtualenv's PATH: run make setup"
    rendered = subprocess.run(
        [
            helm,
            "template",
            release["spec"]["releaseName"],
            str(REPO_ROOT / release["spec"]["chart"]["spec"]["chart"]),
            "--namespace",
            release["metadata"]["namespace"],
            "--values",
            str(values),
        ],
        env=stack_ansible_env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    objects = {o["kind"]: o for o in yaml.safe_load_all(rendered) if o}
    deployment = objects["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "000000000000.dkr.ecr.eu-west-1.amazonaws.com/ui:master-0000000"
    assert {"name": "K8S_ENV", "value": "staging"} in container["env"]
    ingress = objects["Ingress"]
    assert ingress["spec"]["rules"][0]["host"] == "ui.scp-staging.biomage.test"
    account = objects["ServiceAccount"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        ":role/biomage-ui-staging-eu-west-1"
    )


def _cases() -> list[tuple[str, list[dict], bool]]:
    """(name, documents, valid): objects the offline checker and the API server must judge alike."""
    namespace, release = filled_release("development", ref="agree")
    ns = release["metadata"]["namespace"]

    def source(kind: str, name: str, spec: dict) -> dict:
        return {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }

    oci = source("OCIRepository", "podinfo", {"interval": "10m", "url": "oci://ghcr.io/stefanprodan/charts/podinfo"})
    standard = [
        namespace,
        source("HelmRepository", "podinfo", {"interval": "1h", "url": "https://stefanprodan.github.io/podinfo"}),
        oci,
        source("GitRepository", "podinfo", {"interval": "5m", "url": "https://github.com/stefanprodan/podinfo"}),
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
        },
        release,
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {"image": "ghcr.io/stefanprodan/podinfo", "interval": "5m"},
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": "6.x"}}},
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageUpdateAutomation",
            "metadata": {"name": "podinfo", "namespace": ns},
            "spec": {
                "interval": "30m",
                "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
                "git": {"commit": {"author": {"email": "bot@example.org", "name": "bot"}}},
                "update": {"path": "./", "strategy": "Setters"},
            },
        },
    ]
    cases = [("standard objects", standard, True)]

    def broken(name: str, change) -> None:
        copy_ns, copy_release = filled_release("development", ref="agree")
        change(copy_release)
        cases.append((name, [copy_ns, copy_release], False))

    broken("unknown field", lambda r: r["spec"]["chart"]["spec"].update(sourceRefs={"kind": "GitRepository"}))
    broken("wrong type", lambda r: r["spec"].update(interval=5))
    broken("not in the enum", lambda r: r["spec"]["chart"]["spec"]["sourceRef"].update(kind="OCIRepository"))
    broken("a CRD rule", lambda r: r["spec"].update(chartRef={"kind": "OCIRepository", "name": "podinfo"}))
    broken("a label that is not a string", lambda r: r["metadata"].update(labels={"n": 1}))
    broken("an unknown metadata field", lambda r: r["metadata"].update(namespce="x"))
    broken("a bad duration", lambda r: r["spec"].update(timeout="5 minutes"))
    policy = copy.deepcopy(standard[-2])
    policy["spec"]["policy"] = {"semvr": {"range": "6.x"}}
    cases.append(("an image policy with an unknown field", [namespace, policy], False))
    return cases


def _server_accepts(dyn: dynamic.DynamicClient, documents: list[dict]) -> bool:
    for doc in documents:
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        namespace = doc["metadata"].get("namespace")
        try:
            if doc["kind"] == "Namespace":
                existing = [n.metadata.name for n in resource.get().items]
                if doc["metadata"]["name"] not in existing:
                    resource.create(body=doc, query_params=[("fieldValidation", "Strict")])
                continue
            resource.create(
                body=doc, namespace=namespace, query_params=[("dryRun", "All"), ("fieldValidation", "Strict")]
            )
        except ApiException as exc:
            assert exc.status in (400, 422), exc.body
            return False
    return True


def test_the_offline_checker_judges_like_the_api_server(dyn: dynamic.DynamicClient) -> None:
    checker = releases.ReleaseChecker(REPO_ROOT)
    for name, documents, valid in _cases():
        report = checker.check_documents(documents, "development", f"{name}.yaml")
        assert (report.errors == []) is valid, (name, [str(f) for f in report.errors])
        assert _server_accepts(dyn, documents) is valid, name


def test_the_migrated_flux_v1_fixtures_are_accepted_by_the_api_server(dyn: dynamic.DynamicClient) -> None:
    fixtures = REPO_ROOT / "tests" / "fixtures" / "flux_v1" / "releases"
    for path in sorted(fixtures.rglob("*.yaml")):
        conversion = flux_v1.convert_documents(releases.load_documents(path.read_text()))
        assert conversion.converted, path
        assert _server_accepts(dyn, conversion.documents), path
