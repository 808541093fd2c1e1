# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flux's multi-tenancy lockdown (docs/tenants.md): what the controllers run with, and the account a
release's HelmRelease is installed with.

* kustomize-controller and helm-controller run with ``--default-service-account=release-deployer``:
  a Kustomization or HelmRelease without ``spec.serviceAccountName`` acts as the service account
  ``release-deployer`` of its own namespace instead of with the controller's cluster-wide rights.
  kustomize-controller also runs with ``--no-cross-namespace-refs=true`` (a Kustomization reads
  only sources of its own namespace). helm-controller does not: every release's chart comes from
  the ``flux-system/flux-system`` GitRepository (docs/tenants.md, "Not done yet").
  :func:`lock_down` sets these arguments on the manager containers of the install manifest's two
  Deployments (the flux role, in every environment, through the ``biomage.iac.flux_lockdown``
  filter); the local stack runs its controller processes with :func:`controller_flags`.
* Each release namespace ``<app>-<ref>`` holds that account, bound to the platform's ClusterRole
  ``biomage-release-deployer`` (the kinds ``charts/nodejs`` renders, plus the Secrets Helm keeps its
  release history in): :func:`deployer_objects`, which the release step adds to every release file it
  writes and the release checker compares with what a file holds.
"""

from __future__ import annotations

import copy

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

# helm-controller's (and kustomize-controller's) default service account, in each release namespace
DEFAULT_SERVICE_ACCOUNT = "release-deployer"
# the RoleBinding in each release namespace, and the platform-owned ClusterRole it binds
DEPLOYER_BINDING = "release-deployer"
DEPLOYER_CLUSTER_ROLE = "biomage-release-deployer"
RBAC_GROUP = "rbac.authorization.k8s.io"
# the container of a Flux controller's Deployment that runs the controller
MANAGER = "manager"
KUSTOMIZE_CONTROLLER, HELM_CONTROLLER = "kustomize-controller", "helm-controller"
LOCKED_DOWN = (KUSTOMIZE_CONTROLLER, HELM_CONTROLLER)


class LockdownError(BiomageError):
    """The install manifest cannot be locked down as docs/tenants.md describes."""


def controller_flags(controller, service_account=DEFAULT_SERVICE_ACCOUNT):
    """``[(flag, value, is_bool)]`` of the lockdown for one controller (no flags for the others)."""
    flags = {
        KUSTOMIZE_CONTROLLER: [
            ("--default-service-account", service_account, False),
            ("--no-cross-namespace-refs", "true", True),
        ],
        HELM_CONTROLLER: [("--default-service-account", service_account, False)],
    }
    return flags.get(controller, [])


def controller_args(controller, service_account=DEFAULT_SERVICE_ACCOUNT):
    """The lockdown's arguments of one controller, as ``--flag=value`` strings."""
    return [f"{flag}={value}" for flag, value, _is_bool in controller_flags(controller, service_account)]


def set_args(args, flags):
    """``args`` with each flag of ``flags`` (``[(flag, value, is_bool)]``) set to its value: an occurrence
    already there (``--flag=x``, ``--flag x`` for a flag that takes a value, a bare ``--flag`` for a bool)
    is replaced where it stands, further occurrences are dropped, a missing flag is appended."""
    result = list(args or [])
    for flag, value, is_bool in flags:
        wanted = f"{flag}={value}"
        kept, placed, index = [], False, 0
        while index < len(result):
            arg = str(result[index])
            step = 1
            if arg == flag or arg.startswith(flag + "="):
                if arg == flag and not is_bool and index + 1 < len(result):
                    step = 2  # "--flag value": pflag reads the next argument as the value
                if not placed:
                    kept.append(wanted)
                    placed = True
                index += step
                continue
            kept.append(result[index])
            index += 1
        if not placed:
            kept.append(wanted)
        result = kept
    return result


def _deployment(objects, name):
    for obj in objects:
        if (
            isinstance(obj, dict)
            and obj.get("kind") == "Deployment"
            and (obj.get("metadata") or {}).get("name") == name
        ):
            return obj
    return None


