# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flux's Git credentials: an SSH key pair in a Kubernetes Secret and its GitHub deploy key.

One call converges both sides, in the only order that never leaves Flux without a working key:

1. read the Secret (``identity``, ``identity.pub``, ``known_hosts``) and the repository's deploy keys;
2. plan (:func:`plan`); every check that can fail does so here, before anything is changed;
3. when a new key is needed: generate it in memory, dry-run the Secret write (the namespace exists,
   the caller may write Secrets, admission accepts it), **add** the public key as a deploy key,
   **write** the Secret, then **delete** the older keys carrying the same title;
   otherwise: re-add the Secret's key if it was deleted on GitHub, rewrite the Secret if its
   ``known_hosts`` or ``identity.pub`` drifted, and delete stale keys with the title.

Crash safety (any step may fail; the next run, even with ``regenerate=never``, converges):

* add fails: nothing changed; the next run plans the same thing again;
* the Secret write fails after the add: the Secret still holds the old key, which is still
  registered (nothing was deleted); the next run keeps it and deletes the new key, whose private
  half existed only in the failed run's memory;
* the Secret write succeeded but its answer was lost, or a delete fails: the Secret holds the new
  key, which is registered; the next run deletes the old key.

So at every instant the key in the Secret is a registered deploy key (unit-tested step by step).
Keys with other titles (other environments, tools) are never touched. The private key is never
returned, never put in a diff (fingerprints only) and never written anywhere but the Secret.

