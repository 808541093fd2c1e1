"""Talking to the local stack's GitHub stand-in: its REST API (GitHub's and its ``/_standin/`` test
endpoints) and git over SSH with a deploy key, as OpenSSH's ``git`` does."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

OWNER = "biomage-org"


def call(
    env: dict[str, str],
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "file",  # "file": read the stack's token file
) -> tuple[int, Any]:
    """``(status, decoded JSON or None)`` of one request to the stand-in's API."""
    headers = {"Accept": "application/vnd.github+json", "Content-Type": "application/json"}
    if token == "file":
        token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(env["GITHUB_API_URL"] + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def commit_files(
    env: dict[str, str], files: dict[str, str | None], repo: str = "iac", message: str = "test commit"
) -> str:
    """Commit ``files`` (path: content, None deletes) on ``main`` of the stand-in's ``repo``; the
    new commit's sha (what Flux reports as ``main@sha1:<sha>``)."""
    status, body = call(env, "POST", f"/_standin/commits/{OWNER}/{repo}", {"files": files, "message": message})
    assert status == 201, body
    return body["commit"]


def new_ssh_key(directory: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    """A fresh key pair in OpenSSH format: ``(private key file, public key line)``."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True, capture_output=True
    )
    return path, path.with_suffix(".pub").read_text().strip()


def add_deploy_key(env: dict[str, str], public_key: str, title: str, repo: str = "iac", read_only: bool = True) -> int:
    """Register ``public_key`` as a deploy key of ``repo`` through GitHub's REST endpoint; its id."""
    body = {"title": title, "key": public_key, "read_only": read_only}
    status, created = call(env, "POST", f"/repos/{OWNER}/{repo}/keys", body)
    assert status == 201, created
    return created["id"]


def ssh_url(env: dict[str, str], repo: str = "iac") -> str:
    return f"{env['GITHUB_SSH_URL']}/{OWNER}/{repo}.git"


def ssh_argv(env: dict[str, str], key: Path, known_hosts: str | Path | None = None) -> list[str]:
    """OpenSSH towards the stand-in with only ``key``, checking its host key strictly against the
    published ``known_hosts`` (or the given file), no user or system configuration."""
    port = env["GITHUB_SSH_URL"].rsplit(":", 1)[1]
    return [
        "ssh", "-F", "/dev/null", "-i", str(key), "-p", port,
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts or env['GITHUB_SSH_KNOWN_HOSTS_FILE']}",
        "-o", "GlobalKnownHostsFile=/dev/null",
    ]  # fmt: skip


def git(
    env: dict[str, str], key: Path, *args: str, cwd: Path | None = None, known_hosts: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``git args...`` whose SSH connections use ``ssh_argv``; never raises on a git failure."""
    git_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd or key.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_SSH_COMMAND": shlex.join(ssh_argv(env, key, known_hosts)),
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@biomage.test",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@biomage.test",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=git_env, capture_output=True, text=True, check=False, timeout=60)
