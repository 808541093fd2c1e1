# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes of a Kubernetes API server, and the clean-up before a cluster is deleted.

* :func:`cluster_info` checks that an API server answers (``/version``) and reads its service
  account issuer from ``/.well-known/openid-configuration`` when the server publishes it.
* :func:`delete_load_balancer_services` removes every Service of type LoadBalancer and waits until
  they are gone (the cloud controller deletes their load balancers first), so that deleting a
  cluster's VPC is not blocked by load balancers Kubernetes created.
"""

from __future__ import annotations

import time

from ansible_collections.biomage.iac.plugins.module_utils.kube.client import (
    ApiException,
    KubeError,
    api_client,
    first_line,
    k8s_client,
    request_json,
)


def cluster_info(kubeconfig, context=None, timeout=10):
    """``{endpoint, version, oidc_issuer}`` of the API server a kubeconfig points to."""
    api = api_client(kubeconfig, context)
    endpoint = api.configuration.host
    try:
        version = request_json(api, "GET", "/version", timeout=timeout)
    except Exception as exc:  # connection refused, TLS, 401/403 ...
        raise KubeError(
            f"the Kubernetes API server at {endpoint} (kubeconfig {kubeconfig or '(default)'}) does not answer: "
            f"{first_line(exc)}. Fix: start it (development: `make dev-up`) or check the kubeconfig's credentials.",
            kind="failed",
        ) from exc
    issuer = None
    try:
        discovery = request_json(api, "GET", "/.well-known/openid-configuration", timeout=timeout)
        if isinstance(discovery, dict):
            issuer = discovery.get("issuer")
    except ApiException:
        issuer = None  # not published (or not readable): the issuer stays unknown
    return {"endpoint": endpoint, "version": version.get("gitVersion"), "oidc_issuer": issuer}


def delete_load_balancer_services(kubeconfig, timeout=900, poll_interval=10, sleep=time.sleep, clock=time.monotonic):
    """Delete all Services of type LoadBalancer and wait until they are gone; return ``namespace/name`` list."""
    core = k8s_client.CoreV1Api(api_client(kubeconfig))
    try:
        names = sorted(_load_balancer_services(core))
        for name in names:
            namespace, _sep, service = name.partition("/")
            try:
                core.delete_namespaced_service(service, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        _wait_gone(core, names, timeout, poll_interval, sleep, clock)
    except ApiException as exc:
        raise KubeError(
            f"cannot delete the cluster's LoadBalancer Services: {first_line(exc)}. Fix: check the access of the "
            "identity running this (it needs to list and delete Services), then re-run.",
            kind="failed",
        ) from exc
    return names


def _load_balancer_services(core):
    return {
        f"{s.metadata.namespace}/{s.metadata.name}"
        for s in core.list_service_for_all_namespaces().items
        if s.spec.type == "LoadBalancer"
    }


def _wait_gone(core, names, timeout, poll_interval, sleep, clock):
    """Wait until none of the Services ``names`` exists (the cloud controller deletes their load balancers first)."""
    deadline = clock() + timeout
    remaining = list(names)
    while remaining:
        current = _load_balancer_services(core)
        remaining = [name for name in remaining if name in current]
        if not remaining:
            return
        if clock() >= deadline:
            raise KubeError(
                f"LoadBalancer Services {', '.join(remaining)} were still being deleted after {timeout}s (their load "
                "balancers block the VPC's deletion); the cluster was not deleted. Fix: check the load balancers "
                "and the Services' finalizers, then re-run.",
                kind="failed",
            )
        sleep(poll_interval)