def lock_down(objects, service_account=DEFAULT_SERVICE_ACCOUNT, source="the install manifest"):
    """A copy of the install manifest's ``objects`` whose kustomize-controller and helm-controller
    Deployments run with the lockdown's arguments (:func:`controller_flags`). Idempotent: arguments
    already present are replaced, never duplicated. A manifest without those Deployments, or whose
    Deployment has no ``manager`` container, is refused with the fix."""
    if not isinstance(objects, list):
        raise LockdownError(
            f"{source} is not a list of objects ({type(objects).__name__}).",
            fix="give the objects of Flux's install.yaml (from_yaml_all)",
        )
    if not isinstance(service_account, str) or not service_account:
        raise LockdownError(
            f"the default service account {service_account!r} is not a name.",
            fix=f"leave it at {DEFAULT_SERVICE_ACCOUNT} (the release step creates that account in each namespace)",
        )
    result = copy.deepcopy(objects)
    missing = [name for name in LOCKED_DOWN if _deployment(result, name) is None]
    if missing:
        raise LockdownError(
            f"{source} has no Deployment {' or '.join(missing)}: the multi-tenancy lockdown "
            "(--default-service-account, --no-cross-namespace-refs) cannot be set, and Flux would apply releases "
            "with a controller's cluster-wide rights. Nothing was applied.",
            fix="check flux_install_manifest_url: it must be a Flux release's install.yaml, with the controllers of "
            "flux_required_controllers (docs/tenants.md)",
            missing=missing,
        )
    for name in LOCKED_DOWN:
        deployment = _deployment(result, name)
        containers = (
            (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
        ) or []
        manager = next((c for c in containers if isinstance(c, dict) and c.get("name") == MANAGER), None)
        if manager is None:
            names = ", ".join(str(c.get("name")) for c in containers if isinstance(c, dict)) or "none"
            raise LockdownError(
                f"the Deployment {name} of {source} has no container {MANAGER!r} (it has: {names}): the "
                "multi-tenancy lockdown cannot be set on it. Nothing was applied.",
                fix="check flux_install_manifest_url: every Flux controller's Deployment runs a container named "
                "manager",
            )
        manager["args"] = set_args(manager.get("args"), controller_flags(name, service_account))
    return result


def deployer_objects(namespace, service_account=DEFAULT_SERVICE_ACCOUNT):
    """The ServiceAccount helm-controller installs a release of ``namespace`` as, and its RoleBinding to the
    platform's ClusterRole ``biomage-release-deployer``: what a release file holds besides its Namespace
    and HelmRelease."""
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account, "namespace": namespace},
        # helm-controller impersonates the account; no Pod needs its token
        "automountServiceAccountToken": False,
    }
    binding = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": DEPLOYER_BINDING, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": DEPLOYER_CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }
    return [account, binding]


def with_deployer(documents):
    """The documents of a release file followed by :func:`deployer_objects` of each namespace that holds a
    HelmRelease (at the end, so the file's own documents keep their numbers). The account and binding of such
    a namespace already in the file are replaced, so the result is the same however often it is applied."""
    namespaces = []
    for doc in documents:
        namespace = _namespace_of(doc) if _kind(doc) == "HelmRelease" else None
        if isinstance(namespace, str) and namespace and namespace not in namespaces:
            namespaces.append(namespace)
    kept = [doc for doc in documents if not (is_deployer_object(doc) and _namespace_of(doc) in namespaces)]
    return kept + [obj for namespace in namespaces for obj in deployer_objects(namespace)]


def is_deployer_object(doc):
    """True for a ServiceAccount release-deployer or a RoleBinding release-deployer (any namespace)."""
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
    return (_kind(doc), name) in (("ServiceAccount", DEFAULT_SERVICE_ACCOUNT), ("RoleBinding", DEPLOYER_BINDING))


def _kind(doc):
    return doc.get("kind") if isinstance(doc, dict) else None


def _namespace_of(doc):
    return (doc.get("metadata") or {}).get("namespace") if isinstance(doc, dict) else None
