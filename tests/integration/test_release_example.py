"""The release template a service's CI fills in (docs/examples/ui.flux.ci), checked on the real API
server of the local stack (Flux's CRDs installed) and rendered with the chart it names."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
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
