"""Flux's own controllers on the session's stack: source-controller, kustomize-controller and helm-controller
run as processes against the API server, the stack serves Flux's install manifest, and the real controllers
sync a source into Ready workloads on KWOK's simulated nodes, waited for by biomage.iac.flux_reconcile.

The source here is a Bucket of the stack's S3 emulator: git over SSH is the GitHub stand-in's part (the flux
role's end-to-end test uses it). A GitRepository is exercised for its failure path (an unreachable host)."""

from __future__ import annotations

import hashlib
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from devstack.core import free_port, pid_alive
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, run_playbook
from tests.lib.aws import client as aws_client
from tests.lib.aws import session as aws_session

pytestmark = pytest.mark.slow
NS = "flux-probe-sources"  # not flux-system: the flux role's tests own that one
APPS = "flux-probe"
BUCKET = "flux-probe"
PLAYBOOK = "tests/fixtures/playbooks/flux_reconcile.yml"
FLUX_GROUPS = {
    "Bucket": ("source.toolkit.fluxcd.io", "v1", "buckets"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
}
CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller")
RELEASE_CONTROLLERS = {  # every Deployment of Flux 2.9's install manifest
    *CONTROLLERS,
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "source-watcher",
}


def apply(api: client.ApiClient, kind: str, body: dict) -> None:
    group, version, plural = FLUX_GROUPS[kind]
    body = {"apiVersion": f"{group}/{version}", "kind": kind, **body}
    custom, name = client.CustomObjectsApi(api), body["metadata"]["name"]
    namespace = body["metadata"].get("namespace", NS)
    try:
        custom.create_namespaced_custom_object(group, version, namespace, plural, body)
    except ApiException as exc:
        assert exc.status == 409, exc.body
        current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        custom.replace_namespaced_custom_object(group, version, namespace, plural, name, body)


def delete(api: client.ApiClient, kind: str, name: str, namespace: str = NS) -> None:
    group, version, plural = FLUX_GROUPS[kind]
    try:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        assert exc.status == 404, exc.body


def kustomization(name: str, source_kind: str, source: str, path: str, wait: bool = True) -> dict:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "sourceRef": {"kind": source_kind, "name": source},
            "path": path,
            "prune": True,
            "wait": wait,
            "interval": "10m",
            "retryInterval": "5s",
            "timeout": "90s",
        },
    }


def reconcile(env: dict[str, str], **extra: object) -> PlaybookResult:
    return run_playbook(PLAYBOOK, env=env, extra_vars={"probe_namespace": NS, **extra})


def helm_release(replicas: int, chart: str = "./charts/nodejs", name: str = "ui", namespace: str = APPS) -> str:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": chart,
                    "sourceRef": {"kind": "Bucket", "name": BUCKET, "namespace": NS},
                }
            },
            "values": {
                "image": {"registry": "registry.invalid", "repository": "ui", "tag": "main-0123abc"},
                "replicaCount": replicas,
                "kubernetes": {"env": "development"},
                "ingress": {"enabled": False},
                "hpa": {"enabled": False},
            },
        },
    }
    return yaml.safe_dump(release)


# Flux's multi-tenancy lockdown (docs/tenants.md): helm-controller installs the HelmRelease of APPS as the account
# release-deployer of APPS, which the folder creates and binds to Kubernetes' namespace admin role (the flux role's
# biomage-release-deployer is not installed in this module)
DEPLOYER = "release-deployer"
PROBE_APP = yaml.safe_dump_all(
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEPLOYER, "namespace": APPS}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": DEPLOYER, "namespace": APPS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": DEPLOYER, "namespace": APPS}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "probe", "namespace": APPS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "probe"}},
                "template": {
                    "metadata": {"labels": {"app": "probe"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/probe:1"}]},
                },
            },
        },
    ]
)


@pytest.fixture(scope="module")
def api(kube_api: client.ApiClient) -> client.ApiClient:
    return kube_api


