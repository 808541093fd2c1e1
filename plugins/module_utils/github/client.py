# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small GitHub REST client for the biomage.iac modules (deploy keys, Actions settings, contents).

One exception type, :class:`GitHubError` (a :class:`BiomageError`), carries what failed, where, the
fix and the HTTP status; modules turn it into ``fail_json`` in one place (``errors.fail``). The
token is sent only in the Authorization header and never appears in an error message.
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import open_url
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    from nacl.public import PublicKey, SealedBox

    HAS_NACL = True
    NACL_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_NACL = False
    NACL_IMPORT_ERROR = exc

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
RETRY_STATUSES = (502, 503, 504)

GITHUB_REPOSITORY_SPEC = dict(
    owner=dict(type="str", required=True),
    repo=dict(type="str", required=True),
)
GITHUB_ARGUMENT_SPEC = dict(
    api_url=dict(type="str", default=DEFAULT_API_URL),
    token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["GITHUB_TOKEN"])),
    validate_certs=dict(type="bool", default=True),
    api_timeout=dict(type="float", default=20.0),
)
# seconds to connect and for each read of a response (docs/timeouts.md): an API that accepts the
# connection and never answers fails the task after this, naming the endpoint
DEFAULT_TIMEOUT = 20.0


# the fix of an HTTP error status, where one is known
STATUS_FIXES = {
    401: "the token is missing, wrong or expired: provide a valid token.",
    403: "the token lacks the permission for this call (deploy keys and secrets need admin rights).",
    404: "check the owner and repository names, and that the token can see the repository.",
}


class GitHubError(BiomageError):
    """A GitHub call that failed, worded for the operator; ``status`` (and ``details["http_status"]``)
    is the HTTP status GitHub answered, None when there was no answer."""

    def __init__(self, message, status=None, fix=None, **details):
        super().__init__(message, fix=fix, http_status=status, **details)
        self.status = status


def module_client(module):
    """The client of a module's GitHub connection options (GITHUB_ARGUMENT_SPEC)."""
    params = module.params
    timeout = params.get("api_timeout") or DEFAULT_TIMEOUT
    return GitHubClient(params["api_url"], params["token"], params["validate_certs"], timeout=timeout)


