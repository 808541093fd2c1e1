"""Copies of the local stack's admin kubeconfig that point elsewhere or authenticate as someone else."""

from __future__ import annotations

import json
from pathlib import Path

from devstack import free_port


def variant(source: str | Path, path: Path, server: str | None = None, **user: str) -> Path:
    """Write ``source`` (the stack's JSON kubeconfig) to ``path`` with another ``server`` and/or ``user`` fields."""
    kubeconfig = json.loads(Path(source).read_text())
    if server is not None:
        kubeconfig["clusters"][0]["cluster"]["server"] = server
    kubeconfig["users"][0]["user"].update(user)
    path.write_text(json.dumps(kubeconfig))
    return path


def dead(source: str | Path, path: Path) -> Path:
    """A copy pointing at a closed loopback port: an API server that does not answer."""
    return variant(source, path, server=f"https://127.0.0.1:{free_port()}")


def standalone(path: Path, **servers: str) -> Path:
    """A kubeconfig of its own (no stack): one context per ``name=server``, the first one current."""
    names = list(servers)
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}} for name, server in servers.items()],
        "users": [{"name": "tester", "user": {"token": "unit-test-token"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "tester"}} for name in names],
        "current-context": names[0],
    }
    path.write_text(json.dumps(kubeconfig))
    return path
