# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections to a Kubernetes API server: the one import of the kubernetes Python client, the one
factory of its ``ApiClient`` (from a kubeconfig and a context), the kubeconfig options the modules
share (doc fragment ``biomage.iac.kubeconfig``) and :class:`KubeError`, what the kube/ room raises.
"""

from __future__ import annotations

import json
import traceback

from ansible.module_utils.basic import env_fallback
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from urllib3.util.retry import Retry

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
    "DEFAULT_REQUEST_TIMEOUT",
    "HAS_KUBERNETES",
    "KUBECONFIG_ARGUMENT_SPEC",
    "KUBERNETES_IMPORT_ERROR",
    "ApiException",
    "KubeError",
    "api_client",
    "describe_failure",
    "first_line",
    "k8s_client",
    "request_json",
]

# (connect, read) seconds of a Kubernetes API request that sets none (docs/timeouts.md)
DEFAULT_REQUEST_TIMEOUT = (5, 20)

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


def api_client(kubeconfig=None, context=None, timeout=None):
    """An ``ApiClient`` for ``context`` (None: the current one) of ``kubeconfig`` (None: the client's default).

    Requests that give no ``_request_timeout`` wait ``timeout`` (default :data:`DEFAULT_REQUEST_TIMEOUT`:
    (connect, read) seconds); reads are not retried.
    """
    if not HAS_KUBERNETES:
        raise KubeError("the kubernetes Python client is required. Fix: pip install kubernetes.", kind="invalid")
    try:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        # one connect retry, no read retry: urllib3's default (3 retries of every read) turned one silent
        # API server into minutes of waiting; the calls' own timeouts apply once (docs/timeouts.md)
        configuration.retries = Retry(total=1, connect=1, read=0, status=0, redirect=0, raise_on_status=False)
        api = k8s_client.ApiClient(configuration=configuration)
    except Exception as exc:  # the client raises several unrelated types for a bad kubeconfig
        raise KubeError(
            f"cannot load the kubeconfig {kubeconfig or '(default)'}: {exc}. Fix: point kubeconfig to a valid file "
            "(in development: run `make dev-up` so that the stack writes one).",
            kind="invalid",
        ) from exc
    _default_request_timeout(api, timeout or DEFAULT_REQUEST_TIMEOUT)
    return api


def request_json(api, method, path, body=None, query=None, timeout=None):
    """One request to ``path`` with the client's authentication; the answer's JSON (a dict).

    For the few core calls the modules make: the typed APIs (``CoreV1Api`` imports every model it names, about
    0.6 s of each module run) are not imported. Raises :class:`ApiException` (``status``, ``reason``, ``body``)
    for an error status, with either generation of the client."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    query = list((query or {}).items())
    if hasattr(api, "param_serialize"):  # kubernetes >= 33: openapi-generator 7
        method, url, headers, body, post = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(
            method, url, header_params=headers, body=body, post_params=post, _request_timeout=timeout
        )
        data = response.read()
        if response.status >= 400:
            raise ApiException(status=response.status, reason=response.reason, body=data.decode("utf-8", "replace"))
        return json.loads(data) if data else {}
    return api.call_api(
        path,
        method,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        response_type="object",
        _return_http_data_only=True,
        _request_timeout=timeout,
    )


def _default_request_timeout(api, timeout):
    """Every request of ``api`` without its own ``_request_timeout`` gets ``timeout`` (connect, read)."""
    rest = api.rest_client  # both generations of the client pass _request_timeout by keyword here
    request = rest.request

    def request_with_timeout(*args, **kwargs):
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = timeout
        return request(*args, **kwargs)

    rest.request = request_with_timeout


def describe_failure(api, exc):
    """A request that failed without an answer, naming the API server (for messages)."""
    host = getattr(getattr(api, "configuration", None), "host", "?")
    if _is_timeout(exc):
        return f"the Kubernetes API server at {host} did not answer in time ({first_line(exc)})"
    return f"the Kubernetes API server at {host} does not answer ({first_line(exc)})"


def _is_timeout(exc):
    while exc is not None:
        if isinstance(exc, TimeoutError) or type(exc).__name__ in ("ReadTimeoutError", "ConnectTimeoutError"):
            return True
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return False


def first_line(exc):
    """The first line of an exception's text (at most 300 characters), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
