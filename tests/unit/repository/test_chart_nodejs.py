"""charts/nodejs renders with the pinned helm (no server): lint passes, the values each release
must give are required with a message naming them, nothing environment-specific is hard-coded, and
values.schema.json refuses unknown keys (with their path) and malformed probes, ports, hosts and
IRSA roles before anything renders."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.lib.releases import render_chart, rendered_objects

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


# --- values.schema.json: the values releases give, checked before anything renders --------------

BASE = {
    "image": {"repository": "ui", "tag": "master-0123abc"},
    "kubernetes": {"env": "staging"},
    "ingress": {"domainName": "scp-staging.example.org", "subdomain": "ui"},
}


def _with(**changes: object) -> dict:
    """BASE with dotted keys set, e.g. _with(**{"probes.readiness.path": "/ready"})."""
    values = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = values
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return values


def _refused(values: dict) -> str:
    result = render_chart(values)
    assert result.returncode != 0, "helm rendered values the chart must refuse"
    return result.stderr


def test_the_default_values_meet_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(defaults)


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("bogus", 1, "at '': additional properties 'bogus' not allowed"),
        ("probes.foo", 1, "at '/probes': additional properties 'foo' not allowed"),
        (
            "probes.readiness.initialDelay",
            5,
            "at '/probes/readiness': additional properties 'initialDelay' not allowed",
        ),
        ("service.internalPort", 3000, "at '/service': additional properties 'internalPort' not allowed"),
        ("ingress.hosts", ["a.example.org"], "at '/ingress': additional properties 'hosts' not allowed"),
    ],
)
def test_an_unknown_key_is_refused_with_its_path(key: str, value: object, where: str) -> None:
    assert where in _refused(_with(**{key: value}))


def test_helm_lint_enforces_the_schema_too() -> None:
    result = _helm("lint", "--strict", str(CHART), *_set(RELEASE_VALUES), "--set=probes.foo=1")
    assert result.returncode != 0
    assert "at '/probes': additional properties 'foo' not allowed" in result.stdout + result.stderr


def test_probe_paths_and_overrides() -> None:
    values = _with(
        **{
            "probes.path": "/healthz",
            "probes.readiness.path": "/ready",
            "probes.readiness.timeoutSeconds": 3,
            "probes.liveness.type": "tcpSocket",
            "probes.liveness.initialDelaySeconds": 60,
        }
    )
    (container,) = rendered_objects(render_chart(values))["Deployment/ui"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/ready", "port": "http"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 3,
    }
    assert container["livenessProbe"] == {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 60, "periodSeconds": 10}
    (container,) = rendered_objects(render_chart(_with(**{"probes.liveness.enabled": False})))["Deployment/ui"]["spec"][
        "template"
    ]["spec"]["containers"]
    assert "livenessProbe" not in container
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("probes.path", "health", "at '/probes/path': 'health' does not match pattern '^/'"),
        ("probes.liveness.type", "exec", "at '/probes/liveness/type': value must be one of 'httpGet', 'tcpSocket'"),
        ("probes.liveness.successThreshold", 2, "at '/probes/liveness/successThreshold': value must be 1"),
        ("containerPort", 70000, "at '/containerPort': maximum: got 70,000, want 65,535"),
        ("service.port", "80", "at '/service/port': got string, want integer"),
    ],
)
def test_probe_and_port_values_are_checked(key: str, value: object, expected: str) -> None:
    assert expected in _refused(_with(**{key: value}))


def test_ports() -> None:
    objects = rendered_objects(render_chart(_with(containerPort=8080, **{"service.port": 8000})))
    (container,) = objects["Deployment/ui"]["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert objects["Service/ui"]["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_one_host_per_release_unless_extra_hosts_are_given() -> None:
    ingress = rendered_objects(render_chart(BASE))["Ingress/ui"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["ui.scp-staging.example.org"]
    assert ingress["spec"]["tls"][0]["hosts"] == ["ui.scp-staging.example.org"]
    extra = _with(**{"ingress.extraHosts": ["scp-staging.example.org", "www.example.org"]})
    ingress = rendered_objects(render_chart(extra))["Ingress/ui"]
    hosts = ["ui.scp-staging.example.org", "scp-staging.example.org", "www.example.org"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == hosts
    assert ingress["spec"]["tls"][0]["hosts"] == hosts
    assert "ingress.extraHosts: ui.scp-staging.example.org is already a host of this release" in _refused(
        _with(**{"ingress.extraHosts": ["ui.scp-staging.example.org"]})
    )
    assert "at '/ingress/extraHosts/0': 'WWW.example.org' does not match pattern" in _refused(
        _with(**{"ingress.extraHosts": ["WWW.example.org"]})
    )


def _role_annotation(values: dict) -> str:
    account = rendered_objects(render_chart(values))["ServiceAccount/deployment-runner"]
    return account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]


def test_the_irsa_annotation_is_always_an_arn() -> None:
    arn = "arn:aws:iam::000000000000:role/biomage-ui-staging-eu-west-1"
    assert _role_annotation(_with(**{"serviceAccount.iamRole": arn})) == arn
    by_name = _with(
        **{"serviceAccount.iamRole": "biomage-ui-staging-eu-west-1", "serviceAccount.accountId": "000000000000"}
    )
    assert _role_annotation(by_name) == arn
    by_name["serviceAccount"]["partition"] = "aws-cn"
    assert _role_annotation(by_name) == "arn:aws-cn:iam::000000000000:role/biomage-ui-staging-eu-west-1"
    # a role name without the account, a malformed ARN, an unquoted account id: refused before rendering
    assert "at '/serviceAccount/accountId': minLength: got 0, want 12" in _refused(
        _with(**{"serviceAccount.iamRole": "biomage-ui-staging-eu-west-1"})
    )
    assert "at '/serviceAccount/iamRole': 'anyOf' failed" in _refused(
        _with(**{"serviceAccount.iamRole": "arn:aws:iam::123:role/x"})
    )
    assert "at '/serviceAccount/accountId': got number, want string" in _refused(
        _with(**{"serviceAccount.iamRole": "biomage-ui", "serviceAccount.accountId": 123456789012})
    )


def test_the_template_refuses_a_bad_arn_even_without_the_schema() -> None:
    result = _helm(
        "template",
        "ui",
        str(CHART),
        "--skip-schema-validation",
        *_set(RELEASE_VALUES),
        "--set=serviceAccount.iamRole=arn:aws:iam::123:role/x",
    )
    assert result.returncode != 0
    assert 'serviceAccount.iamRole "arn:aws:iam::123:role/x" is not an IAM role ARN' in result.stderr


@pytest.mark.parametrize("count", [0, 1, 3])
def test_replica_count_is_honoured_when_the_autoscaler_is_off(count: int) -> None:
    objects = rendered_objects(render_chart(_with(replicaCount=count, **{"hpa.enabled": False})))
    assert objects["Deployment/ui"]["spec"]["replicas"] == count
    assert "HorizontalPodAutoscaler/ui" not in objects


def test_replica_count_is_refused_while_the_autoscaler_owns_it() -> None:
    stderr = _refused(_with(replicaCount=3))
    assert "at '/replicaCount': got number, want null" in stderr
    result = _helm(
        "template", "ui", str(CHART), "--skip-schema-validation", *_set(RELEASE_VALUES), "--set=replicaCount=3"
    )
    assert "replicaCount is ignored while hpa.enabled is true" in result.stderr
    assert "hpa.minReplicas (7) is more than hpa.maxReplicas (6)" in _refused(_with(**{"hpa.minReplicas": 7}))


def test_a_sandbox_id_is_exported() -> None:
    objects = rendered_objects(render_chart(_with(**{"biomageCi.sandboxId": "my-sandbox"})))
    (container,) = objects["Deployment/ui"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "SANDBOX_ID", "value": "my-sandbox"} in container["env"]


# --- the Ingress is Traefik's (roles/ingress); the values of the ingress-nginx days fail with the fix ------------


def test_the_ingress_uses_traefiks_class_and_the_network_policy_admits_traefik() -> None:
    extra = {"traefik.ingress.kubernetes.io/x": "on-purpose"}
    objects = rendered_objects(render_chart(_with(**{"ingress.annotations": extra})))
    ingress = objects["Ingress/ui"]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"
    assert annotations["traefik.ingress.kubernetes.io/x"] == "on-purpose"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert not [key for key in annotations if key.startswith("nginx.ingress.kubernetes.io/")]
    sources = objects["NetworkPolicy/ui"]["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}} in sources


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ingress.className": "nginx"}, "ingress.className: nginx names the retired ingress-nginx"),
        ({"ingress.modsecurity.enabled": True}, "put AWS WAF on an ALB or CloudFront in front of the ingress"),
        (
            {"ingress.annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
            "ingress.annotations: nginx.ingress.kubernetes.io/proxy-body-size is an ingress-nginx annotation",
        ),
    ],
)
def test_values_of_the_ingress_nginx_days_fail_with_the_file_and_the_fix(changes: dict, expected: str) -> None:
    message = " ".join(_refused(_with(**changes)).split())
    assert expected in message
    assert "releases/<environment>/ui.yaml, spec.values.ingress" in message and "Fix:" in message


def test_modsecurity_false_of_older_values_still_renders() -> None:
    objects = rendered_objects(render_chart(_with(**{"ingress.modsecurity.enabled": False})))
    assert objects["Ingress/ui"]["spec"]["ingressClassName"] == "traefik"
