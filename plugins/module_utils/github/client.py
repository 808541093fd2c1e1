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
import datetime as dt
import json
import re
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import open_url
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    HAS_CRYPTOGRAPHY = True
    CRYPTO_ERROR = None
except ImportError as exc:  # pragma: no cover - reported when an App is used
    HAS_CRYPTOGRAPHY = False
    CRYPTO_ERROR = exc

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
# a GitHub App's JWT lives at most 10 minutes; issued a minute in the past against clock drift
JWT_LIFETIME = 540
JWT_BACKDATE = 60
# an installation token (1 hour) is renewed when it has less than this left
TOKEN_REFRESH_MARGIN = 300
# the longest a client waits for rate limits in all, and once; the default wait of a secondary limit
RATE_LIMIT_BUDGET = 180
RATE_LIMIT_MAX_WAIT = 90
SECONDARY_DEFAULT_WAIT = 60

GITHUB_REPOSITORY_SPEC = dict(
    owner=dict(type="str", required=True),
    repo=dict(type="str", required=True),
)
# the GitHub App options: the release step's identity (an installation token, renewed before expiry)
GITHUB_APP_ARGUMENT_SPEC = dict(
    app_id=dict(type="str", fallback=(env_fallback, ["GITHUB_APP_ID"])),
    app_installation_id=dict(type="int", fallback=(env_fallback, ["GITHUB_APP_INSTALLATION_ID"])),
    app_private_key=dict(type="str", no_log=True, fallback=(env_fallback, ["GITHUB_APP_PRIVATE_KEY"])),
    app_private_key_path=dict(type="path", fallback=(env_fallback, ["GITHUB_APP_PRIVATE_KEY_FILE"])),
)
GITHUB_ARGUMENT_SPEC = dict(
    api_url=dict(type="str", default=DEFAULT_API_URL),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["GITHUB_TOKEN"])),
    **GITHUB_APP_ARGUMENT_SPEC,
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


APP_401_FIX = (
    "GitHub refused the App's credentials: check app_id and app_installation_id, and that the private key is "
    "the App's current one (GitHub > Settings > Developer settings > GitHub Apps)."
)


# what a failed write did, as far as the client knows (GitHubError.outcome)
NOT_APPLIED = "not applied"
UNKNOWN = "unknown"


class GitHubError(BiomageError):
    """A GitHub call that failed, worded for the operator; ``status`` (and ``details["http_status"]``)
    is the HTTP status GitHub answered, None when there was no answer. ``outcome``: NOT_APPLIED when
    the call certainly changed nothing (a refusal, or a read-back after an ambiguous answer), UNKNOWN
    when a write may have been processed."""

    def __init__(self, message, status=None, fix=None, outcome=NOT_APPLIED, **details):
        super().__init__(message, fix=fix, http_status=status, **details)
        self.status = status
        self.outcome = outcome


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AppAuth:
    """A GitHub App's credentials: JWTs (RS256, signed with the App's private key) and the
    installation token they buy, renewed when it nears its expiry. Neither is ever in a message."""

    def __init__(self, app_id, private_key_pem, installation_id=None, refresh_margin=TOKEN_REFRESH_MARGIN, clock=None):
        if not HAS_CRYPTOGRAPHY:
            raise GitHubError(f"the cryptography library is required for GitHub App authentication: {CRYPTO_ERROR}")
        self.app_id = str(app_id)
        self.installation_id = installation_id
        self.refresh_margin = refresh_margin
        self.clock = clock or time.time
        try:
            self._key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise GitHubError(
                f"the private key of GitHub App {self.app_id} cannot be read (not an unencrypted PEM key).",
                fix="give the .pem file GitHub made for the App (app_private_key_path), unchanged.",
            ) from exc
        if not isinstance(self._key, rsa.RSAPrivateKey):
            raise GitHubError(
                f"the private key of GitHub App {self.app_id} is not an RSA key.",
                fix="give the .pem file GitHub made for the App (an RSA key).",
            )
        self._token = None
        self._expires = 0.0
        self.minted = 0  # installation tokens made: for tests

    def jwt(self):
        now = int(self.clock())
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": self.app_id}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def token(self, client, owner=None, repo=None):
        """The installation token, minted (or renewed) when missing or near its expiry."""
        if self._token is None or self._expires - self.clock() < self.refresh_margin:
            self._mint(client, owner, repo)
        return self._token

    def expire(self):
        """Forget the token (GitHub refused it): the next call mints a new one."""
        self._token = None

    def _mint(self, client, owner, repo):
        bearer = self.jwt()
        if self.installation_id is None:
            if owner is None or repo is None:
                raise GitHubError(
                    f"the installation of GitHub App {self.app_id} is not known.",
                    fix="give app_installation_id (the App's installation on the organisation).",
                )
            found = client.request("GET", client._repo_path(owner, repo, "installation"), bearer=bearer)[1]
            self.installation_id = int(found["id"])
        path = f"/app/installations/{int(self.installation_id)}/access_tokens"
        body = client.request("POST", path, bearer=bearer, repeatable=True)[1] or {}
        self._token = body.get("token")
        self._expires = _parse_time(body.get("expires_at"), self.clock() + 3600)
        self.minted += 1
        if not self._token:
            raise GitHubError(f"GitHub answered no installation token for App {self.app_id}.")