The Secret is read and written by a store (:class:`~..kube.secrets.KubernetesSecretStore`, a fake in
the tests), whose failures are :class:`~..kube.client.KubeError`; :func:`apply` reports every failure
as :class:`FluxCredentialsError`, with the state things were left in.
"""

from __future__ import annotations

import base64
import re
import traceback
from dataclasses import dataclass, field

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from ansible_collections.biomage.iac.plugins.module_utils.github.client import UNKNOWN, GitHubError
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError

try:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the module
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

SECRET_KEYS = ("identity", "identity.pub", "known_hosts")
REGENERATE_CHOICES = ("never", "always")
KNOWN_HOSTS_LINE = re.compile(r"^(?P<hosts>\S+)\s+(?P<type>[a-z0-9@.-]+)\s+(?P<body>[A-Za-z0-9+/]+={0,3})(?:\s.*)?$")
NEW_KEY = "(a new ed25519 key)"


class FluxCredentialsError(BiomageError):
    """A failure worded for the operator: what failed, what state things are in, the fix."""


# -- key pairs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPair:
    private: str = field(repr=False)
    public: str

    @property
    def fingerprint(self):
        return deploy_keys.fingerprint(self.public)

    @property
    def key_type(self):
        return self.public.split()[0]


def _require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise FluxCredentialsError(f"the cryptography Python library is required: {CRYPTOGRAPHY_IMPORT_ERROR}")


def generate_keypair(comment=""):
    """A new ed25519 key pair, in memory only (OpenSSH formats, as Flux's ``identity`` expects)."""
    _require_cryptography()
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return KeyPair(private=private, public=f"{public.decode('ascii')} {comment}".strip())


def load_keypair(identity):
    """The key pair of a Secret's ``identity`` (OpenSSH or PEM, as written by this module or by
    ``flux bootstrap``). Raises FluxCredentialsError (without any key material) when unusable."""
    _require_cryptography()
    data = (identity or "").encode("utf-8")
    if not data.strip():
        raise FluxCredentialsError("its identity is empty")
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except TypeError as exc:  # encrypted, or a key type OpenSSH cannot represent
        raise FluxCredentialsError(f"its identity cannot be used without a password ({exc})") from None
    except (ValueError, AttributeError, UnsupportedAlgorithm) as exc:
        raise FluxCredentialsError(f"its identity is not a private key this module can read ({exc})") from None
    return KeyPair(private=identity, public=public.decode("ascii"))


def normalize_known_hosts(text):
    """known_hosts as written to the Secret: stripped lines, no blank lines, a final newline.

    Raises FluxCredentialsError naming the first malformed line (validated before any change)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    entries = [line for line in lines if not line.startswith("#")]
    if not entries:
        raise FluxCredentialsError(
            "known_hosts is empty. Fix: pass the Git host's published SSH host keys "
            "(the flux role pins GitHub's in flux_known_hosts)."
        )
    for number, line in enumerate(entries, 1):
        match = KNOWN_HOSTS_LINE.match(line)
        if not match:
            raise FluxCredentialsError(
                f"known_hosts entry {number} is not '<host> <key type> <base64 key>': {line[:80]!r}. "
                "Fix: copy the entries exactly as the Git host publishes them."
            )
        try:
            base64.b64decode(match["body"], validate=True)
        except ValueError:
            raise FluxCredentialsError(f"known_hosts entry {number}'s key is not base64: {line[:80]!r}") from None
    return "\n".join(lines) + "\n"


def describe_known_hosts(text):
    """Host key fingerprints, as shown in diffs."""
    shown = []
    for line in (text or "").splitlines():
        match = KNOWN_HOSTS_LINE.match(line.strip())
        if match:
            shown.append(
                f"{match['hosts']} {match['type']} {deploy_keys.fingerprint(match['type'] + ' ' + match['body'])}"
            )
    return shown


# -- planning --------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a run does. ``current`` is the Secret's usable key pair (None when it has none)."""

    reasons: list = field(default_factory=list)
    current: KeyPair | None = None
    generate: bool = False  # a new key pair replaces the Secret's
    register: bool = False  # add ``current``'s public key (deleted on GitHub) as a deploy key
    write_secret: bool = False
    delete: list = field(default_factory=list)  # deploy keys deleted after the switch
    keep: dict | None = None  # the registered deploy key of ``current``
    warnings: list = field(default_factory=list)

    @property
    def changed(self):
        return bool(self.generate or self.register or self.write_secret or self.delete)


def secret_data(keypair, known_hosts, existing=None):
    """The Secret's wanted data; an equivalent ``identity.pub`` already there is kept as it is."""
    public = keypair.public.strip() + "\n"
    if existing is not None and keypair.private == existing.data.get("identity"):
        old_public = existing.data.get("identity.pub", "")
        try:
            if deploy_keys.normalize(old_public) == deploy_keys.normalize(keypair.public):
                public = old_public
        except deploy_keys.DeployKeyError:
            pass
    return {"identity": keypair.private, "identity.pub": public, "known_hosts": known_hosts}


def plan(secret, keys, title, read_only, known_hosts, regenerate="never"):
    """Decide what to do from what was read. Raises FluxCredentialsError before any change."""
    if regenerate not in REGENERATE_CHOICES:
        raise FluxCredentialsError(f"regenerate={regenerate!r}: choose one of {', '.join(REGENERATE_CHOICES)}")
    known_hosts = normalize_known_hosts(known_hosts)
    result = Plan()
    same_title = [k for k in keys if k["title"] == title]
    current = None
    if secret is not None:
        try:
            current = load_keypair(secret.data.get("identity"))
        except FluxCredentialsError as exc:
            if regenerate == "never":
                raise FluxCredentialsError(
                    f"the Secret exists but {exc}; nothing was changed. Fix: if Flux must get a new key, re-run with "
                    "regenerate=always (flux role: -e flux_regenerate=always): a new key is registered and replaces "
                    "the Secret's content."
                ) from None
            result.reasons.append(f"the Secret holds no usable key ({exc})")
    result.current = current

    if secret is None:
        result.reasons.append("the Secret does not exist")
    elif regenerate == "always" and current is not None:
        result.reasons.append("regenerate=always")
    if secret is None or regenerate == "always":
        result.generate = result.write_secret = True
        result.delete = list(same_title)
        old = current and next((k for k in keys if _same(k, current.public)), None)
        if old is not None and old["title"] != title:
            result.warnings.append(
                f"the previous key {current.fingerprint} stays registered under the title {old['title']!r}, which "
                f"this module never deletes: delete it in the repository's deploy key settings once no cluster uses it."
            )
        return result

    steps = deploy_keys.plan(keys, title, current.public, read_only, exclusive=True)
    conflicting = [k for k in steps["delete"] if _same(k, current.public)]
    if conflicting:
        mode = "read-only" if conflicting[0]["read_only"] else "read-write"
        raise FluxCredentialsError(
            f"the Secret's key {current.fingerprint} is registered {mode} but read_only={read_only} is wanted; "
            "deploy keys are immutable and deleting it to re-add it would leave Flux without access. Nothing was "
            "changed. Fix: re-run with regenerate=always (flux role: -e flux_regenerate=always): a new key with the "
            "wanted access is added before the old one is deleted."
        )
    result.keep = steps["keep"]
    result.delete = steps["delete"]
    if steps["add"]:
        result.register = True
        result.reasons.append(f"the Secret's key {current.fingerprint} is not a deploy key of the repository")
    if result.keep is not None and result.keep["title"] != title:
        result.warnings.append(
            f"the Secret's key {current.fingerprint} is registered under the title {result.keep['title']!r}, not "
            f"{title!r}; rotate once with regenerate=always to register a key under {title!r}."
        )
    if result.delete:
        shown = ", ".join(deploy_keys.fingerprint(k["key"]) for k in result.delete)
        result.reasons.append(f"older keys titled {title!r} are no longer used ({shown})")
    wanted = secret_data(current, known_hosts, secret)
    drifted = sorted(k for k in set(wanted) | set(secret.data) if wanted.get(k) != secret.data.get(k))
    if drifted:
        result.write_secret = True
        verb = "differs" if len(drifted) == 1 else "differ"
        result.reasons.append(f"the Secret's {', '.join(drifted)} {verb} from the wanted content (same key)")
    return result


def _same(key, public):
    return deploy_keys.normalize(key["key"]) == deploy_keys.normalize(public)


# -- applying --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    keypair: KeyPair | None  # the key pair the Secret holds afterwards (None: a new one, check mode)
    added: dict | None = None
    deleted: list = field(default_factory=list)
    secret_action: str = "unchanged"  # noqa: S105 - created | replaced | unchanged


def apply(
    steps,
    secret,
    github,
    store,
    owner,
    repo,
    title,
    read_only,
    known_hosts,
    comment="",
    check_mode=False,
    protect=lambda value: None,
):
    """Carry out a plan in the safe order. ``protect`` receives every private value (for no_log).

    ``store`` writes the Secret (``write(data, existing, dry_run=False)``, raising KubeError) and names it
    (``where``); ``github`` is the GitHub client of the deploy keys.

    In check mode nothing is generated or called: the outcome describes what would happen."""
    known_hosts = normalize_known_hosts(known_hosts)
    keypair = steps.current
    outcome = Outcome(keypair=None if steps.generate else keypair)
    if steps.write_secret:
        outcome.secret_action = "created" if secret is None else "replaced"
    if check_mode:
        outcome.deleted = list(steps.delete)
        if steps.generate or steps.register:
            public = None if steps.generate else deploy_keys.normalize(keypair.public)
            outcome.added = {"id": None, "title": title, "key": public, "read_only": read_only}
        return outcome

    if steps.generate:
        keypair = generate_keypair(comment)
        protect(keypair.private)
        outcome.keypair = keypair
    data = secret_data(keypair, known_hosts, secret)
    if steps.write_secret and (steps.generate or steps.register):
        # validate before mutate: namespace, permissions and admission, before GitHub is changed
        try:
            store.write(data, secret, dry_run=True)
        except KubeError as exc:
            raise FluxCredentialsError(str(exc), **exc.details) from None
    if steps.generate or steps.register:
        wanted = {"title": title, "key": deploy_keys.normalize(keypair.public), "read_only": read_only}
        try:
            outcome.added = deploy_keys.apply(github, owner, repo, {"add": wanted, "delete": []})
        except GitHubError as exc:
            hint = ""
            if exc.status == 422 and not steps.generate:
                hint = (
                    " GitHub accepts a key as a deploy key of one repository only: if the Secret's key is registered "
                    "elsewhere, re-run with regenerate=always to give Flux a key of its own."
                )
            if exc.outcome == UNKNOWN:
                raise FluxCredentialsError(
                    f"{exc} The {store.where} is as it was; GitHub may have registered the key: a re-run reads the "
                    f"keys back and converges (a key the {store.where} does not hold is deleted).{hint}"
                ) from None
            raise FluxCredentialsError(f"{exc} Nothing was changed: the {store.where} is as it was.{hint}") from None
    if steps.write_secret:
        try:
            store.write(data, secret)
        except KubeError as exc:
            if steps.generate:
                before = f"the previous key {steps.current.fingerprint}" if steps.current else "no Secret"
                raise FluxCredentialsError(
                    f"{exc} The new key {keypair.fingerprint} was added to {owner}/{repo} before this write; unless "
                    f"the API server stored the write anyway, there is still {before}. Nothing was deleted, so the key "
                    "the Secret holds is registered and Flux keeps its access. Re-running (regenerate=never) deletes "
                    "the key the Secret does not hold; to rotate, fix the cause and re-run with regenerate=always.",
                    **exc.details,
                ) from None
            raise FluxCredentialsError(str(exc), **exc.details) from None
    for key in steps.delete:
        try:
            deploy_keys.apply(github, owner, repo, {"add": None, "delete": [key]})
        except GitHubError as exc:
            raise FluxCredentialsError(
                f"{exc} The {store.where} holds the key {keypair.fingerprint}, which is registered; the older key "
                f"{deploy_keys.fingerprint(key['key'])} (id {key['id']}) could not be deleted yet. Fix: re-run; the "
                "next run deletes it."
            ) from None
        outcome.deleted.append(key)
    return outcome


def describe_state(secret_keypair, secret_exists, known_hosts, keys, store_where):
    """The before/after of a diff: fingerprints only, never key material."""
    if not secret_exists:
        secret = None
    else:
        identity = NEW_KEY if secret_keypair is None else f"{secret_keypair.fingerprint} ({secret_keypair.key_type})"
        secret = {"identity": identity, "known_hosts": describe_known_hosts(known_hosts)}
    return {store_where: secret, "deploy_keys": [deploy_keys.describe(k) for k in keys]}
