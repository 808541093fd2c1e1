"""GitHub's published OpenAPI description, reduced to the operations the local stand-in serves.

The description comes from the npm package ``@octokit/openapi`` at a pinned version (``npm pack``
into a machine-wide cache), and the dereferenced ``api.github.com`` document is cut down to the
operations in ``OPERATIONS`` so the stand-in starts quickly. Nothing here is written by hand: the
schemas the stand-in validates requests and responses against are GitHub's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .core import DevstackError

OCTOKIT_OPENAPI_VERSION = "23.0.2"
SPEC_MEMBER = "package/generated/api.github.com.deref.json"

# (method, path template) -> operationId: what the biomage.iac roles call
OPERATIONS: dict[tuple[str, str], str] = {
    ("get", "/repos/{owner}/{repo}"): "repos/get",
    ("get", "/orgs/{org}/repos"): "repos/list-for-org",
    ("get", "/repos/{owner}/{repo}/contents/{path}"): "repos/get-content",
    ("get", "/repos/{owner}/{repo}/keys"): "repos/list-deploy-keys",
    ("post", "/repos/{owner}/{repo}/keys"): "repos/create-deploy-key",
    ("get", "/repos/{owner}/{repo}/keys/{key_id}"): "repos/get-deploy-key",
    ("delete", "/repos/{owner}/{repo}/keys/{key_id}"): "repos/delete-deploy-key",
    ("get", "/repos/{owner}/{repo}/actions/secrets/public-key"): "actions/get-repo-public-key",
    ("get", "/repos/{owner}/{repo}/actions/secrets"): "actions/list-repo-secrets",
    ("get", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"): "actions/get-repo-secret",
    ("put", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"): "actions/create-or-update-repo-secret",
    ("delete", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"): "actions/delete-repo-secret",
    ("get", "/repos/{owner}/{repo}/actions/variables"): "actions/list-repo-variables",
    ("post", "/repos/{owner}/{repo}/actions/variables"): "actions/create-repo-variable",
    ("get", "/repos/{owner}/{repo}/actions/variables/{name}"): "actions/get-repo-variable",
    ("patch", "/repos/{owner}/{repo}/actions/variables/{name}"): "actions/update-repo-variable",
    ("delete", "/repos/{owner}/{repo}/actions/variables/{name}"): "actions/delete-repo-variable",
    # GitHub App authentication (the release step's identity)
    ("get", "/repos/{owner}/{repo}/installation"): "apps/get-repo-installation",
    ("post", "/app/installations/{installation_id}/access_tokens"): "apps/create-installation-access-token",
    # the release step writes release files
    ("put", "/repos/{owner}/{repo}/contents/{path}"): "repos/create-or-update-file-contents",
    ("delete", "/repos/{owner}/{repo}/contents/{path}"): "repos/delete-file",
    # the releases guard, required through a repository ruleset
    ("get", "/repos/{owner}/{repo}/rulesets"): "repos/get-repo-rulesets",
    ("post", "/repos/{owner}/{repo}/rulesets"): "repos/create-repo-ruleset",
    ("get", "/repos/{owner}/{repo}/rulesets/{ruleset_id}"): "repos/get-repo-ruleset",
    ("put", "/repos/{owner}/{repo}/rulesets/{ruleset_id}"): "repos/update-repo-ruleset",
}


def cache_dir() -> Path:
    base = os.environ.get("BIOMAGE_CACHE") or Path.home() / ".cache" / "biomage-iac"
    return Path(base) / "github"


def operations_key() -> str:
    """A short hash of OPERATIONS: a cached subset made for another set of operations is not reused."""
    text = json.dumps(sorted([method, template, operation] for (method, template), operation in OPERATIONS.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def subset_path(version: str = OCTOKIT_OPENAPI_VERSION) -> Path:
    return cache_dir() / f"api.github.com-{version}-{operations_key()}-subset.json"


def ensure_subset(version: str = OCTOKIT_OPENAPI_VERSION) -> Path:
    """The reduced description, built once per machine, version and set of operations."""
    target = subset_path(version)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    full = _full_description(version)
    # one temporary file per process: two test workers may build it at the same time
    target_tmp = target.with_suffix(f".{os.getpid()}.tmp")
    target_tmp.write_text(json.dumps(reduce(full, version)), encoding="utf-8")
    target_tmp.replace(target)
    return target


def _full_description(version: str) -> dict:
    npm = shutil.which("npm")
    if npm is None:
        raise DevstackError("npm is needed once to fetch GitHub's OpenAPI description. Fix: install Node.js/npm.")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [npm, "pack", f"@octokit/openapi@{version}", "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        archives = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not archives:
            raise DevstackError(f"npm pack @octokit/openapi@{version} failed: {proc.stderr.strip()[-500:]}")
        with tarfile.open(archives[0]) as tar:
            member = tar.extractfile(SPEC_MEMBER)
            if member is None:
                raise DevstackError(f"@octokit/openapi@{version} has no {SPEC_MEMBER}")
            return json.load(member)


def reduce(full: dict, version: str) -> dict:
    """Keep only the operations in OPERATIONS (already dereferenced: no $ref left to resolve)."""
    paths: dict[str, dict] = {}
    for (method, template), operation_id in OPERATIONS.items():
        operation = full["paths"][template][method]
        if operation.get("operationId") != operation_id:
            raise DevstackError(
                f"{method.upper()} {template} is {operation.get('operationId')}, expected {operation_id}"
            )
        paths.setdefault(template, {})[method] = operation
    return {
        "openapi": full["openapi"],
        "info": {**full["info"], "x-reduced-from": f"@octokit/openapi@{version}"},
        "paths": paths,
    }


def load(version: str = OCTOKIT_OPENAPI_VERSION) -> dict:
    return json.loads(ensure_subset(version).read_text(encoding="utf-8"))
