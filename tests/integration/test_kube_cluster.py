"""The local Kubernetes cluster of the session's stack, used the way the roles will use it:
kubernetes.core's k8s and helm modules, server-side dry-run in check mode, CRD validation of
cert-manager and Flux objects, workloads on KWOK's simulated nodes, and the load-balancer stand-in."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from typing import Any

import pytest
from devstack.lb_standin import CLEANUP_FINALIZER, load_balancer_name
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lib.ansible_run import REPO_ROOT, run_playbook
from tests.lib.aws import client as aws_client

pytestmark = pytest.mark.slow
PLAYBOOKS = "tests/fixtures/playbooks"
RBAC_GROUP = "rbac.authorization.k8s.io"
IAM_ROLE = "arn:aws:iam::000000000000:role/ui-role-development"
# meta/tool-versions.env: the local stack is built at the pinned kubectl and helm releases
PINS = dict(
    line.split("=", 1)
    for line in (REPO_ROOT / "meta/tool-versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
KUBE = "v" + PINS["KUBECTL_VERSION"]


@pytest.fixture(scope="module")
def api(kube_api: client.ApiClient) -> client.ApiClient:
    return kube_api


def _tool_output(env: dict[str, str], *argv: str) -> str:
    path = shutil.which(argv[0], path=env["PATH"])
    assert path, f"{argv[0]} is not on the virtualenv's PATH: run tools/kube/install-tools.sh (make setup)"
    return subprocess.run([path, *argv[1:]], env=env, check=True, capture_output=True, text=True).stdout


def test_server_runs_the_pinned_release_with_rbac_and_the_crds(devstack: dict[str, str], api: client.ApiClient) -> None:
    assert devstack["KUBECONFIG"] == devstack["K8S_AUTH_KUBECONFIG"]
    assert devstack["BIOMAGE_KUBE_SERVER"].startswith("https://127.0.0.1:")
    version = client.VersionApi(api).get_code()
    assert (version.git_version, version.major, version.minor) == (KUBE, "1", KUBE.split(".")[1])

    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "clusterroles", "group": RBAC_GROUP}}}
    )
    assert review.status.allowed, "the admin kubeconfig is in system:masters"

    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    established = {
        crd.metadata.name
        for crd in crds
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])
    }
    assert {
        "clusterissuers.cert-manager.io",
        "issuers.cert-manager.io",
        "certificates.cert-manager.io",
        "gitrepositories.source.toolkit.fluxcd.io",
        "helmrepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "helmreleases.helm.toolkit.fluxcd.io",
    } <= established


def test_kubectl_and_helm_on_path_are_the_pinned_versions(stack_ansible_env: dict[str, str]) -> None:
    kubectl = _tool_output(stack_ansible_env, "kubectl", "version", "--output=json")
    assert f'"gitVersion": "{KUBE}"' in kubectl  # client and server
    assert kubectl.count(f'"gitVersion": "{KUBE}"') == 2
    helm = _tool_output(stack_ansible_env, "helm", "version", "--template={{.Version}}")
    assert helm == "v" + PINS["HELM_VERSION"]


def test_kubernetes_core_creates_objects_idempotently_and_check_mode_is_honest(
    stack_ansible_env: dict[str, str], api: client.ApiClient
) -> None:
    playbook = f"{PLAYBOOKS}/kube_objects.yml"
    first = run_playbook(playbook, env=stack_ansible_env).assert_ok()
    assert first.total("changed") == 3, first.stdout
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deployment = apps.read_namespaced_deployment("web", "kube-probe")
    assert deployment.spec.replicas == 1
    assert _ready_replicas(apps, "kube-probe", "web", 1) == 1, "its Pod runs on a simulated node"
    assert core.read_namespaced_service("web", "kube-probe").spec.cluster_ip.startswith("10.")

    again = run_playbook(playbook, env=stack_ansible_env).assert_ok()
    assert again.total("changed") == 0, again.stdout

    # --check uses the server's dry-run: no change reported on unchanged objects...
    unchanged = run_playbook(playbook, env=stack_ansible_env, check=True, diff=True).assert_ok()
    assert unchanged.total("changed") == 0, unchanged.stdout
    # ...a real change is reported (with its diff) and not made
    planned = run_playbook(
        playbook, env=stack_ansible_env, check=True, diff=True, extra_vars={"probe_replicas": "3"}
    ).assert_ok()
    assert planned.total("changed") == 1, planned.stdout
    assert re.search(r"^[-]\s+\"?replicas\"?: 1", planned.stdout, re.MULTILINE), planned.stdout
    assert re.search(r"^[+]\s+\"?replicas\"?: 3", planned.stdout, re.MULTILINE), planned.stdout
    assert apps.read_namespaced_deployment("web", "kube-probe").spec.replicas == 1


def _ready_replicas(apps: client.AppsV1Api, namespace: str, name: str, want: int, timeout: float = 60) -> int:
    """The Deployment's ready replicas once they reach ``want`` (or what they are after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        ready = apps.read_namespaced_deployment_status(name, namespace).status.ready_replicas or 0
        if ready >= want or time.monotonic() > deadline:
            return ready
        time.sleep(0.25)


