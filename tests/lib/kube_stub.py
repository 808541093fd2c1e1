"""A tiny stand-in Kubernetes API server on loopback for the tests (plain HTTP, bearer token).

It answers the few requests the collection makes outside the real local API server: ``/version``,
``/.well-known/openid-configuration``, listing Services in all namespaces and deleting one (the
Service disappears after ``delete_delay`` further list calls, as it does while a cloud controller
removes its load balancer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

TOKEN = "stub-token-never-a-secret"
ISSUER = "https://kubernetes.default.svc.cluster.local"
VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.4",
    "gitCommit": "9ae3b1d2c5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0",
    "gitTreeState": "clean",
    "buildDate": "2025-11-12T09:05:11Z",
    "goVersion": "go1.24.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def service(namespace: str, name: str, kind: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "resourceVersion": "1"},
        "spec": {"type": kind, "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}]},
        "status": {"loadBalancer": {}},
    }


class KubeStub:
    def __init__(self, publish_issuer: bool = True, delete_delay: int = 1) -> None:
        self.services: dict[tuple[str, str], dict] = {}
        self.deleting: dict[tuple[str, str], int] = {}
        self.requests: list[tuple[str, str]] = []
        self.publish_issuer = publish_issuer
        self.delete_delay = delete_delay
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                    "users": [{"name": "stub", "user": {"token": TOKEN}}],
                    "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
                    "current-context": "stub",
                }
            )
        )
        return path

    def add_service(self, namespace: str, name: str, kind: str = "ClusterIP") -> None:
        self.services[(namespace, name)] = service(namespace, name, kind)

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, method: str, path: str, authorized: bool) -> tuple[int, dict]:
        self.requests.append((method, path))
        if not authorized:
            return 401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401}
        if method == "GET" and path.rstrip("/") == "/version":
            return 200, VERSION
        if method == "GET" and path == "/.well-known/openid-configuration":
            if not self.publish_issuer:
                return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            return 200, {
                "issuer": ISSUER,
                "jwks_uri": "https://127.0.0.1:6443/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if method == "GET" and path.split("?", maxsplit=1)[0] == "/api/v1/services":
            for key in list(self.deleting):
                self.deleting[key] -= 1
                if self.deleting[key] < 0:
                    del self.deleting[key]
                    self.services.pop(key, None)
            items = [self.services[k] for k in sorted(self.services)]
            return 200, {
                "kind": "ServiceList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "7"},
                "items": items,
            }
        parts = path.split("?", maxsplit=1)[0].strip("/").split("/")
        if (
            method == "DELETE"
            and len(parts) == 6
            and parts[:3] == ["api", "v1", "namespaces"]
            and parts[4] == "services"
        ):
            key = (parts[3], parts[5])
            if key not in self.services:
                return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            self.deleting[key] = self.delete_delay
            deleted = dict(self.services[key], kind="Service", apiVersion="v1")
            deleted["metadata"] = dict(deleted["metadata"], deletionTimestamp="2025-09-30T10:20:00Z")
            return 200, deleted
        return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}

    @contextmanager
    def running(self) -> Iterator[KubeStub]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                code, body = stub.handle(self.command, self.path, authorized)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_DELETE = _reply

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