class GitHubClient:
    def __init__(self, api_url, token, validate_certs=True, timeout=DEFAULT_TIMEOUT, retries=3):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = retries
        self.calls = []  # (method, path) of every request made: for plans and tests

    def request(self, method, path, body=None):
        """Return (status, parsed JSON or None, headers). Raises GitHubError on any failure."""
        url = path if path.startswith("http") else self.api_url + path
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "biomage.iac",
        }
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        self.calls.append((method, path))
        for attempt in range(self.retries + 1):
            try:
                resp = open_url(
                    url,
                    method=method,
                    data=data,
                    headers=headers,
                    validate_certs=self.validate_certs,
                    timeout=self.timeout,
                )
                raw = resp.read()
                return resp.getcode(), (json.loads(raw) if raw else None), dict(resp.headers)
            except HTTPError as exc:
                if exc.code in RETRY_STATUSES and attempt < self.retries:
                    time.sleep(min(2**attempt, 10))
                    continue
                raise self._http_error(method, url, exc) from exc
            except URLError as exc:
                reason = getattr(exc, "reason", exc)
                raise GitHubError(
                    f"cannot reach the GitHub API at {self.api_url}: {reason}.",
                    fix="check github_api_url and the network.",
                ) from exc
            except (TimeoutError, OSError) as exc:  # no answer within the timeout (not retried: see the message)
                raise self._silent(method, url, exc) from exc
        raise GitHubError(f"GitHub API {method} {url} kept failing")  # pragma: no cover

    def _silent(self, method, url, exc):
        maybe = (
            ""
            if method in ("GET", "HEAD")
            else " GitHub may have processed the request: a re-run reads the state back and converges."
        )
        return GitHubError(
            f"the GitHub API at {self.api_url} did not answer {method} {url} within {self.timeout:g} s "
            f"({type(exc).__name__}: {exc}).{maybe}",
            fix="check the endpoint (github_api_url) and the network, or raise the module's api_timeout.",
        )

    @staticmethod
    def _http_error(method, url, exc):
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        message = payload.get("message", exc.reason)
        details = "; ".join(e.get("message", "") for e in payload.get("errors", []) if isinstance(e, dict))
        details = f" ({details})" if details else ""
        return GitHubError(
            f"GitHub API {method} {url} answered {exc.code}: {message}{details}.",
            status=exc.code,
            fix=STATUS_FIXES.get(exc.code),
        )

    def paginate(self, path):
        items = []
        separator = "&" if "?" in path else "?"
        next_url = f"{path}{separator}per_page=100"
        while next_url:
            page, headers = self.request("GET", next_url)[1:]
            items.extend(page or [])
            match = LINK_NEXT.search(headers.get("Link", "") or headers.get("link", ""))
            next_url = match.group(1) if match else None
        return items

    @staticmethod
    def _repo_path(owner, repo, *parts):
        """``/repos/{owner}/{repo}[/{part}...]``, every name quoted."""
        return "/".join(quote(str(part), safe="") for part in ("", "repos", owner, repo, *parts))

    def _actions_path(self, owner, repo, kind, name=None):
        """The path of the repository's Actions ``kind`` (``secrets``, ``variables``), or of one by name."""
        return self._repo_path(owner, repo, "actions", kind, *([name] if name is not None else []))

    def _get_or_none(self, path):
        """The body of a GET, or None when GitHub answers 404."""
        try:
            return self.request("GET", path)[1]
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    # deploy keys ---------------------------------------------------------------------------
    def list_deploy_keys(self, owner, repo):
        return self.paginate(self._repo_path(owner, repo, "keys"))

    def add_deploy_key(self, owner, repo, title, key, read_only):
        body = {"title": title, "key": key, "read_only": read_only}
        return self.request("POST", self._repo_path(owner, repo, "keys"), body)[1]

    def delete_deploy_key(self, owner, repo, key_id):
        self.request("DELETE", self._repo_path(owner, repo, "keys", int(key_id)))

    # Actions secrets -----------------------------------------------------------------------
    def repo_public_key(self, owner, repo):
        return self.request("GET", self._actions_path(owner, repo, "secrets", "public-key"))[1]

    def put_secret(self, owner, repo, name, value, public_key=None):
        """Encrypt ``value`` as a sealed box for the repository's key and store it. True if new."""
        public_key = public_key or self.repo_public_key(owner, repo)
        body = {"encrypted_value": seal(public_key["key"], value), "key_id": public_key["key_id"]}
        return self.request("PUT", self._actions_path(owner, repo, "secrets", name), body)[0] == 201

    def get_secret(self, owner, repo, name):
        """A secret's metadata (name, created_at, updated_at; never its value), or None."""
        return self._get_or_none(self._actions_path(owner, repo, "secrets", name))

    def delete_secret(self, owner, repo, name):
        self.request("DELETE", self._actions_path(owner, repo, "secrets", name))

    # Actions variables (not secret: they can be read back) -----------------------------------
    def get_variable(self, owner, repo, name):
        """A variable (name, value, created_at, updated_at), or None."""
        return self._get_or_none(self._actions_path(owner, repo, "variables", name))

    def create_variable(self, owner, repo, name, value):
        self.request("POST", self._actions_path(owner, repo, "variables"), {"name": name, "value": value})

    def update_variable(self, owner, repo, name, value):
        self.request("PATCH", self._actions_path(owner, repo, "variables", name), {"name": name, "value": value})

    def delete_variable(self, owner, repo, name):
        self.request("DELETE", self._actions_path(owner, repo, "variables", name))

    # contents ------------------------------------------------------------------------------
    def get_file(self, owner, repo, path):
        """A file's text, or None when the repository has no such file."""
        content = self._get_or_none(self._repo_path(owner, repo, "contents") + "/" + quote(path))
        return None if content is None else base64.b64decode(content["content"]).decode("utf-8")


def seal(public_key_b64, value):
    """A libsodium sealed box of ``value`` for a base64 Curve25519 public key, base64-encoded."""
    if not HAS_NACL:
        raise GitHubError(f"PyNaCl is required to encrypt GitHub secrets: {NACL_IMPORT_ERROR}")
    box = SealedBox(PublicKey(base64.b64decode(public_key_b64)))
    return base64.b64encode(box.encrypt(value.encode("utf-8"))).decode("ascii")