def _parse_time(text, default):
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except (TypeError, ValueError):
        return default


def app_auth_from_params(params):
    """The AppAuth of a module's App options, or None when no App is given."""
    key, key_path = params.get("app_private_key"), params.get("app_private_key_path")
    if not params.get("app_id") and not key and not key_path:
        return None
    if not params.get("app_id") or not (key or key_path):
        raise GitHubError(
            "GitHub App authentication needs the App's id and its private key.",
            fix="give app_id and app_private_key_path (or app_private_key), and app_installation_id.",
        )
    if not key:
        try:
            with open(key_path, encoding="ascii") as handle:
                key = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise GitHubError(
                f"cannot read the GitHub App's private key file {key_path}: {getattr(exc, 'strerror', exc)}.",
                fix="give the path of the App's .pem file (readable by the user running the module).",
            ) from exc
    return AppAuth(params["app_id"], key, params.get("app_installation_id"))


def module_client(module, require_app=False):
    """The client of a module's GitHub connection options (GITHUB_ARGUMENT_SPEC): the token when one is
    given, else the GitHub App (its options or their E(GITHUB_APP_*) fallbacks), so an App found in the
    environment never replaces the token a task names. ``require_app``: the App only, a token is refused."""
    params = module.params
    token = params.get("token")
    app = app_auth_from_params(params) if require_app or not token else None
    if app is None and (require_app or not token):
        raise GitHubError(
            "no GitHub credentials: "
            + ("this module acts as the GitHub App only." if require_app else "neither a token nor a GitHub App."),
            fix="give app_id, app_installation_id and app_private_key_path (E(GITHUB_APP_ID), "
            "E(GITHUB_APP_INSTALLATION_ID), E(GITHUB_APP_PRIVATE_KEY_FILE))"
            + ("" if require_app else ", or token (E(GITHUB_TOKEN))")
            + ".",
        )
    timeout = params.get("api_timeout") or DEFAULT_TIMEOUT
    client = GitHubClient(params["api_url"], None if app else token, params["validate_certs"], timeout=timeout, app=app)
    return client.for_repo(params.get("owner"), params.get("repo"))


