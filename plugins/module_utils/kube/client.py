# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections to a Kubernetes API server: the one import of the kubernetes Python client, the one
factory of its ``ApiClient`` (from a kubeconfig and a context), the kubeconfig options the modules
share (doc fragment ``biomage.iac.kubeconfig``) and :class:`KubeError`, what the kube/ room raises.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import env_fallback
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the modules
    k8s_client = None
    k8s_config = None
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        """Stand-in so that except clauses work without the client (never raised)."""


__all__ = [
    "HAS_KUBERNETES",
    "KUBECONFIG_ARGUMENT_SPEC",
    "KUBERNETES_IMPORT_ERROR",
    "ApiException",
    "KubeError",
    "api_client",
    "first_line",
    "k8s_client",
]

# The cluster a module talks to (doc fragment biomage.iac.kubeconfig).
KUBECONFIG_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str"},
}


class KubeError(BiomageError):
    """A Kubernetes API server cannot be reached, or refused a request; worded for the operator.

    ``kind`` is ``invalid`` (no client library, an unusable kubeconfig: nothing was called) or
    ``failed`` (the API server did not answer, or answered with an error).
    """

    def __init__(self, message, fix=None, kind="failed", **details):
        super().__init__(message, fix, **details)
        self.kind = kind


def api_client(kubeconfig=None, context=None):
    """An ``ApiClient`` for ``context`` (None: the current one) of ``kubeconfig`` (None: the client's default)."""
    if not HAS_KUBERNETES:
        raise KubeError("the kubernetes Python client is required. Fix: pip install kubernetes.", kind="invalid")
    try:
        return k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the client raises several unrelated types for a bad kubeconfig
        raise KubeError(
            f"cannot load the kubeconfig {kubeconfig or '(default)'}: {exc}. Fix: point kubeconfig to a valid file "
            "(in development: run `make dev-up` so that the stack writes one).",
            kind="invalid",
        ) from exc


def first_line(exc):
    """The first line of an exception's text (at most 300 characters), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