@pytest.fixture(scope="module")
def sources(api: client.ApiClient) -> Iterator[str]:
    """The namespace of this module's Flux objects (deleted at the end, with them). Its Kustomizations apply as
    kustomize-controller's default service account of NS (the lockdown), bound to cluster-admin here as a
    platform's own sync would be: they create namespaces."""
    client.CoreV1Api(api).create_namespace({"metadata": {"name": NS}})
    client.CoreV1Api(api).create_namespaced_service_account(NS, {"metadata": {"name": DEPLOYER}})
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": DEPLOYER, "namespace": NS}],
        }
    )
    try:
        yield NS
    finally:
        # the Kustomizations prune what they applied as that account: keep its rights until they are gone
        group, version, plural = FLUX_GROUPS["Kustomization"]
        deadline = time.monotonic() + 60
        while client.CustomObjectsApi(api).list_namespaced_custom_object(group, version, NS, plural)["items"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        rbac.delete_cluster_role_binding(NS)
        client.CoreV1Api(api).delete_namespace(NS)


@pytest.fixture(scope="module")
def bucket(devstack: dict[str, str], api: client.ApiClient, sources: str) -> Iterator[object]:
    """An S3 bucket of the emulator with this repository's nodejs chart, and a Flux Bucket source of it."""
    s3 = aws_client(devstack, "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": devstack["AWS_REGION"]})
    for path in sorted((REPO_ROOT / "charts/nodejs").rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=BUCKET, Key=str(path.relative_to(REPO_ROOT)), Body=path.read_bytes())
    credentials = aws_session(devstack).get_credentials()
    client.CoreV1Api(api).create_namespaced_secret(
        NS,
        {
            "metadata": {"name": "flux-probe-s3"},
            "stringData": {"accesskey": credentials.access_key, "secretkey": credentials.secret_key},
        },
    )
    endpoint = devstack["AWS_ENDPOINT_URL"].split("://", 1)[1].rstrip("/")
    apply(
        api,
        "Bucket",
        {
            "metadata": {"name": BUCKET, "namespace": NS},
            "spec": {
                "provider": "generic",
                "bucketName": BUCKET,
                "endpoint": endpoint,
                "insecure": True,
                "region": devstack["AWS_REGION"],
                "interval": "10m",
                "secretRef": {"name": "flux-probe-s3"},
            },
        },
    )
    try:
        yield s3
    finally:
        for name in ("flux-probe", "flux-probe-missing", "flux-probe-bad-chart"):
            delete(api, "Kustomization", name)
        delete(api, "Bucket", BUCKET)


def _ready_replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    return client.AppsV1Api(api).read_namespaced_deployment_status(name, namespace).status.ready_replicas or 0


def _helm_release_ready(api: client.ApiClient) -> dict:
    group, version, plural = FLUX_GROUPS["HelmRelease"]
    release = client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, APPS, plural, "ui")
    return {c["type"]: c["status"] for c in release["status"]["conditions"]}