class GitHubClient:
    def __init__(
        self,
        api_url,
        token=None,
        validate_certs=True,
        timeout=DEFAULT_TIMEOUT,
        retries=3,
        app=None,
        rate_limit_budget=RATE_LIMIT_BUDGET,
        sleep=None,
    ):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.app = app
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = retries
        self.rate_limit_budget = rate_limit_budget
        self.sleep = sleep or time.sleep
        self.calls = []  # (method, path) of every request made: for plans and tests
        self.rate_limit_waits = []  # seconds waited for each rate limit met
        self.recovered = []  # writes answered ambiguously that reading back showed done (module warnings)
        self._repo_hint = (None, None)

    def for_repo(self, owner, repo):
        """Remember the repository acted on (an App without installation id finds it from there)."""
        self._repo_hint = (owner, repo)
        return self

    def _authorization(self):
        if self.app is not None:
            return f"Bearer {self.app.token(self, *self._repo_hint)}"
        return f"Bearer {self._token}"

    def request(self, method, path, body=None, bearer=None, confirm=None, what=None, repeatable=False):
        """Return (status, parsed JSON or None, headers). Raises GitHubError on any failure.

        ``bearer``: authenticate with this (a GitHub App's JWT) instead of the client's token.
        Rate limits (429, or 403 with Retry-After or an exhausted quota) are waited out within
        ``rate_limit_budget`` seconds; a token GitHub refuses (401) is renewed once for an App.

        A write (POST, PUT, PATCH, DELETE) that gets an ambiguous answer (a 5xx, or none within the
        timeout) may have been processed: with ``confirm`` (a function reading the state back, returning
        the written object, or True, when the write took effect and None when it did not) the state is
        read back before anything else, and the write counts as done (recorded in ``recovered``) or is
        retried (5xx of RETRY_STATUSES) only when it did not take effect; without ``confirm`` a POST or
        PATCH is never retried. ``what`` names the write in messages (``the deploy key 'x'``);
        ``repeatable``: a write that may simply be sent again (minting a token).
        """
        url = path if path.startswith("http") else self.api_url + path
        data = None
        if body is not None:
            data = json.dumps(body)
        self.calls.append((method, path))
        write = method not in ("GET", "HEAD") and not repeatable
        attempt, renewed, waited = 0, False, 0.0
        while True:
            headers = {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {bearer}" if bearer else self._authorization(),
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "biomage.iac",
            }
            if data is not None:
                headers["Content-Type"] = "application/json"
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
                payload = _error_payload(exc)
                wait = rate_limit_wait(exc.code, exc.headers, payload.get("message", ""))
                if wait is not None:
                    if waited + wait > self.rate_limit_budget or wait > RATE_LIMIT_MAX_WAIT:
                        raise self._rate_limit_error(method, url, exc.code, payload, exc.headers, waited) from exc
                    self.rate_limit_waits.append(wait)
                    waited += wait
                    self.sleep(wait)
                    continue
                if exc.code == 401 and self.app is not None and bearer is None and not renewed:
                    renewed = True
                    self.app.expire()
                    continue
                error = self._http_error(method, url, exc, payload)
                if write and exc.code >= 500:
                    answer = f"answered {exc.code}"
                    confirmed = self._read_back(method, url, answer, error, confirm, what)
                    if confirmed is not None:
                        return exc.code, (None if confirmed is True else confirmed), {}
                # a read is retried; a write only when it did not take effect, or is idempotent (PUT, DELETE)
                retry = not write or confirm is not None or method in ("PUT", "DELETE")
                if exc.code in RETRY_STATUSES and attempt < self.retries and retry:
                    self.sleep(min(2**attempt, 10))
                    attempt += 1
                    continue
                if exc.code == 401 and (self.app is not None or bearer):
                    error.fix = APP_401_FIX
                raise error from exc
            except URLError as exc:
                reason = getattr(exc, "reason", exc)
                raise GitHubError(
                    f"cannot reach the GitHub API at {self.api_url}: {reason}.",
                    fix="check github_api_url and the network.",
                    outcome=NOT_APPLIED,
                ) from exc
            except (TimeoutError, OSError) as exc:  # no answer within the timeout (not retried: see the message)
                error = self._silent(method, url, exc, write and confirm is not None)
                if write and confirm is not None:
                    answer = f"did not answer within {self.timeout:g} s"
                    confirmed = self._read_back(method, url, answer, error, confirm, what)
                    if confirmed is not None:
                        return 0, (None if confirmed is True else confirmed), {}
                raise error from exc

    def _read_back(self, method, url, answer, error, confirm, what):
        """After an ambiguous answer to a write: what ``confirm`` reads back (the write took effect:
        recorded in ``recovered``), or None; ``error`` is amended with what the read-back found."""
        subject = what or f"{method} {url}"
        if confirm is None:
            error.outcome = UNKNOWN
            error.message += (
                f" GitHub may have processed {subject}: nothing was read back, so it is unknown whether it took "
                "effect; a re-run reads the state and converges."
            )
            error.args = (error.message,)
            return None
        try:
            confirmed = confirm()
        except GitHubError as exc:
            error.outcome = UNKNOWN
            error.message += (
                f" Reading the state back failed too ({exc.message}), so it is unknown whether {subject} took "
                "effect; a re-run reads the state and converges."
            )
            error.args = (error.message,)
            return None
        if confirmed is None or confirmed is False:
            error.outcome = NOT_APPLIED
            error.message += f" Read back: {subject} did not take effect (nothing was changed by this call)."
            error.args = (error.message,)
            return None
        self.recovered.append(
            f"GitHub {answer} to {method} {url}, but reading the state back shows that {subject} took effect: "
            "counted as done."
        )
        return confirmed

    def _silent(self, method, url, exc, confirmable=False):
        maybe = (
            ""
            if method in ("GET", "HEAD") or confirmable
            else " GitHub may have processed the request: a re-run reads the state back and converges."
        )
        return GitHubError(
            f"the GitHub API at {self.api_url} did not answer {method} {url} within {self.timeout:g} s "
            f"({type(exc).__name__}: {exc}).{maybe}",
            fix="check the endpoint (github_api_url) and the network, or raise the module's api_timeout.",
            outcome=UNKNOWN if maybe else NOT_APPLIED,
        )

    @staticmethod
    def _rate_limit_error(method, url, status, payload, headers, waited):
        reset = _header(headers, "x-ratelimit-reset")
        when = ""
        if reset and reset.isdigit():
            when = (
                " (the quota resets at " + dt.datetime.fromtimestamp(int(reset), dt.UTC).strftime("%H:%M:%S UTC") + ")"
            )
        return GitHubError(
            f"GitHub API {method} {url} is rate limited ({status}: {payload.get('message', 'rate limit')}); "
            f"waited {waited:g}s in all{when}.",
            status=status,
            fix="this is GitHub's rate limit, not a missing permission: run again later, or make fewer calls "
            "at once (secondary limits count concurrent requests).",
            rate_limited=True,
        )

    @staticmethod
    def _http_error(method, url, exc, payload=None):
        payload = _error_payload(exc) if payload is None else payload
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
        """Register a deploy key; the key GitHub holds. After an ambiguous answer the keys are read
        back: a key with this material already registered is the one this call added (a retried POST
        would be refused: "key is already in use")."""
        body = {"title": title, "key": key, "read_only": read_only}
        material = key.split()[:2]

        def registered():
            found = [k for k in self.list_deploy_keys(owner, repo) if (k.get("key") or "").split()[:2] == material]
            return found[0] if found else None

        what = f"adding the deploy key {title!r} to {owner}/{repo}"
        return self.request("POST", self._repo_path(owner, repo, "keys"), body, confirm=registered, what=what)[1]

    def delete_deploy_key(self, owner, repo, key_id):
        path = self._repo_path(owner, repo, "keys", int(key_id))
        what = f"deleting the deploy key {key_id} of {owner}/{repo}"
        self.request("DELETE", path, confirm=lambda: True if self._get_or_none(path) is None else None, what=what)

    # Actions secrets -----------------------------------------------------------------------
    def repo_public_key(self, owner, repo):
        return self.request("GET", self._actions_path(owner, repo, "secrets", "public-key"))[1]

    def put_secret(self, owner, repo, name, value, public_key=None, previous=None):
        """Encrypt ``value`` as a sealed box for the repository's key and store it. True if new.

        ``previous``: the secret's metadata before (None: absent); after an ambiguous answer the write
        counts as done when the secret now exists with another ``updated_at``."""
        public_key = public_key or self.repo_public_key(owner, repo)
        body = {"encrypted_value": seal(public_key["key"], value), "key_id": public_key["key_id"]}

        def written():
            now = self.get_secret(owner, repo, name)
            if now is None or (previous is not None and now.get("updated_at") == previous.get("updated_at")):
                return None
            return now

        what = f"writing the secret {name} of {owner}/{repo}"
        path = self._actions_path(owner, repo, "secrets", name)
        status = self.request("PUT", path, body, confirm=written, what=what)[0]
        return status == 201 or (status not in (201, 204) and previous is None)

    def get_secret(self, owner, repo, name):
        """A secret's metadata (name, created_at, updated_at; never its value), or None."""
        return self._get_or_none(self._actions_path(owner, repo, "secrets", name))

    def delete_secret(self, owner, repo, name):
        def gone():
            return True if self.get_secret(owner, repo, name) is None else None

        what = f"deleting the secret {name} of {owner}/{repo}"
        self.request("DELETE", self._actions_path(owner, repo, "secrets", name), confirm=gone, what=what)

    # Actions variables (not secret: they can be read back) -----------------------------------
    def get_variable(self, owner, repo, name):
        """A variable (name, value, created_at, updated_at), or None."""
        return self._get_or_none(self._actions_path(owner, repo, "variables", name))

    def _variable_is(self, owner, repo, name, value):
        """A read-back: True when the variable has ``value`` (None: when it is absent), else None."""
        current = self.get_variable(owner, repo, name)
        if value is None:
            return True if current is None else None
        return True if current is not None and current.get("value") == value else None

    def create_variable(self, owner, repo, name, value):
        self.request(
            "POST",
            self._actions_path(owner, repo, "variables"),
            {"name": name, "value": value},
            confirm=lambda: self._variable_is(owner, repo, name, value),
            what=f"creating the variable {name} of {owner}/{repo}",
        )

    def update_variable(self, owner, repo, name, value):
        self.request(
            "PATCH",
            self._actions_path(owner, repo, "variables", name),
            {"name": name, "value": value},
            confirm=lambda: self._variable_is(owner, repo, name, value),
            what=f"updating the variable {name} of {owner}/{repo}",
        )

    def delete_variable(self, owner, repo, name):
        self.request(
            "DELETE",
            self._actions_path(owner, repo, "variables", name),
            confirm=lambda: self._variable_is(owner, repo, name, None),
            what=f"deleting the variable {name} of {owner}/{repo}",
        )

    # contents ------------------------------------------------------------------------------
    def _contents_path(self, owner, repo, path):
        return self._repo_path(owner, repo, "contents") + "/" + quote(path)

    def get_file(self, owner, repo, path):
        """A file's text, or None when the repository has no such file."""
        found = self.get_file_with_sha(owner, repo, path)
        return None if found is None else found[0]

    def get_file_with_sha(self, owner, repo, path, ref=None):
        """``(text, blob sha)`` of a file, or None when the repository has no such file."""
        suffix = f"?ref={quote(ref, safe='')}" if ref else ""
        content = self._get_or_none(self._contents_path(owner, repo, path) + suffix)
        if content is None or not isinstance(content, dict) or content.get("type", "file") != "file":
            return None
        return base64.b64decode(content.get("content") or "").decode("utf-8"), content.get("sha")

    def put_file(self, owner, repo, path, text, message, sha=None, branch=None):
        """Create (``sha`` None) or replace (``sha`` the current blob's) a file in one commit; the
        new commit's sha. GitHub answers 409 (or 422) when ``sha`` is not the file's current blob."""
        body = {"message": message, "content": base64.b64encode(text.encode("utf-8")).decode("ascii")}
        if sha:
            body["sha"] = sha
        if branch:
            body["branch"] = branch
        answer = self.request("PUT", self._contents_path(owner, repo, path), body)[1] or {}
        return (answer.get("commit") or {}).get("sha")

    def delete_file(self, owner, repo, path, message, sha, branch=None):
        """Delete a file (``sha``: its current blob) in one commit; the new commit's sha."""
        body = {"message": message, "sha": sha}
        if branch:
            body["branch"] = branch
        answer = self.request("DELETE", self._contents_path(owner, repo, path), body)[1] or {}
        return (answer.get("commit") or {}).get("sha")

    # repository rulesets ----------------------------------------------------------------------
    def list_rulesets(self, owner, repo):
        """The repository's own rulesets (summaries: id, name, target, enforcement)."""
        return self.paginate(self._repo_path(owner, repo, "rulesets") + "?includes_parents=false")

    def get_ruleset(self, owner, repo, ruleset_id):
        return self.request("GET", self._repo_path(owner, repo, "rulesets", int(ruleset_id)))[1]

    def create_ruleset(self, owner, repo, body):
        def created():
            found = [r for r in self.list_rulesets(owner, repo) if r.get("name") == body.get("name")]
            return self.get_ruleset(owner, repo, found[0]["id"]) if found else None

        what = f"creating the ruleset {body.get('name')!r} of {owner}/{repo}"
        return self.request("POST", self._repo_path(owner, repo, "rulesets"), body, confirm=created, what=what)[1]

    def update_ruleset(self, owner, repo, ruleset_id, body):
        return self.request("PUT", self._repo_path(owner, repo, "rulesets", int(ruleset_id)), body)[1]

    def repo_installation(self, owner, repo):
        """The GitHub App installation on a repository (needs the App's JWT: see AppAuth)."""
        if self.app is None:
            raise GitHubError("the installation of a repository is read as a GitHub App only.")
        return self.request("GET", self._repo_path(owner, repo, "installation"), bearer=self.app.jwt())[1]