def test_deployment_pods_become_ready_on_simulated_nodes_and_jobs_complete(api: client.ApiClient) -> None:
    """kube-controller-manager, kube-scheduler and KWOK: a Deployment's Pods are scheduled onto the fake nodes
    and become Ready; scaling, a Job's completion and a namespace's deletion finish as on a real cluster."""
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    nodes = core.list_node().items
    assert len(nodes) >= 2 and all(n.metadata.annotations["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes)

    namespace = "kwok-probe"
    core.create_namespace({"metadata": {"name": namespace}})
    labels = {"app": "probe"}
    pod = {"containers": [{"name": "app", "image": "registry.invalid/never-pulled:1"}]}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "probe"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
    )
    assert _ready_replicas(apps, namespace, "probe", 3) == 3
    pods = core.list_namespaced_pod(namespace, label_selector="app=probe").items
    assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in nodes}
    assert all(p.status.phase == "Running" and p.status.pod_ip.startswith("10.244.") for p in pods)
    core.create_namespaced_service(
        namespace, {"metadata": {"name": "probe"}, "spec": {"selector": labels, "ports": [{"port": 80}]}}
    )
    discovery, deadline, addresses = client.DiscoveryV1Api(api), time.monotonic() + 30, set()
    while addresses != {p.status.pod_ip for p in pods}:
        assert time.monotonic() < deadline, f"the Service's endpoints are {addresses}"
        time.sleep(0.25)
        slices = discovery.list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=probe")
        addresses = {a for s in slices.items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses}
    assert core.read_namespaced_config_map("kube-root-ca.crt", namespace).data["ca.crt"].startswith("-----BEGIN")
    assert core.read_namespaced_service_account("default", namespace)

    apps.patch_namespaced_deployment_scale("probe", namespace, {"spec": {"replicas": 1}})
    deadline = time.monotonic() + 60
    while len(core.list_namespaced_pod(namespace, label_selector="app=probe").items) != 1:
        assert time.monotonic() < deadline, "scaled-down Pods were never deleted"
        time.sleep(0.25)

    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "once"},
            "spec": {"backoffLimit": 0, "template": {"spec": {**pod, "restartPolicy": "Never"}}},
        },
    )
    deadline = time.monotonic() + 60
    while not (batch.read_namespaced_job_status("once", namespace).status.succeeded or 0):
        assert time.monotonic() < deadline, "the Job's Pod never completed"
        time.sleep(0.25)

    core.delete_namespace(namespace)
    deadline = time.monotonic() + 60
    while namespace in [n.metadata.name for n in core.list_namespace().items]:
        assert time.monotonic() < deadline, "the namespace stayed Terminating"
        time.sleep(0.5)


def test_invalid_cert_manager_and_flux_objects_are_rejected_by_the_server(
    stack_ansible_env: dict[str, str], api: client.ApiClient
) -> None:
    result = run_playbook(f"{PLAYBOOKS}/kube_invalid.yml", env=stack_ansible_env).assert_ok()
    assert "spec.acme.privateKeySecretRef: Required value" in result.stdout, result.stdout
    assert "spec.chart.spec.chart: Required value" in result.stdout, result.stdout
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as missing:
        custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "letsencrypt-misspelled")
    assert missing.value.status == 404, "the invalid ClusterIssuer was not stored"


def test_unknown_field_is_rejected_with_strict_field_validation(api: client.ApiClient) -> None:
    issuer: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "letsencrypt-typo"},
        "spec": {
            "acme": {
                "server": "https://acme-staging-v02.api.letsencrypt.org/directory",
                "emial": "ops@example.org",
                "privateKeySecretRef": {"name": "letsencrypt-typo"},
                "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
            }
        },
    }
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as rejected:
        custom.create_cluster_custom_object(
            "cert-manager.io", "v1", "clusterissuers", issuer, field_validation="Strict"
        )
    assert rejected.value.status == 400
    assert 'unknown field "spec.acme.emial"' in json.loads(rejected.value.body)["message"]

    issuer["spec"]["acme"]["email"] = issuer["spec"]["acme"].pop("emial")
    created = custom.create_cluster_custom_object(
        "cert-manager.io", "v1", "clusterissuers", issuer, field_validation="Strict"
    )
    assert created["spec"]["acme"]["email"] == "ops@example.org", "the corrected object is accepted"


