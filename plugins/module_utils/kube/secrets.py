# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One Kubernetes Secret, read and written whole with the kubernetes Python client.

Values are decoded on read and encoded on write; a replace carries the Secret's type, labels and
annotations over and is optimistic (its ``resourceVersion``), and a write can be a server-side dry
run. Errors are :class:`~.client.KubeError` carrying only the API server's status message, never
the request (it holds the Secret's data).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from ansible_collections.biomage.iac.plugins.module_utils.kube.client import (
    ApiException,
    KubeError,
    api_client,
    describe_failure,
    k8s_client,
)


@dataclass
class StoredSecret:
    """A Secret as read: decoded data, plus what a replace must carry over."""

    data: dict
    resource_version: str | None = None
    secret_type: str = "Opaque"  # noqa: S105 - the Secret type, not a password
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)

    def __repr__(self):  # never print key material
        return f"StoredSecret(keys={sorted(self.data)}, resource_version={self.resource_version})"


class KubernetesSecretStore:
    """Reads and writes one Secret with the kubernetes Python client."""

    def __init__(self, namespace, name, kubeconfig=None, context=None, timeout=30):
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        self._core = k8s_client.CoreV1Api(api_client(kubeconfig, context))

    @property
    def where(self):
        return f"Secret {self.namespace}/{self.name}"

    def read(self):
        try:
            secret = self._core.read_namespaced_secret(self.name, self.namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error("read", exc) from None
        except Exception as exc:  # connection refused, TLS ...
            raise self._unreachable(exc) from None
        data = {}
        for key, value in (secret.data or {}).items():
            try:
                data[key] = base64.b64decode(value).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                data[key] = ""  # not text: certainly not a usable identity or known_hosts
        return StoredSecret(
            data=data,
            resource_version=secret.metadata.resource_version,
            secret_type=secret.type or "Opaque",
            labels=dict(secret.metadata.labels or {}),
            annotations=dict(secret.metadata.annotations or {}),
        )

    def namespace_exists(self):
        """Whether the Secret's namespace exists: objects in a namespace still to be created cannot be dry-run, so
        a check run plans them in words instead (the flux role)."""
        try:
            self._core.read_namespace(self.namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise KubeError(
                f"cannot read the namespace {self.namespace}: {exc.status} {exc.reason}. Fix: the identity in the "
                "kubeconfig needs get on namespaces.",
                status=exc.status,
            ) from None
        except Exception as exc:  # connection refused, TLS ...
            raise self._unreachable(exc) from None
        return True

    def write(self, data, existing, dry_run=False):
        """Create the Secret (``existing`` None) or replace it (optimistic: its resourceVersion)."""
        metadata = {"name": self.name, "namespace": self.namespace}
        if existing is None:
            metadata["labels"] = {"app.kubernetes.io/managed-by": "biomage.iac"}
        else:
            metadata.update(labels=existing.labels, annotations=existing.annotations)
            metadata["resourceVersion"] = existing.resource_version
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": existing.secret_type if existing else "Opaque",
            "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
        }
        kwargs = {"_request_timeout": self.timeout}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:
            if existing is None:
                self._core.create_namespaced_secret(self.namespace, body, **kwargs)
            else:
                self._core.replace_namespaced_secret(self.name, self.namespace, body, **kwargs)
        except ApiException as exc:
            raise self._error("create" if existing is None else "replace", exc, dry_run) from None
        except Exception as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc):
        what = describe_failure(getattr(self._core, "api_client", None), exc)
        return KubeError(f"{what}. Fix: check the kubeconfig and that the cluster is up.")

    def _error(self, verb, exc, dry_run=False):
        # only the API's status message: never the request (it carries the Secret's data)
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except (TypeError, ValueError):
            message = exc.reason
        hint = {
            401: "the kubeconfig's credentials are not accepted: refresh them",
            403: f"the identity in the kubeconfig needs get, create and update on secrets in {self.namespace}",
            404: f"the namespace {self.namespace} does not exist: create it first (the flux role does)",
            409: f"the {self.where} was changed by someone else meanwhile: re-run",
            422: "the Secret was refused as invalid",
        }.get(exc.status, "check the API server's message")
        trial = " (dry run)" if dry_run else ""
        return KubeError(
            f"cannot {verb} the {self.where}{trial}: {exc.status} {message}. Fix: {hint}.", status=exc.status
        )
