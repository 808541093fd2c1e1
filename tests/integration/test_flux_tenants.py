"""Tenants through the API server (docs/tenants.md): the flux role makes the releases' Kustomization
impersonate flux-releases, whose RBAC covers only the kinds a release file holds and whose admission
policy keeps each service's HelmReleases in that service's namespaces. The test acts as Flux does:
impersonating the service account with the stack's admin credentials."""

from __future__ import annotations

import copy
import time

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