def test_helm_module_installs_the_nodejs_chart(stack_ansible_env: dict[str, str], api: client.ApiClient) -> None:
    playbook = f"{PLAYBOOKS}/kube_helm.yml"
    first = run_playbook(playbook, env=stack_ansible_env).assert_ok()
    assert first.total("changed") == 1, first.stdout
    again = run_playbook(playbook, env=stack_ansible_env).assert_ok()
    assert again.total("changed") == 0, again.stdout

    releases = _tool_output(stack_ansible_env, "helm", "list", "--namespace=ui-probe", "--output=json")
    assert '"name":"ui"' in releases and '"status":"deployed"' in releases

    namespace = "ui-probe"
    deployment = client.AppsV1Api(api).read_namespaced_deployment("ui", namespace)
    assert deployment.spec.template.spec.service_account_name == "deployment-runner"
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "000000000000.dkr.ecr.eu-west-1.amazonaws.com/ui:master-0123abc"
    assert {e.name: e.value for e in container.env}["K8S_ENV"] == "development"
    assert container.readiness_probe.http_get.path == "/health"

    account = client.CoreV1Api(api).read_namespaced_service_account("deployment-runner", namespace)
    assert account.metadata.annotations["eks.amazonaws.com/role-arn"] == IAM_ROLE

    ingress = client.NetworkingV1Api(api).read_namespaced_ingress("ui", namespace)
    assert ingress.spec.ingress_class_name == "traefik"  # charts/nodejs 2.0.0: the Traefik class (docs/ingress.md)
    assert ingress.metadata.annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ingress.spec.tls[0].hosts == ["ui.scp.biomage.test"]
    assert ingress.spec.rules[0].host == "ui.scp.biomage.test"

    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("ui", namespace)
    assert (hpa.spec.scale_target_ref.kind, hpa.spec.scale_target_ref.name) == ("Deployment", deployment.metadata.name)
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("ui", namespace).spec.min_available == 1
    policy = client.NetworkingV1Api(api).read_namespaced_network_policy("ui", namespace)
    assert policy.spec.pod_selector.match_labels == deployment.spec.selector.match_labels


def test_load_balancer_stand_in_writes_the_emulator_load_balancer_hostname(
    devstack: dict[str, str], api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name="lb-probe"))
    core.create_namespace(namespace)
    ports = [client.V1ServicePort(port=80, target_port=80)]
    for name, kind in (("public", "LoadBalancer"), ("internal", "ClusterIP")):
        service = client.V1Service(
            metadata=client.V1ObjectMeta(name=name), spec=client.V1ServiceSpec(type=kind, ports=ports)
        )
        core.create_namespaced_service("lb-probe", service)

    deadline = time.monotonic() + 20
    ingress = None
    while time.monotonic() < deadline and not ingress:
        ingress = core.read_namespaced_service_status("public", "lb-probe").status.load_balancer.ingress
        time.sleep(0.2)
    assert ingress, "no load-balancer hostname within 20 s"
    assert not core.read_namespaced_service_status("internal", "lb-probe").status.load_balancer.ingress

    # the same load balancer exists in the AWS emulator, as the in-tree AWS provider names it
    uid = core.read_namespaced_service("public", "lb-probe").metadata.uid
    found = aws_client(devstack, "elbv2").describe_load_balancers(Names=[load_balancer_name(uid)])["LoadBalancers"]
    assert [lb["DNSName"] for lb in found] == [ingress[0].hostname]
    assert found[0]["Type"] == "network" and found[0]["CanonicalHostedZoneId"]
    assert core.read_namespaced_service("public", "lb-probe").metadata.finalizers == [CLEANUP_FINALIZER]

    # deleting it: the Service stays (deletion timestamp) until its load balancer is gone, as on EKS
    core.delete_namespaced_service("public", "lb-probe")
    assert core.read_namespaced_service("public", "lb-probe").metadata.deletion_timestamp
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "public" in _service_names(core, "lb-probe"):
        time.sleep(0.2)
    assert _service_names(core, "lb-probe") == ["internal"], "the stand-in never released the deleted Service"
    elbv2 = aws_client(devstack, "elbv2")
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[load_balancer_name(uid)])


def _service_names(core: client.CoreV1Api, namespace: str) -> list[str]:
    return sorted(service.metadata.name for service in core.list_namespaced_service(namespace).items)