def _header(headers, name):
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        lowered = {k.lower(): v for k, v in dict(headers).items()}
        value = lowered.get(name.lower())
    return None if value is None else str(value).strip()


def _error_payload(exc):
    """The JSON body of an HTTP error (read once and kept on the exception)."""
    cached = getattr(exc, "_biomage_payload", None)
    if cached is not None:
        return cached
    try:
        payload = json.loads(exc.read() or b"{}")
    except (ValueError, OSError, AttributeError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    exc._biomage_payload = payload
    return payload


def rate_limit_wait(status, headers, message="", now=None):
    """Seconds to wait before retrying a rate-limited answer, or None when it is not a rate limit.

    GitHub's rules: 429, or 403 with ``Retry-After`` (secondary limits) or with
    ``x-ratelimit-remaining: 0`` (the primary quota, until ``x-ratelimit-reset``); a 403 whose
    message says "rate limit" without either header waits a minute. Any other 403 is a permission.
    """
    if status not in (403, 429):
        return None
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return float(SECONDARY_DEFAULT_WAIT)
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        try:
            return max(1.0, float(reset) - (now if now is not None else time.time()) + 1)
        except (TypeError, ValueError):
            return float(SECONDARY_DEFAULT_WAIT)
    if status == 429 or "rate limit" in str(message).lower():
        return float(SECONDARY_DEFAULT_WAIT)
    return None


def seal(public_key_b64, value):
    """A libsodium sealed box of ``value`` for a base64 Curve25519 public key, base64-encoded."""
    if not HAS_NACL:
        raise GitHubError(f"PyNaCl is required to encrypt GitHub secrets: {NACL_IMPORT_ERROR}")
    box = SealedBox(PublicKey(base64.b64decode(public_key_b64)))
    return base64.b64encode(box.encrypt(value.encode("utf-8"))).decode("ascii")
