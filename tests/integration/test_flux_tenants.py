"""Tenants through the API server (docs/tenants.md): the flux role makes the releases' Kustomization
impersonate flux-releases, whose RBAC covers only the kinds a release file holds and whose admission
policy keeps each service's HelmReleases in that service's namespaces. The test acts as Flux does:
impersonating the service account with the stack's admin credentials."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.test_flux_role import KUSTOMIZATION, get_object, run
from tests.lib.releases import filled_release

pytestmark = pytest.mark.slow
ACCOUNT = "system:serviceaccount:flux-system:flux-releases"
HELM = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")


def as_flux_releases(api: client.ApiClient) -> client.ApiClient:
    impersonating = client.ApiClient(copy.deepcopy(api.configuration))
    impersonating.set_default_header("Impersonate-User", ACCOUNT)
    return impersonating


def create_release(api: client.ApiClient, namespace: str, release_name: str = "ui") -> None:
    _ns, release = filled_release("development")
    release["metadata"].update(name=f"{release_name}-tenant-test", namespace=namespace)
    release["spec"]["releaseName"] = release_name
    client.CustomObjectsApi(api).create_namespaced_custom_object(*HELM[:2], namespace, HELM[2], release)


def ensure_namespace(api: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        assert exc.status == 409, exc.body


def refused(call, *args) -> str:
    deadline = time.monotonic() + 30
    while True:  # an admission policy takes effect shortly after it is created
        try:
            call(*args)
        except ApiException as exc:
            return f"{exc.status} {exc.body}"
        assert time.monotonic() < deadline, f"{call.__name__}{args} was accepted"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def converged(kube_api: client.ApiClient, stack_ansible_env: dict[str, str]) -> client.ApiClient:
    run(stack_ansible_env).assert_ok()
    again = run(stack_ansible_env).assert_ok()
    assert again.total("changed") == 0, again.stdout[-4000:]
    return kube_api


def test_the_kustomization_impersonates_the_tenant_account(converged: client.ApiClient) -> None:
    assert get_object(converged, KUSTOMIZATION)["spec"]["serviceAccountName"] == "flux-releases"


def test_a_ui_release_in_an_api_namespace_is_refused_by_the_api_server(converged: client.ApiClient) -> None:
    tenant = as_flux_releases(converged)
    ensure_namespace(tenant, "api-tenant-test")
    message = refused(create_release, tenant, "api-tenant-test", "ui")
    assert "HelmRelease ui-tenant-test of service ui may not live in namespace api-tenant-test" in message
    assert "RBAC tenant policy biomage-release-tenants" in message
    # its own service's namespace is fine
    ensure_namespace(tenant, "ui-tenant-test")
    create_release(tenant, "ui-tenant-test", "ui")


def test_the_tenant_account_cannot_leave_the_release_kinds_or_namespaces(converged: client.ApiClient) -> None:
    tenant = as_flux_releases(converged)
    message = refused(client.CoreV1Api(tenant).create_namespace, {"metadata": {"name": "kube-tenant-test"}})
    assert "not a namespace of a service" in message
    forbidden = refused(
        client.RbacAuthorizationV1Api(tenant).create_cluster_role_binding,
        {
            "metadata": {"name": "tenant-test-escalation"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "flux-releases", "namespace": "flux-system"}],
        },
    )
    assert forbidden.startswith("403")
    secret = refused(client.CoreV1Api(tenant).list_namespaced_secret, "flux-system")
    assert secret.startswith("403")


# -- Flux's multi-tenancy lockdown ---------------------------------------------------------------------------------
DEPLOYER = "release-deployer"
LOCKED_DOWN = {
    "kustomize-controller": ["--default-service-account=release-deployer", "--no-cross-namespace-refs=true"],
    "helm-controller": ["--default-service-account=release-deployer"],
}


def test_the_controllers_run_locked_down(converged: client.ApiClient, stack_ansible_env: dict[str, str]) -> None:
    """The role's Deployments (applied from the install manifest) and the stack's controller processes run with
    the same lockdown arguments."""
    apps = client.AppsV1Api(converged)
    state = Path(stack_ansible_env["BIOMAGE_DEVSTACK_DIR"])
    for name, wanted in LOCKED_DOWN.items():
        (manager,) = [
            c for c in apps.read_namespaced_deployment(name, "flux-system").spec.template.spec.containers
            if c.name == "manager"
        ]  # fmt: skip
        flags = {w.split("=", maxsplit=1)[0] for w in wanted}
        assert [a for a in manager.args if a.split("=", maxsplit=1)[0] in flags] == wanted, manager.args
        pid = (state / f"flux-{name}.pid").read_text(encoding="utf-8").strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert all(arg in argv for arg in wanted), argv
    (source,) = apps.read_namespaced_deployment("source-controller", "flux-system").spec.template.spec.containers
    assert not any(a.startswith("--default-service-account") for a in source.args), "only the two controllers"


def test_the_tenant_account_creates_only_the_deployer_account_and_binding(converged: client.ApiClient) -> None:
    tenant = as_flux_releases(converged)
    namespace = "worker-tenant-test"
    ensure_namespace(tenant, namespace)
    core, rbac = client.CoreV1Api(tenant), client.RbacAuthorizationV1Api(tenant)

    def binding(role: str = "biomage-release-deployer", subject: str = DEPLOYER, kind: str = "ClusterRole") -> dict:
        return {
            "metadata": {"name": DEPLOYER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": namespace}],
        }

    try:
        other = refused(core.create_namespaced_service_account, namespace, {"metadata": {"name": "other"}})
        assert "a release file holds only the ServiceAccount release-deployer" in other, other
        escalation = refused(rbac.create_namespaced_role_binding, namespace, binding("cluster-admin"))
        assert escalation.startswith("403") and "attempting to grant RBAC permissions not currently held" in escalation
        # RBAC alone would let it bind a role whose rights it holds (its own): the admission policy does not
        own_role = refused(rbac.create_namespaced_role_binding, namespace, binding("biomage-flux-releases"))
        assert "RBAC tenant policy biomage-release-tenants" in own_role and "RoleBinding release-deployer" in own_role
        other_subject = refused(rbac.create_namespaced_role_binding, namespace, binding(subject="default"))
        assert "to the ServiceAccount release-deployer of its own namespace" in other_subject, other_subject
        # what a release file holds is accepted
        core.create_namespaced_service_account(namespace, {"metadata": {"name": DEPLOYER}})
        rbac.create_namespaced_role_binding(namespace, binding())
        assert refused(core.delete_namespaced_service_account, "default", namespace).startswith("403")
    finally:
        client.CoreV1Api(converged).delete_namespace(namespace)


def test_a_release_may_not_read_another_namespaces_source(converged: client.ApiClient) -> None:
    """helm-controller runs without --no-cross-namespace-refs: the admission policy keeps a release's chart to
    its own namespace's sources and this repository's GitRepository."""
    tenant = as_flux_releases(converged)
    ensure_namespace(tenant, "ui-tenant-test")
    _ns, release = filled_release("development")
    release["metadata"].update(name="ui-foreign-source", namespace="ui-tenant-test")
    release["spec"]["chart"]["spec"]["sourceRef"] = {"kind": "HelmRepository", "name": "x", "namespace": "api-x"}
    custom = client.CustomObjectsApi(tenant)
    message = refused(custom.create_namespaced_custom_object, *HELM[:2], "ui-tenant-test", HELM[2], release)
    assert (
        "HelmRelease ui-foreign-source in namespace ui-tenant-test: the chart of a release comes from a source"
        in message
    )
    assert "RBAC tenant policy biomage-release-tenants" in message