# -- tests ------------------------------------------------------------------------------------------
def test_controllers_run_beside_the_api_server_and_the_manifest_is_served(devstack: dict[str, str]) -> None:
    state = Path(devstack["BIOMAGE_DEVSTACK_DIR"])
    for name in CONTROLLERS:
        pid = int((state / f"flux-{name}.pid").read_text())
        assert pid_alive(pid), f"{name} does not run"
    versions = dict(item.split("=") for item in devstack["FLUX_CONTROLLER_VERSIONS"].split(","))
    assert versions == {"source-controller": "v1.9.6", "kustomize-controller": "v1.9.6", "helm-controller": "v1.6.4"}

    with urllib.request.urlopen(devstack["FLUX_INSTALL_MANIFEST_URL"], timeout=10) as resp:
        raw = resp.read()
    assert hashlib.sha256(raw).hexdigest() == devstack["FLUX_INSTALL_MANIFEST_SHA256"]
    objects = [o for o in yaml.safe_load_all(raw) if o]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == RELEASE_CONTROLLERS, "the release's structure: a Deployment per controller"
    images = {name: d["spec"]["template"]["spec"]["containers"][0]["image"] for name, d in deployments.items()}
    assert all(image.startswith("ghcr.io/fluxcd/") for image in images.values())
    assert {name: images[name].rsplit(":", 1)[1] for name in CONTROLLERS} == versions, "the controllers that run"
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    crds = {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert {"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"} <= crds
    assert {o["metadata"].get("namespace", "flux-system") for o in objects} == {"flux-system"}


def test_a_source_is_fetched_applied_and_its_helm_release_installed_upgraded_and_pruned(
    stack_ansible_env: dict[str, str], api: client.ApiClient, bucket: object
) -> None:
    """source-controller fetches the Bucket, kustomize-controller applies its folder (waiting for health),
    helm-controller installs the chart the folder's HelmRelease names from the same source: all Ready, the
    workloads' Pods Ready on simulated nodes. A changed value is upgraded, a removed file pruned."""
    env, s3 = stack_ansible_env, bucket
    s3.put_object(Bucket=BUCKET, Key="apps/probe/app.yaml", Body=PROBE_APP.encode())
    s3.put_object(Bucket=BUCKET, Key="apps/probe/release.yaml", Body=helm_release(1).encode())
    apply(api, "Kustomization", kustomization("flux-probe", "Bucket", BUCKET, "./apps/probe"))

    started = time.monotonic()
    first = reconcile(env).assert_ok()
    assert "applied sha256:" in first.stdout
    assert _ready_replicas(api, APPS, "probe") == 2
    assert _ready_replicas(api, APPS, "ui") == 1
    assert _helm_release_ready(api)["Ready"] == "True"
    pods = client.CoreV1Api(api).list_namespaced_pod(APPS).items
    assert pods and all(p.spec.node_name.startswith("kwok-node-") for p in pods)
    print(f"first sync: {time.monotonic() - started:.1f} s")

    again = reconcile(env).assert_ok()
    assert again.total("changed") == 0, "both Ready: nothing requested"

    s3.put_object(Bucket=BUCKET, Key="apps/probe/release.yaml", Body=helm_release(2).encode())
    reconcile(env, probe_force=True).assert_ok()
    assert _ready_replicas(api, APPS, "ui") == 2, "the changed value was upgraded"

    s3.delete_object(Bucket=BUCKET, Key="apps/probe/release.yaml")
    reconcile(env, probe_force=True).assert_ok()
    group, version, plural = FLUX_GROUPS["HelmRelease"]
    deadline = time.monotonic() + 60
    while True:  # pruned: the HelmRelease is deleted, then helm-controller uninstalls its release
        names = [r["metadata"]["name"] for r in client.CustomObjectsApi(api).list_namespaced_custom_object(
            group, version, APPS, plural)["items"]]  # fmt: skip
        deployments = [d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment(APPS).items]
        if not names and deployments == ["probe"]:
            break
        assert time.monotonic() < deadline, f"not pruned: HelmReleases {names}, Deployments {deployments}"
        time.sleep(0.5)


def test_a_missing_folder_fails_the_wait_with_kustomize_controllers_message(
    stack_ansible_env: dict[str, str], api: client.ApiClient, bucket: object
) -> None:
    apply(api, "Kustomization", kustomization("flux-probe-missing", "Bucket", BUCKET, "./apps/missing"))
    result = reconcile(stack_ansible_env, probe_kustomization="flux-probe-missing")
    assert result.returncode != 0
    assert f"Kustomization {NS}/flux-probe-missing failed (kustomize-controller)" in result.output, result.output
    assert "kustomization path not found" in result.output
    assert "Fix: ./apps/missing does not exist in the revision" in result.output


def test_a_release_naming_a_missing_chart_fails_the_wait_at_once_naming_the_release(
    stack_ansible_env: dict[str, str], api: client.ApiClient, bucket: object
) -> None:
    """The Kustomization health-checks what it applied (the flux role's has wait: true): the HelmRelease's own
    failure is reported as soon as helm-controller gives it, not at the Kustomization's timeout."""
    s3 = bucket
    namespace = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-probe-bad"}})
    release = helm_release(1, "./charts/missing", "bad", "flux-probe-bad")
    s3.put_object(Bucket=BUCKET, Key="apps/bad-chart/release.yaml", Body=f"{namespace}---\n{release}".encode())
    apply(api, "Kustomization", kustomization("flux-probe-bad-chart", "Bucket", BUCKET, "./apps/bad-chart"))
    started = time.monotonic()
    result = reconcile(stack_ansible_env, probe_kustomization="flux-probe-bad-chart", probe_force=True)
    assert result.returncode != 0
    output = " ".join(result.output.split())
    assert (
        f"HelmRelease flux-probe-bad/bad (applied by Kustomization {NS}/flux-probe-bad-chart from ./apps/bad-chart)"
        " failed: " in output
    ), output
    assert f"its HelmChart {NS}/flux-probe-bad-bad (source-controller): InvalidChartReference:" in output, output
    assert "Fix: the chart ./charts/missing of HelmRelease flux-probe-bad/bad cannot be found" in output, output
    assert time.monotonic() - started < 80, "not the Kustomization's 90 s timeout"


def test_a_git_source_failure_ends_the_wait_with_source_controllers_message(
    stack_ansible_env: dict[str, str], api: client.ApiClient, sources: str
) -> None:
    """A GitRepository whose Secret has no key, then one whose host does not answer: each fails at once."""
    port = free_port()  # nothing listens there
    url = f"ssh://git@127.0.0.1:{port}/biomage-org/iac"
    key = ed25519.Ed25519PrivateKey.generate()
    identity = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(NS, {"metadata": {"name": "flux-probe-git"}, "stringData": {"username": "git"}})
    source = {"url": url, "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": "flux-probe-git"}}
    apply(api, "GitRepository", {"metadata": {"name": "flux-probe-git", "namespace": NS}, "spec": source})
    apply(
        api,
        "Kustomization",
        kustomization("flux-probe-git", "GitRepository", "flux-probe-git", "./releases/development"),
    )
    names = {"probe_source_kind": "GitRepository", "probe_source_name": "flux-probe-git"}
    try:
        no_key = reconcile(stack_ansible_env, probe_kustomization="flux-probe-git", **names)
        assert no_key.returncode != 0
        assert f"GitRepository {NS}/flux-probe-git failed (source-controller)" in no_key.output
        assert "'identity' is required" in no_key.output
        assert f"Fix: the Secret {NS}/flux-probe-git holds no usable SSH key" in no_key.output

        core.replace_namespaced_secret(
            "flux-probe-git",
            NS,
            {
                "metadata": {"name": "flux-probe-git"},
                "stringData": {"identity": identity.decode(), "known_hosts": f"[127.0.0.1]:{port} {public}\n"},
            },
        )
        started = time.monotonic()
        refused = reconcile(stack_ansible_env, probe_kustomization="flux-probe-git", **names)
        assert refused.returncode != 0
        assert "connection refused" in refused.output, refused.output
        assert f"Fix: {url} cannot be reached from the controller" in refused.output
        assert time.monotonic() - started < 60, "the failure ends the wait, not the timeout"
    finally:
        delete(api, "Kustomization", "flux-probe-git")
        delete(api, "GitRepository", "flux-probe-git")
