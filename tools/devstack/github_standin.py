"""A local stand-in for the few GitHub REST endpoints biomage.iac calls, checked against GitHub's
published OpenAPI description (see github_spec.py).

Every request is authenticated (a token from the stack's token file), routed by the description's
path templates, and its parameters and JSON body validated against the operation's schemas (an
invalid request gets GitHub's 422 shape). Every JSON response the stand-in sends is validated
against the operation's response schema too: a stand-in answer that GitHub would never give is a
500, so tests cannot pass against a fake that drifted from the real API.

Each repository is a real bare git repository (github_git.py): file contents are read from its
default branch ``main``, and it is served over SSH to its deploy keys (github_ssh.py), so Flux can
clone it with the key the flux role registers. ``iac`` holds this checkout's HEAD tree.

Paths under ``/_standin/`` are not GitHub's (same token): for tests and the local stack.

- ``POST /_standin/repos`` ``{"owner", "name", "files"}``: add a repository (or commit files to it).
- ``PUT``/``DELETE /_standin/files/<owner>/<repo>/<path>`` (``PUT`` body ``{"content": text}``): a
  commit on ``main`` changing one file, as a push would; the answer names the new ``commit``.
- ``POST /_standin/commits/<owner>/<repo>`` ``{"files": {path: text or null}, "message": text}``:
  one commit changing several files (null deletes); ``GET`` the same path: ``main``'s commit.
- ``GET /_standin/secrets/<owner>/<repo>/<name>``: a stored secret's decrypted value (proves the
  sealed box was real).
- ``POST /_standin/faults`` ``{"method": "DELETE", "path": "<regex>", "status": 500, "count": 1}``:
  the next ``count`` GitHub API requests (0: all, until removed) whose method (default: any) and
  path (``re.fullmatch``) match are answered ``status`` with GitHub's error shape, before any
  handler runs; with ``"after": true`` the request is processed first (its effect is kept) and its
  answer replaced by the error, as when GitHub did the work but the answer was lost (a 502 of a proxy).
  ``GET /_standin/faults`` lists them (with ``hits``), ``DELETE /_standin/faults``
  removes all, ``DELETE /_standin/faults/<id>`` one.

- ``GET /_standin/log/<owner>/<repo>[?path=P]``: ``main``'s commits (newest first): sha, author, subject.
- ``POST /_standin/app`` ``{"token_ttl": seconds}``: how long new installation tokens live (3600).

A GitHub App (``--app-id``, ``--app-key-file`` its RSA private key in PEM, ``--app-installation-id``)
is installed on every repository: ``POST /app/installations/{id}/access_tokens`` takes a JWT signed
with that key (RS256, ``iss`` the App's id, at most 10 minutes long, checked as GitHub does) and
answers an installation token (``ghs_...``, 1 hour) that the API accepts like the stack token;
commits made with it (contents API) are authored by ``<slug>[bot]``. Faults may carry ``headers``
and a ``message`` (``{"status": 429, "headers": {"Retry-After": "1"}}``; a secondary rate limit is a
403 with ``Retry-After``), so clients' rate-limit handling is tested as GitHub answers.

Run: ``python -m devstack.github_standin --port P --token-file F --key-file F --git-dir D
--ssh-port P --ssh-host-key F [--seed F] [--checkout DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from openapi_schema_validator import OAS30Validator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import github_spec
from .github_git import ConflictError, GitError, GitStore
from .github_ssh import AccessDenied, GitSshServer, Grant

Handler = Callable[..., tuple[int, Any]]
SECRET_NAME = re.compile(r"^(?!GITHUB_)(?![0-9])[A-Za-z0-9_]+$")
SSH_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+={0,3}( .*)?$")
DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers or {}


def blob_sha(raw: bytes) -> str:
    """git's blob id of ``raw`` (what the contents API calls a file's ``sha``)."""
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()  # noqa: S324 - git's blob id


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class App:
    """The GitHub App of the local stack, installed on every repository."""

    id: int
    installation_id: int
    public_key: rsa.RSAPublicKey
    slug: str = "biomage-release"
    token_ttl: int = 3600
    tokens: dict[str, float] = field(default_factory=dict)  # installation token -> expiry (epoch)
    minted: int = 0

    def verify_jwt(self, token: str) -> None:
        """Check a JWT as GitHub does: RS256 by the App's key, ``iss`` the App, ``exp`` at most 10
        minutes after ``iat``, not expired, not issued in the future."""
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(signature_b64)
        except (ValueError, TypeError) as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        if header.get("alg") != "RS256":
            raise ApiError(401, "'Expiration time' claim ('exp') is invalid: JWTs must be signed with RS256")
        try:
            self.public_key.verify(
                signature, f"{header_b64}.{claims_b64}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise ApiError(401, "'Issued at' claim ('iat') and 'Expiration time' claim ('exp') are required")
        if exp < now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time")
        if exp - iat > 600 or iat > now + 60:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims.get("iss")) != str(self.id):
            raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")

    def mint(self) -> tuple[str, str]:
        token = "ghs_" + secrets.token_urlsafe(27)
        expiry = time.time() + self.token_ttl
        self.tokens = {t: e for t, e in self.tokens.items() if e > time.time()}
        self.tokens[token] = expiry
        self.minted += 1
        return token, dt.datetime.fromtimestamp(expiry, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def accepts(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.time()


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthesize(schema: dict[str, Any], overrides: dict[str, Any] | None = None) -> Any:
    """A value satisfying ``schema``'s required parts (used to build the many required repository
    fields GitHub returns), with ``overrides`` for the fields that matter."""
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(synthesize(part) or {})
        return {**merged, **(overrides or {})}
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return synthesize(schema[key][0], overrides)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        value = {name: synthesize(props.get(name, {})) for name in schema.get("required", [])}
        value.update(overrides or {})
        return value
    if schema.get("nullable"):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    return {
        "array": [],
        "integer": 1,
        "number": 1,
        "boolean": False,
        "string": now() if schema.get("format") == "date-time" else "https://api.github.com/standin",
    }.get(kind)


@dataclass
class Repo:
    owner: str
    name: str
    git_dir: Path
    keys: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    rulesets: dict[int, dict[str, Any]] = field(default_factory=dict)
    id: int = 0


@dataclass
class Fault:
    """An injected failure of the GitHub API (see ``POST /_standin/faults``)."""

    id: int
    path: re.Pattern[str]
    method: str | None = None
    status: int = 500
    remaining: int = 1  # 0: every matching request until removed
    hits: int = 0
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False  # answer ``status`` after the request was processed (its effect is kept)

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "path": self.path.pattern, "status": self.status,
                "remaining": self.remaining, "hits": self.hits, "message": self.message,
                "headers": self.headers, "after": self.after}  # fmt: skip


def key_blob(openssh: str) -> bytes | None:
    """The binary blob of an OpenSSH public key line (``type base64 [comment]``)."""
    try:
        return base64.b64decode(openssh.split()[1], validate=True)
    except (IndexError, ValueError):
        return None


class GitHubStandin:
    def __init__(
        self, spec: dict[str, Any], token: str, private_key: PrivateKey, git: GitStore, app: App | None = None
    ) -> None:
        self.spec, self.token, self.private_key, self.git, self.app = spec, token, private_key, git, app
        self.key_id = hashlib.sha256(bytes(private_key.public_key)).hexdigest()[:20]
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.next_id = 1000
        self.routes = [(self._pattern(template), template) for template in spec["paths"]]
        self.handlers: dict[str, Handler] = {
            "repos/get": self.get_repo,
            "repos/list-for-org": self.list_org_repos,
            "repos/get-content": self.get_content,
            "repos/list-deploy-keys": self.list_keys,
            "repos/create-deploy-key": self.create_key,
            "repos/get-deploy-key": self.get_key,
            "repos/delete-deploy-key": self.delete_key,
            "actions/get-repo-public-key": self.public_key,
            "actions/list-repo-secrets": self.list_secrets,
            "actions/get-repo-secret": self.get_secret,
            "actions/create-or-update-repo-secret": self.put_secret,
            "actions/delete-repo-secret": self.delete_secret,
            "actions/list-repo-variables": self.list_variables,
            "actions/create-repo-variable": self.create_variable,
            "actions/get-repo-variable": self.get_variable,
            "actions/update-repo-variable": self.update_variable,
            "actions/delete-repo-variable": self.delete_variable,
            "apps/get-repo-installation": self.get_installation,
            "apps/create-installation-access-token": self.create_installation_token,
            "repos/create-or-update-file-contents": self.put_content,
            "repos/delete-file": self.delete_content,
            "repos/get-repo-rulesets": self.list_rulesets,
            "repos/create-repo-ruleset": self.create_ruleset,
            "repos/get-repo-ruleset": self.get_ruleset,
            "repos/update-repo-ruleset": self.update_ruleset,
        }
        # operations authenticated as the App itself (a JWT), not with a token
        self.jwt_operations = {"apps/get-repo-installation", "apps/create-installation-access-token"}

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        # {path} of get-content spans slashes; every other parameter is one segment
        regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>.+)" if m[1] == "path" else f"(?P<{m[1]}>[^/]+)", template)
        return re.compile(f"^{regex}$")

    # -- plumbing ------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            if request.path.startswith("/_standin/"):
                status, body = self.admin(request)
            else:
                status, body = self.dispatch(request)
        except ApiError as exc:
            status, body = exc.status, {"message": exc.message, "documentation_url": DOCS}
            if exc.errors:
                body["errors"] = exc.errors
            extra_headers = exc.headers
        else:
            extra_headers = {}
        response = Response(status=status)
        for name, value in extra_headers.items():
            response.headers[name] = value
        if body is not None:
            response.set_data(json.dumps(body))
            response.content_type = "application/json; charset=utf-8"
        return response(environ, start_response)

    def _actor(self, request: Request, operation_id: str | None) -> str:
        """Who calls: ``token`` (the stack's token), ``app`` (a JWT) or ``installation`` (a token of
        the App's installation). Anything else is a 401, as GitHub answers it."""
        auth = request.headers.get("Authorization", "")
        scheme, token = auth.partition(" ")[::2]
        if scheme.lower() not in {"bearer", "token"} or not token:
            raise ApiError(401, "Requires authentication")
        if operation_id in self.jwt_operations:
            if self.app is None:
                raise ApiError(404, "Not Found (the local stack registered no GitHub App)")
            if token.count(".") != 2:
                raise ApiError(401, "A JSON web token could not be decoded")
            self.app.verify_jwt(token)
            return "app"
        if token == self.token:
            return "token"
        if self.app is not None and token.startswith("ghs_"):
            with self.lock:
                if self.app.accepts(token):
                    return "installation"
        if token.count(".") == 2:
            raise ApiError(403, "A JSON web token cannot be used for this endpoint: use an installation token")
        raise ApiError(401, "Bad credentials")

    def dispatch(self, request: Request) -> tuple[int, Any]:
        method = request.method.lower()
        for pattern, template in self.routes:
            match = pattern.match(request.path)
            if match and method in self.spec["paths"][template]:
                operation = self.spec["paths"][template][method]
                actor = self._actor(request, operation["operationId"])
                after = self._inject_fault(request)
                params = self._parameters(operation, match.groupdict(), request)
                body = self._body(operation, request)
                handler = self.handlers[operation["operationId"]]
                if "actor" in handler.__code__.co_varnames:
                    params["actor"] = actor
                with self.lock:
                    status, payload = handler(body=body, **params)
                self._check_response(operation, status, payload)
                if after is not None:  # the request was processed; its answer is lost
                    raise after
                return status, payload
        self._actor(request, None)
        self._inject_fault(request)
        raise ApiError(404, f"Not Found ({request.method} {request.path} is not served by the local GitHub stand-in)")

    def _parameters(self, operation: dict[str, Any], path: dict[str, str], request: Request) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for param in operation.get("parameters", []):
            name, where, schema = param["name"], param["in"], param.get("schema", {})
            raw = path.get(name) if where == "path" else request.args.get(name) if where == "query" else None
            if raw is None:
                if param.get("required"):
                    raise ApiError(422, f"Invalid request.\n\nMissing parameter {name}.")
                continue
            value: Any = raw
            if schema.get("type") == "integer":
                if not raw.isdigit():
                    raise ApiError(404 if where == "path" else 422, f"Invalid {name}: {raw!r} is not an integer")
                value = int(raw)
            elif schema.get("type") == "boolean" and raw in ("true", "false"):
                value = raw == "true"
            errors = sorted(OAS30Validator(schema).iter_errors(value), key=str)
            if errors:
                raise ApiError(422, f"Invalid request.\n\nInvalid {name}: {errors[0].message}")
            values[name.replace("-", "_")] = value
        return values

    @staticmethod
    def _body(operation: dict[str, Any], request: Request) -> Any:
        spec = operation.get("requestBody")
        if spec is None:
            return None
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"Problems parsing JSON: {exc}") from exc
        if body is None and not spec.get("required"):
            return None
        schema = spec["content"]["application/json"]["schema"]
        errors = sorted(OAS30Validator(schema).iter_errors(body), key=str)
        if errors:
            raise ApiError(
                422,
                "Invalid request.\n\n" + "\n".join(e.message for e in errors),
                [{"resource": "Request", "code": "invalid", "message": e.message} for e in errors],
            )
        return body

    @staticmethod
    def _check_response(operation: dict[str, Any], status: int, payload: Any) -> None:
        spec = operation["responses"].get(str(status))
        if spec is None:
            raise ApiError(
                500, f"stand-in bug: {operation['operationId']} answered {status}, not in GitHub's description"
            )
        schema = spec.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            errors = list(OAS30Validator(schema).iter_errors(payload))
            if errors:
                raise ApiError(500, f"stand-in bug: {operation['operationId']} response off-spec: {errors[0].message}")

    # -- state ---------------------------------------------------------------------------------
    def _repo(self, owner: str, repo: str) -> Repo:
        found = self.repos.get(f"{owner}/{repo}".lower())
        if found is None:
            raise ApiError(404, "Not Found")
        return found

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_repo(
        self, owner: str, name: str, files: dict[str, str] | None = None, checkout: Path | None = None
    ) -> Repo:
        """Add a repository (kept if it exists) with ``files`` committed, or ``checkout``'s HEAD tree."""
        with self.lock:
            repo = self.repos.get(f"{owner}/{name}".lower())
            if repo is None:
                repo = Repo(owner, name, self.git.path(owner, name), id=self._new_id())
                self.repos[f"{owner}/{name}".lower()] = repo
        self.git.create(owner, name, files)
        if checkout is not None and self.git.seed_from_checkout(repo.git_dir, checkout) is None:
            logging.warning("%s is not a git checkout with a commit: %s/%s starts empty", checkout, owner, name)
        return repo

    # -- faults --------------------------------------------------------------------------------
    def _inject_fault(self, request: Request) -> ApiError | None:
        """Raise the error of the first matching fault, or return it when the fault answers ``after``
        the request is processed (the caller raises it then: GitHub did the work, the answer is lost)."""
        with self.lock:
            for fault in self.faults:
                if (fault.method in (None, request.method)) and fault.path.fullmatch(request.path):
                    fault.hits += 1
                    if fault.remaining:
                        fault.remaining -= 1
                        if not fault.remaining:
                            self.faults.remove(fault)
                    error = ApiError(
                        fault.status,
                        fault.message or f"Server Error (injected by the stand-in: fault {fault.id})",
                        headers=fault.headers,
                    )
                    if fault.after:
                        return error
                    raise error
        return None

    def _add_fault(self, body: Any) -> Fault:
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise ApiError(422, 'a fault needs "path" (a regular expression matched against the request path)')
        try:
            fault = Fault(
                id=self._new_id(),
                path=re.compile(body["path"]),
                method=body.get("method").upper() if body.get("method") else None,
                status=int(body.get("status", 500)),
                remaining=int(body.get("count", 1)),
                message=str(body["message"]) if body.get("message") else None,
                headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
                after=bool(body.get("after", False)),
            )
        except (re.error, TypeError, ValueError, AttributeError) as exc:
            raise ApiError(422, f"invalid fault: {exc}") from exc
        if not 400 <= fault.status <= 599 or fault.remaining < 0:
            raise ApiError(422, "invalid fault: status must be 400-599 and count 0 or more")
        self.faults.append(fault)
        return fault

    # -- git over SSH (github_ssh.DeployKeys) --------------------------------------------------
    def is_deploy_key(self, blob: bytes) -> bool:
        with self.lock:
            return any(key_blob(k["key"]) == blob for repo in self.repos.values() for k in repo.keys)

    def git_grant(self, blob: bytes, owner: str, name: str, write: bool) -> Grant:
        with self.lock:
            repo = self.repos.get(f"{owner}/{name}".lower())
            key = next((k for k in repo.keys if key_blob(k["key"]) == blob), None) if repo else None
            if repo is None or key is None:
                raise AccessDenied("Repository not found.")
            if write and key["read_only"]:
                raise AccessDenied("The key you are authenticating with has been marked as read only.")
            key["last_used"] = now()
            return Grant(repo.git_dir, f"{repo.owner}/{repo.name}", key["title"])

    def _repo_json(self, repo: Repo, operation: str) -> dict[str, Any]:
        schema = self.spec["paths"]["/repos/{owner}/{repo}"]["get"]["responses"]["200"]["content"]["application/json"]
        if operation == "list":
            schema = self.spec["paths"]["/orgs/{org}/repos"]["get"]["responses"]["200"]["content"]["application/json"]
            schema = {"schema": schema["schema"]["items"]}
        owner = synthesize(schema["schema"]["properties"]["owner"], {"login": repo.owner, "type": "Organization"})
        return synthesize(
            schema["schema"],
            {
                "id": repo.id,
                "name": repo.name,
                "full_name": f"{repo.owner}/{repo.name}",
                "owner": owner,
                "private": True,
                "default_branch": "main",
                "ssh_url": f"git@github.com:{repo.owner}/{repo.name}.git",
                "html_url": f"https://github.com/{repo.owner}/{repo.name}",
            },
        )

    # -- handlers (one per operationId) ----------------------------------------------------------
    def get_repo(self, owner: str, repo: str, body: Any) -> tuple[int, Any]:
        return 200, self._repo_json(self._repo(owner, repo), "get")

    def list_org_repos(self, org: str, body: Any, page: int = 1, per_page: int = 30, **_: Any) -> tuple[int, Any]:
        repos = sorted((r for r in self.repos.values() if r.owner.lower() == org.lower()), key=lambda r: r.name)
        start = (page - 1) * per_page
        return 200, [self._repo_json(r, "list") for r in repos[start : start + per_page]]

    def get_content(self, owner: str, repo: str, path: str, body: Any, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        raw = self.git.read(found.git_dir, path)
        if raw is None:
            raise ApiError(404, "Not Found")
        url = f"https://api.github.com/repos/{found.owner}/{found.name}/contents/{path}"
        sha = blob_sha(raw)
        return 200, {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.b64encode(raw).decode(),
            "sha": sha,
            "url": url,
            "git_url": None,
            "html_url": None,
            "download_url": None,
            "_links": {"self": url, "git": None, "html": None},
        }

    def list_keys(self, owner: str, repo: str, body: Any, page: int = 1, per_page: int = 30) -> tuple[int, Any]:
        keys = self._repo(owner, repo).keys
        start = (page - 1) * per_page
        return 200, keys[start : start + per_page]

    def create_key(self, owner: str, repo: str, body: dict[str, Any]) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        key = " ".join(body["key"].split()[:2])
        if not SSH_KEY.match(body["key"].strip()):
            raise _key_invalid("key is invalid. You must supply a key in OpenSSH public key format")
        if any(k["key"] == key for k in found.keys):
            raise _key_invalid("key is already in use")
        key_id = self._new_id()
        entry = {
            "id": key_id,
            "key": key,
            "url": f"https://api.github.com/repos/{found.owner}/{found.name}/keys/{key_id}",
            "title": body.get("title") or key[-12:],
            "verified": True,
            "created_at": now(),
            "read_only": bool(body.get("read_only", True)),
            "added_by": "biomage-standin",
            "last_used": None,
            "enabled": True,
        }
        found.keys.append(entry)
        return 201, entry

    def _key(self, owner: str, repo: str, key_id: int) -> dict[str, Any]:
        for key in self._repo(owner, repo).keys:
            if key["id"] == key_id:
                return key
        raise ApiError(404, "Not Found")

    def get_key(self, owner: str, repo: str, key_id: int, body: Any) -> tuple[int, Any]:
        return 200, self._key(owner, repo, key_id)

    def delete_key(self, owner: str, repo: str, key_id: int, body: Any) -> tuple[int, Any]:
        self._repo(owner, repo).keys.remove(self._key(owner, repo, key_id))
        return 204, None

    def public_key(self, owner: str, repo: str, body: Any) -> tuple[int, Any]:
        self._repo(owner, repo)
        return 200, {"key_id": self.key_id, "key": base64.b64encode(bytes(self.private_key.public_key)).decode()}

    def list_secrets(self, owner: str, repo: str, body: Any, page: int = 1, per_page: int = 30) -> tuple[int, Any]:
        secrets = self._repo(owner, repo).secrets
        names = sorted(secrets)[(page - 1) * per_page : page * per_page]
        listed = [
            {"name": n, "created_at": secrets[n]["created_at"], "updated_at": secrets[n]["updated_at"]} for n in names
        ]
        return 200, {"total_count": len(secrets), "secrets": listed}

    def get_secret(self, owner: str, repo: str, secret_name: str, body: Any) -> tuple[int, Any]:
        secret = self._repo(owner, repo).secrets.get(secret_name.upper())
        if secret is None:
            raise ApiError(404, "Not Found")
        return 200, {
            "name": secret_name.upper(),
            "created_at": secret["created_at"],
            "updated_at": secret["updated_at"],
        }

    def put_secret(self, owner: str, repo: str, secret_name: str, body: dict[str, Any]) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        name = secret_name.upper()
        if not SECRET_NAME.match(name):
            raise ApiError(422, "Secret names can only contain alphanumeric characters or underscores, "
                                "and must not start with GITHUB_ or a number")  # fmt: skip
        if body["key_id"] != self.key_id:
            raise ApiError(422, "Bad key_id: encrypt with the repository's current public key")
        try:
            SealedBox(self.private_key).decrypt(base64.b64decode(body["encrypted_value"], validate=True))
        except (CryptoError, ValueError) as exc:
            raise ApiError(422, "Bad encrypted_value: not a sealed box for this repository's public key") from exc
        existing = found.secrets.get(name)
        stamp = now()
        found.secrets[name] = {
            "encrypted_value": body["encrypted_value"],
            "created_at": existing["created_at"] if existing else stamp,
            "updated_at": stamp,
        }
        return (204, None) if existing else (201, {})

    def delete_secret(self, owner: str, repo: str, secret_name: str, body: Any) -> tuple[int, Any]:
        if self._repo(owner, repo).secrets.pop(secret_name.upper(), None) is None:
            raise ApiError(404, "Not Found")
        return 204, None

    # Actions variables: names are stored upper-case and compared case-insensitively, as on GitHub.
    @staticmethod
    def _variable_name(name: str) -> str:
        upper = name.upper()
        if not SECRET_NAME.match(upper):
            raise ApiError(
                422,
                "Validation Failed",
                [{"resource": "ActionsVariable", "code": "custom", "field": "name",
                  "message": "Variable names can only contain alphanumeric characters or underscores, "
                             "and must not start with GITHUB_ or a number"}],
            )  # fmt: skip
        return upper

    @staticmethod
    def _variable_json(name: str, variable: dict[str, str]) -> dict[str, str]:
        return {"name": name, "value": variable["value"], "created_at": variable["created_at"],
                "updated_at": variable["updated_at"]}  # fmt: skip

    def list_variables(self, owner: str, repo: str, body: Any, page: int = 1, per_page: int = 10) -> tuple[int, Any]:
        per_page = min(max(per_page, 1), 30)  # the description says "max 30"; larger pages are capped
        variables = self._repo(owner, repo).variables
        names = sorted(variables)[(page - 1) * per_page : page * per_page]
        listed = [self._variable_json(n, variables[n]) for n in names]
        return 200, {"total_count": len(variables), "variables": listed}

    def create_variable(self, owner: str, repo: str, body: dict[str, Any]) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        name = self._variable_name(body["name"])
        if name in found.variables:
            raise ApiError(409, "Already exists - Variable already exists")
        stamp = now()
        found.variables[name] = {"value": body["value"], "created_at": stamp, "updated_at": stamp}
        return 201, {}

    def get_variable(self, owner: str, repo: str, name: str, body: Any) -> tuple[int, Any]:
        variable = self._repo(owner, repo).variables.get(name.upper())
        if variable is None:
            raise ApiError(404, "Not Found")
        return 200, self._variable_json(name.upper(), variable)

    def update_variable(self, owner: str, repo: str, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        variables = self._repo(owner, repo).variables
        variable = variables.get(name.upper())
        if variable is None:
            raise ApiError(404, "Not Found")
        new_name = self._variable_name(body.get("name") or name)
        if new_name != name.upper() and new_name in variables:
            raise ApiError(409, "Already exists - Variable already exists")
        updated = {**variable, "updated_at": now()}
        if "value" in body:
            updated["value"] = body["value"]
        del variables[name.upper()]
        variables[new_name] = updated
        return 204, None

    def delete_variable(self, owner: str, repo: str, name: str, body: Any) -> tuple[int, Any]:
        if self._repo(owner, repo).variables.pop(name.upper(), None) is None:
            raise ApiError(404, "Not Found")
        return 204, None

    # -- GitHub App ----------------------------------------------------------------------------
    def _response_schema(self, operation_id: str, status: int) -> dict[str, Any]:
        for methods in self.spec["paths"].values():
            for operation in methods.values():
                if operation.get("operationId") == operation_id:
                    return operation["responses"][str(status)]["content"]["application/json"]["schema"]
        raise KeyError(operation_id)  # pragma: no cover

    def _installation_json(self) -> dict[str, Any]:
        assert self.app is not None
        account = {"login": "biomage-org", "id": 1, "type": "Organization"}
        return synthesize(
            self._response_schema("apps/get-repo-installation", 200),
            {
                "id": self.app.installation_id,
                "app_id": self.app.id,
                "app_slug": self.app.slug,
                "target_id": 1,
                "target_type": "Organization",
                "repository_selection": "all",
                "access_tokens_url": f"https://api.github.com/app/installations/{self.app.installation_id}"
                "/access_tokens",
                "account": synthesize(
                    self._response_schema("apps/get-repo-installation", 200)["properties"]["account"], account
                ),
                "permissions": {"contents": "write", "metadata": "read", "administration": "write"},
                "events": [],
                "single_file_name": None,
                "suspended_by": None,
                "suspended_at": None,
            },
        )

    def get_installation(self, owner: str, repo: str, body: Any) -> tuple[int, Any]:
        self._repo(owner, repo)
        return 200, self._installation_json()

    def create_installation_token(self, installation_id: int, body: Any) -> tuple[int, Any]:
        assert self.app is not None
        if installation_id != self.app.installation_id:
            raise ApiError(404, "Not Found")
        token, expires_at = self.app.mint()
        return 201, {
            "token": token,
            "expires_at": expires_at,
            "permissions": {"contents": "write", "metadata": "read", "administration": "write"},
            "repository_selection": "all",
        }

    def _author(self, actor: str) -> tuple[str, str]:
        if actor == "installation" and self.app is not None:
            return f"{self.app.slug}[bot]", f"{self.app.id}+{self.app.slug}[bot]@users.noreply.github.com"
        return ("biomage stand-in", "standin@biomage.test")

    # -- contents (writes) -----------------------------------------------------------------------
    def _file_commit(self, found: Repo, path: str, raw: bytes | None, commit: str, message: str, status: int):
        schema = self._response_schema("repos/create-or-update-file-contents", status)
        url = f"https://api.github.com/repos/{found.owner}/{found.name}/contents/{path}"
        content = None
        if raw is not None:
            content = synthesize(
                schema["properties"]["content"],
                {"name": path.rsplit("/", 1)[-1], "path": path, "sha": blob_sha(raw), "size": len(raw), "url": url,
                 "type": "file"},
            )  # fmt: skip
        commit_json = synthesize(schema["properties"]["commit"], {"sha": commit, "message": message})
        return {"content": content, "commit": commit_json}

    def _check_branch(self, body: dict[str, Any]) -> None:
        if body.get("branch") not in (None, "main"):
            raise ApiError(404, f"Branch {body['branch']} not found")

    def put_content(self, owner: str, repo: str, path: str, body: dict[str, Any], actor: str) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._check_branch(body)
        try:
            raw = base64.b64decode(body["content"], validate=True)
            text = raw.decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(422, "Invalid request.\n\ncontent is not valid Base64 of UTF-8 text.") from exc
        current = self.git.read(found.git_dir, path)
        if current is not None and not body.get("sha"):
            raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if body.get("sha") and (current is None or body["sha"] != blob_sha(current)):
            now_at = blob_sha(current) if current is not None else "nothing"
            raise ApiError(409, f"{path} does not match {body['sha']} (it is at {now_at})")
        commit = self._commit(owner, repo, {path: text}, body["message"], self._author(actor))
        status = 201 if current is None else 200
        return status, self._file_commit(found, path, raw, commit, body["message"], status)

    def delete_content(self, owner: str, repo: str, path: str, body: dict[str, Any], actor: str) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._check_branch(body)
        current = self.git.read(found.git_dir, path)
        if current is None:
            raise ApiError(404, "Not Found")
        if body["sha"] != blob_sha(current):
            raise ApiError(409, f"{path} does not match {body['sha']}")
        commit = self._commit(owner, repo, {path: None}, body["message"], self._author(actor))
        schema = self._response_schema("repos/delete-file", 200)
        return 200, {"content": None, "commit": synthesize(schema["properties"]["commit"], {"sha": commit})}

    # -- rulesets --------------------------------------------------------------------------------
    def _ruleset_json(self, found: Repo, ruleset: dict[str, Any]) -> dict[str, Any]:
        base = f"https://api.github.com/repos/{found.owner}/{found.name}/rulesets/{ruleset['id']}"
        return {
            **ruleset,
            "source_type": "Repository",
            "source": f"{found.owner}/{found.name}",
            "_links": {"self": {"href": base}, "html": {"href": base.replace("api.github.com/repos", "github.com")}},
        }

    def _ruleset_body(self, found: Repo, body: dict[str, Any], ruleset_id: int | None) -> dict[str, Any]:
        name = body.get("name")
        if name is not None and any(r["name"] == name and r["id"] != ruleset_id for r in found.rulesets.values()):
            raise ApiError(
                422, "Validation Failed", [{"resource": "Ruleset", "code": "custom", "message": "Name must be unique"}]
            )
        for rule in body.get("rules") or []:
            if rule.get("type") == "required_status_checks" and not (rule.get("parameters") or {}).get(
                "required_status_checks"
            ):
                error = {"resource": "Ruleset", "code": "custom", "message": "required_status_checks needs a check"}
                raise ApiError(422, "Validation Failed", [error])
        return body

    def list_rulesets(self, owner: str, repo: str, body: Any, page: int = 1, per_page: int = 30, **_: Any):
        found = self._repo(owner, repo)
        rulesets = [found.rulesets[i] for i in sorted(found.rulesets)][(page - 1) * per_page : page * per_page]
        summary = ("id", "name", "target", "enforcement", "node_id", "created_at", "updated_at")
        return 200, [{k: v for k, v in self._ruleset_json(found, r).items() if k in (*summary, "source",
                      "source_type", "_links")} for r in rulesets]  # fmt: skip

    def create_ruleset(self, owner: str, repo: str, body: dict[str, Any]) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._ruleset_body(found, body, None)
        stamp = now()
        ruleset = {
            "id": self._new_id(),
            "name": body["name"],
            "target": body.get("target", "branch"),
            "enforcement": body["enforcement"],
            "bypass_actors": body.get("bypass_actors", []),
            "conditions": body.get("conditions"),
            "rules": body.get("rules", []),
            "node_id": f"RRS_{secrets.token_hex(6)}",
            "created_at": stamp,
            "updated_at": stamp,
        }
        if ruleset["conditions"] is None:
            del ruleset["conditions"]
        found.rulesets[ruleset["id"]] = ruleset
        return 201, self._ruleset_json(found, ruleset)

    def get_ruleset(self, owner: str, repo: str, ruleset_id: int, body: Any, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        if ruleset_id not in found.rulesets:
            raise ApiError(404, "Not Found")
        return 200, self._ruleset_json(found, found.rulesets[ruleset_id])

    def update_ruleset(self, owner: str, repo: str, ruleset_id: int, body: dict[str, Any] | None) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        if ruleset_id not in found.rulesets:
            raise ApiError(404, "Not Found")
        body = self._ruleset_body(found, body or {}, ruleset_id)
        ruleset = found.rulesets[ruleset_id]
        for key in ("name", "target", "enforcement", "bypass_actors", "conditions", "rules"):
            if key in body:
                ruleset[key] = body[key]
        ruleset["updated_at"] = now()
        return 200, self._ruleset_json(found, ruleset)

    # -- stand-in only (not GitHub's API) --------------------------------------------------------
    def admin(self, request: Request) -> tuple[int, Any]:
        if request.headers.get("Authorization", "").partition(" ")[2] != self.token:
            raise ApiError(401, "Bad credentials")
        parts = request.path.strip("/").split("/")[1:]
        if request.method == "POST" and parts == ["repos"]:
            body = request.get_json(force=True)
            repo = self.add_repo(body["owner"], body["name"], body.get("files"))
            return 201, {"id": repo.id, "full_name": f"{repo.owner}/{repo.name}"}
        if request.method == "GET" and len(parts) == 4 and parts[0] == "secrets":
            owner, name, secret = parts[1:]
            stored = self._repo(owner, name).secrets.get(secret.upper())
            if stored is None:
                raise ApiError(404, "Not Found")
            plain = SealedBox(self.private_key).decrypt(base64.b64decode(stored["encrypted_value"]))
            return 200, {"name": secret.upper(), "value": plain.decode()}
        if request.method in ("PUT", "DELETE") and len(parts) >= 4 and parts[0] == "files":
            # a commit on the default branch, as a test would push one: PUT {"content": text} or DELETE
            owner, name, path = parts[1], parts[2], "/".join(parts[3:])
            if request.method == "DELETE":
                self._commit(owner, name, {path: None}, f"Delete {path}")
                return 204, None
            commit = self._commit(owner, name, {path: request.get_json(force=True)["content"]}, f"Update {path}")
            return 200, {"path": path, "commit": commit}
        if len(parts) == 3 and parts[0] == "commits":
            found = self._repo(parts[1], parts[2])
            if request.method == "GET":
                return 200, {"branch": "main", "commit": self.git.head(found.git_dir)}
            if request.method == "POST":
                body = request.get_json(force=True)
                files = body.get("files") if isinstance(body, dict) else None
                if not isinstance(files, dict) or not files:
                    raise ApiError(422, 'a commit needs "files": {path: content or null}')
                commit = self._commit(parts[1], parts[2], files, str(body.get("message") or "Update files"))
                return 201, {"branch": "main", "commit": commit}
        if request.method == "GET" and len(parts) == 3 and parts[0] == "log":
            found = self._repo(parts[1], parts[2])
            return 200, self.git.log(found.git_dir, request.args.get("path"))
        if request.method == "POST" and parts == ["app"]:
            if self.app is None:
                raise ApiError(404, "Not Found (the local stack registered no GitHub App)")
            body = request.get_json(force=True)
            with self.lock:
                if "token_ttl" in body:
                    self.app.token_ttl = int(body["token_ttl"])
                return 200, {"id": self.app.id, "installation_id": self.app.installation_id,
                             "token_ttl": self.app.token_ttl, "minted": self.app.minted}  # fmt: skip
        if parts and parts[0] == "faults":
            with self.lock:
                if request.method == "POST" and len(parts) == 1:
                    return 201, self._add_fault(request.get_json(force=True)).json()
                if request.method == "GET" and len(parts) == 1:
                    return 200, [fault.json() for fault in self.faults]
                if request.method == "DELETE" and len(parts) == 1:
                    self.faults.clear()
                    return 204, None
                if request.method == "DELETE" and len(parts) == 2 and parts[1].isdigit():
                    kept = [fault for fault in self.faults if fault.id != int(parts[1])]
                    if len(kept) == len(self.faults):
                        raise ApiError(404, "Not Found")
                    self.faults[:] = kept
                    return 204, None
        raise ApiError(404, "Not Found")

    def _commit(
        self, owner: str, name: str, files: dict[str, Any], message: str, author: tuple[str, str] | None = None
    ) -> str:
        found = self._repo(owner, name)
        if not all(value is None or isinstance(value, str) for value in files.values()):
            raise ApiError(422, "file contents must be text (or null to delete)")
        try:
            return self.git.commit(found.git_dir, files, message, *([author] if author else []))
        except KeyError as exc:
            raise ApiError(404, f"Not Found ({exc.args[0]} is not on main)") from exc
        except ConflictError as exc:
            raise ApiError(409, str(exc)) from exc
        except GitError as exc:
            raise ApiError(422, str(exc)) from exc


def _key_invalid(message: str) -> ApiError:
    return ApiError(
        422, "Validation Failed", [{"resource": "PublicKey", "code": "custom", "field": "key", "message": message}]
    )


def load_private_key(path: Path) -> PrivateKey:
    if path.is_file():
        return PrivateKey(base64.b64decode(path.read_text(encoding="ascii")))
    key = PrivateKey.generate()
    path.touch(mode=0o600)
    path.write_text(base64.b64encode(bytes(key)).decode(), encoding="ascii")
    return key


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="github_standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--seed", type=Path, help="JSON list of {owner, name, files, checkout} repositories")
    parser.add_argument("--git-dir", type=Path, required=True, help="where the bare repositories live (emptied)")
    parser.add_argument("--checkout", type=Path, help="the git checkout whose HEAD seeds repositories with checkout")
    parser.add_argument("--ssh-port", type=int, required=True)
    parser.add_argument("--ssh-host-key", type=Path, required=True, help="OpenSSH private key file")
    parser.add_argument("--app-id", type=int, help="the GitHub App's id (with --app-key-file)")
    parser.add_argument("--app-installation-id", type=int, default=1)
    parser.add_argument("--app-key-file", type=Path, help="the GitHub App's RSA private key (PEM)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    git = GitStore(args.git_dir)
    git.reset()
    github_app = None
    if args.app_id is not None and args.app_key_file is not None:
        key = serialization.load_pem_private_key(args.app_key_file.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        github_app = App(args.app_id, args.app_installation_id, key.public_key())
    app = GitHubStandin(
        github_spec.load(),
        args.token_file.read_text(encoding="ascii").strip(),
        load_private_key(args.key_file),
        git,
        github_app,
    )
    if args.seed and args.seed.is_file():
        for repo in json.loads(args.seed.read_text(encoding="utf-8")):
            checkout = args.checkout if repo.get("checkout") else None
            app.add_repo(repo["owner"], repo["name"], repo.get("files"), checkout)
    GitSshServer(app, args.ssh_host_key).start(args.host, args.ssh_port)
    make_server(args.host, args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
