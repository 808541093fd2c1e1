# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One Kubernetes Secret, read and written whole with the kubernetes Python client's ``ApiClient``.

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
    request_json,
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
    """Reads and writes one Secret with the kubernetes Python client (plain requests: ``CoreV1Api`` would import
    every model of the core API first)."""

    def __init__(self, namespace, name, kubeconfig=None, context=None, timeout=30):
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        self._api = api_client(kubeconfig, context)

    @property
    def _path(self):
        return f"/api/v1/namespaces/{self.namespace}/secrets"

    @property
    def where(self):
        return f"Secret {self.namespace}/{self.name}"

    def read(self):
        try:
            secret = request_json(self._api, "GET", f"{self._path}/{self.name}", timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error("read", exc) from None
        except Exception as exc:  # connection refused, TLS ...
            raise self._unreachable(exc) from None
        data = {}
        metadata = secret.get("metadata") or {}
        for key, value in (secret.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(value).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                data[key] = ""  # not text: certainly not a usable identity or known_hosts
        return StoredSecret(
            data=data,
            resource_version=metadata.get("resourceVersion"),
            secret_type=secret.get("type") or "Opaque",
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )

    def namespace_exists(self):
        """Whether the Secret's namespace exists: objects in a namespace still to be created cannot be dry-run, so
        a check run plans them in words instead (the flux role)."""
        try:
            request_json(self._api, "GET", f"/api/v1/namespaces/{self.namespace}", timeout=self.timeout)
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
        query = {"dryRun": "All"} if dry_run else None
        try:
            if existing is None:
                request_json(self._api, "POST", self._path, body, query, timeout=self.timeout)
            else:
                request_json(self._api, "PUT", f"{self._path}/{self.name}", body, query, timeout=self.timeout)
        except ApiException as exc:
            raise self._error("create" if existing is None else "replace", exc, dry_run) from None
        except Exception as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc):
        what = describe_failure(self._api, exc)
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
