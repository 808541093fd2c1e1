"""Flux's credentials rotation planner and applier, against a fake GitHub and a fake Secret store.

The fakes share one call log (to assert ORDER: add, then Secret write, then delete) and check after
every mutating call that the key held by the Secret is a registered deploy key: Flux must never be
left without access, whichever step fails.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.flux import credentials as fc
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError
from ansible_collections.biomage.iac.plugins.module_utils.kube.secrets import StoredSecret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.unit.plugins.module_utils.github.test_deploy_keys import new_key

TITLE = "flux-biomage-staging"
KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
ROLE_DEFAULTS = Path(__file__).resolve().parents[5] / "roles/flux/defaults/main.yml"


class World:
    """GitHub's deploy keys and the Secret, with one ordered log of the mutating calls."""

    def __init__(self, secret=None, keys=None):
        self.secret = secret
        self.keys = list(keys or [])
        self.log: list[tuple] = []
        self.fail: dict[str, str] = {}  # step -> "before" | "after" (the step happened, its answer was lost)
        self.next_id = 100
        self.violations: list[str] = []

    # the invariant ------------------------------------------------------------------------------
    def check(self, after):
        if self.secret is None:
            return
        try:
            public = fc.load_keypair(self.secret.data.get("identity")).public
        except fc.FluxCredentialsError:
            return
        if not any(deploy_keys.normalize(k["key"]) == deploy_keys.normalize(public) for k in self.keys):
            self.violations.append(f"after {after}: the Secret's key is not registered")

    def _maybe_fail(self, step, when):
        if self.fail.get(step) == when:
            del self.fail[step]
            if step in ("add", "delete"):
                raise GitHubError(f"GitHub {step} failed", status=500)
            raise KubeError(f"cannot write the Secret ({step}): 500 etcdserver: request timed out.")

    def registered(self, public):
        return [k for k in self.keys if deploy_keys.normalize(k["key"]) == deploy_keys.normalize(public)]


class FakeGitHub:
    def __init__(self, world):
        self.w = world

    def list_deploy_keys(self, owner, repo):
        return [dict(k) for k in self.w.keys]

    def add_deploy_key(self, owner, repo, title, key, read_only):
        self.w._maybe_fail("add", "before")
        self.w.next_id += 1
        entry = {"id": self.w.next_id, "title": title, "key": key, "read_only": read_only}
        self.w.keys.append(entry)
        self.w.log.append(("add", title, deploy_keys.fingerprint(key)))
        self.w.check("add")
        self.w._maybe_fail("add", "after")
        return dict(entry)

    def delete_deploy_key(self, owner, repo, key_id):
        self.w._maybe_fail("delete", "before")
        self.w.keys = [k for k in self.w.keys if k["id"] != key_id]
        self.w.log.append(("delete", key_id))
        self.w.check("delete")
        self.w._maybe_fail("delete", "after")


class FakeStore:
    where = "Secret flux-system/flux-system"

    def __init__(self, world):
        self.w = world

    def read(self):
        return self.w.secret

    def write(self, data, existing, dry_run=False):
        assert set(data) == set(fc.SECRET_KEYS)
        if dry_run:
            self.w._maybe_fail("dry_run", "before")
            self.w.log.append(("dry_run", "create" if existing is None else "replace"))
            return
        self.w._maybe_fail("write", "before")
        assert (existing is None) == (self.w.secret is None), "create only when missing, replace only when present"
        self.w.secret = StoredSecret(data=dict(data), resource_version=str(len(self.w.log)))
        self.w.log.append(("write", fc.load_keypair(data["identity"]).fingerprint))
        self.w.check("write")
        self.w._maybe_fail("write", "after")


def stored(keypair, known_hosts=KNOWN_HOSTS, public=None):
    return StoredSecret(
        data={
            "identity": keypair.private,
            "identity.pub": public if public is not None else keypair.public + "\n",
            "known_hosts": known_hosts,
        },
        resource_version="1",
    )


def key(key_id, title, public, read_only=True):
    return {"id": key_id, "title": title, "key": deploy_keys.normalize(public), "read_only": read_only}


def converge(world, regenerate="never", check_mode=False, read_only=True, known_hosts=KNOWN_HOSTS):
    """What the module does: read both sides, plan, apply."""
    protected = []
    github, store = FakeGitHub(world), FakeStore(world)
    secret = store.read()
    steps = fc.plan(secret, github.list_deploy_keys("o", "r"), TITLE, read_only, known_hosts, regenerate)
    outcome = fc.apply(
        steps, secret, github, store, "o", "r", TITLE, read_only, known_hosts,
        comment=TITLE, check_mode=check_mode, protect=protected.append,
    )  # fmt: skip
    return steps, outcome, protected


def secret_fingerprint(world):
    return fc.load_keypair(world.secret.data["identity"]).fingerprint


# -- the states -------------------------------------------------------------------------------------
def test_missing_secret_generates_a_key_adds_it_then_writes_the_secret() -> None:
    other = key(1, "flux-biomage-production", new_key())
    world = World(keys=[other])
    steps, outcome, protected = converge(world)
    assert steps.generate and steps.changed and steps.reasons == ["the Secret does not exist"]
    fingerprint = outcome.keypair.fingerprint
    assert world.log == [("dry_run", "create"), ("add", TITLE, fingerprint), ("write", fingerprint)]
    assert outcome.secret_action == "created" and outcome.added["title"] == TITLE
    assert world.keys[0] == other, "another environment's key is untouched"
    assert protected == [outcome.keypair.private] and world.violations == []
    assert world.secret.data["known_hosts"] == KNOWN_HOSTS
    assert deploy_keys.normalize(world.secret.data["identity.pub"]) == deploy_keys.normalize(outcome.keypair.public)
    assert world.secret.data["identity"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_missing_secret_deletes_leftovers_of_the_title_only_after_the_write() -> None:
    leftover, other = key(1, TITLE, new_key()), key(2, "ci", new_key())
    world = World(keys=[leftover, other])
    _steps, outcome, _protected = converge(world)
    assert [c[0] for c in world.log] == ["dry_run", "add", "write", "delete"]
    assert world.log[-1] == ("delete", 1)
    assert [k["id"] for k in world.keys] == [2, 101] and outcome.deleted == [leftover]


def test_registered_key_means_no_change_and_no_call() -> None:
    current = fc.generate_keypair(TITLE)
    world = World(stored(current), [key(7, TITLE, current.public), key(8, "flux-biomage-production", new_key())])
    steps, outcome, _protected = converge(world)
    assert not steps.changed and world.log == [] and steps.reasons == []
    assert outcome.keypair.fingerprint == current.fingerprint and outcome.secret_action == "unchanged"
    assert steps.keep["id"] == 7


def test_key_deleted_on_github_is_added_again_and_the_secret_left_alone() -> None:
    current = fc.generate_keypair(TITLE)
    world = World(stored(current), [key(8, "flux-biomage-production", new_key())])
    steps, _outcome, _protected = converge(world)
    assert steps.register and not steps.generate and not steps.write_secret
    assert world.log == [("add", TITLE, current.fingerprint)]
    assert world.secret.resource_version == "1", "the Secret is not written"
    assert "not a deploy key" in steps.reasons[0]


def test_stale_key_with_the_title_is_deleted_and_the_secret_left_alone() -> None:
    current, stale = fc.generate_keypair(), new_key()
    world = World(stored(current), [key(1, TITLE, stale), key(2, TITLE, current.public)])
    steps, _outcome, _protected = converge(world)
    assert world.log == [("delete", 1)] and not steps.write_secret
    assert [k["id"] for k in world.keys] == [2]


def test_regenerate_always_rotates_add_then_write_then_delete() -> None:
    old = fc.generate_keypair()
    other = key(9, "flux-biomage-production", new_key())
    world = World(stored(old), [key(1, TITLE, old.public), other])
    steps, outcome, _protected = converge(world, regenerate="always")
    new = outcome.keypair
    assert steps.reasons == ["regenerate=always"] and new.fingerprint != old.fingerprint
    assert world.log == [
        ("dry_run", "replace"),
        ("add", TITLE, new.fingerprint),
        ("write", new.fingerprint),
        ("delete", 1),
    ]
    assert secret_fingerprint(world) == new.fingerprint and outcome.secret_action == "replaced"
    assert [k["title"] for k in world.keys] == ["flux-biomage-production", TITLE] and other in world.keys
    assert world.violations == []


def test_known_hosts_drift_rewrites_the_secret_and_keeps_its_key() -> None:
    current = fc.generate_keypair()
    world = World(stored(current, known_hosts="github.com ssh-rsa AAAAB3NzaC1yc2E=\n"), [key(1, TITLE, current.public)])
    steps, _outcome, _protected = converge(world)
    assert steps.write_secret and not steps.generate and not steps.register
    assert steps.reasons == ["the Secret's known_hosts differs from the wanted content (same key)"]
    assert world.log == [("write", current.fingerprint)], "no dry run needed: GitHub is not touched"
    assert world.secret.data["identity"] == current.private and world.secret.data["known_hosts"] == KNOWN_HOSTS


def test_identity_pub_drift_is_repaired_but_a_different_comment_is_not_a_change() -> None:
    current = fc.generate_keypair("flux")
    registered = [key(1, TITLE, current.public)]
    same_material = " ".join(current.public.split()[:2]) + " another-comment\n"
    assert not converge(World(stored(current, public=same_material), registered))[0].changed

    world = World(stored(current, public=new_key()), registered)
    assert converge(world)[0].write_secret
    assert deploy_keys.normalize(world.secret.data["identity.pub"]) == deploy_keys.normalize(current.public)


@pytest.mark.parametrize(
    ("identity", "why"),
    [("", "empty"), ("not a key", "not a private key"), (None, "empty")],
)
def test_unusable_secret_fails_with_never_before_any_call_and_is_replaced_with_always(identity, why) -> None:
    secret = StoredSecret(data={"username": "git", **({"identity": identity} if identity is not None else {})})
    world = World(secret, [key(1, TITLE, new_key())])
    with pytest.raises(fc.FluxCredentialsError, match=f"{why}.*nothing was changed.*regenerate=always"):
        converge(world)
    assert world.log == []

    steps, outcome, _protected = converge(world, regenerate="always")
    assert steps.generate and "no usable key" in steps.reasons[0]
    assert [c[0] for c in world.log] == ["dry_run", "add", "write", "delete"]
    assert set(world.secret.data) == set(fc.SECRET_KEYS), "only Flux's three keys remain"
    assert secret_fingerprint(world) == outcome.keypair.fingerprint


def test_encrypted_identity_is_refused_without_printing_it() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    with pytest.raises(fc.FluxCredentialsError, match="password") as err:
        fc.load_keypair(pem)
    assert pem.splitlines()[1] not in str(err.value)


def test_keys_written_by_flux_bootstrap_are_adopted() -> None:
    for private in (ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)):
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        pair = fc.load_keypair(pem)
        public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        assert pair.public == public.decode()
        world = World(stored(pair), [key(1, TITLE, pair.public)])
        assert not converge(world)[0].changed


def test_access_mode_change_is_refused_with_never_and_done_by_rotation_with_always() -> None:
    current = fc.generate_keypair()
    world = World(stored(current), [key(1, TITLE, current.public, read_only=True)])
    with pytest.raises(fc.FluxCredentialsError, match=r"registered read-only but read_only=False.*regenerate=always"):
        converge(world, read_only=False)
    assert world.log == []
    _steps, outcome, _protected = converge(world, regenerate="always", read_only=False)
    assert [(k["title"], k["read_only"]) for k in world.keys] == [(TITLE, False)]
    assert world.keys[0]["key"] == deploy_keys.normalize(outcome.keypair.public) and world.violations == []


def test_key_registered_under_another_title_is_kept_and_reported() -> None:
    current = fc.generate_keypair()
    world = World(stored(current), [key(1, "flux-system-main", current.public)])
    steps, _outcome, _protected = converge(world)
    assert not steps.changed and "flux-system-main" in steps.warnings[0]
    steps, _outcome, _protected = converge(world, regenerate="always")
    assert [c[0] for c in world.log] == ["dry_run", "add", "write"], "another title's key is never deleted"
    assert "stays registered under the title 'flux-system-main'" in steps.warnings[0]


# -- check mode -------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["missing", "registered", "unregistered", "stale", "known_hosts", "always"])
def test_check_mode_plans_without_any_mutating_call(state) -> None:
    current = fc.generate_keypair()
    secret = (
        None
        if state == "missing"
        else stored(current, "github.com ssh-rsa AAAA\n" if state == "known_hosts" else KNOWN_HOSTS)
    )
    keys = [] if state == "unregistered" else [key(1, TITLE, current.public)]
    if state == "stale":
        keys.append(key(2, TITLE, new_key()))
    world = World(secret, keys)
    regenerate = "always" if state == "always" else "never"
    steps, outcome, protected = converge(world, regenerate=regenerate, check_mode=True)
    assert world.log == [] and protected == [] and world.secret is secret and world.keys == keys
    assert steps.changed == (state != "registered")
    again = converge(world, regenerate=regenerate)[0]
    assert again.changed == steps.changed, "the real run does what check mode planned"
    if state in ("missing", "always"):
        assert outcome.keypair is None and outcome.added["key"] is None


# -- crashes ----------------------------------------------------------------------------------------
ROTATION_FAILURES = [
    ("dry_run", "before"),
    ("add", "before"),
    ("add", "after"),
    ("write", "before"),
    ("write", "after"),
    ("delete", "before"),
    ("delete", "after"),
]


@pytest.mark.parametrize("start", ["missing", "always"])
@pytest.mark.parametrize(("step", "when"), ROTATION_FAILURES)
def test_a_rotation_failing_at_any_step_converges_on_the_next_run_with_never(start, step, when) -> None:
    other = key(50, "flux-biomage-production", new_key())
    old = fc.generate_keypair()
    leftover = key(1, TITLE, old.public if start == "always" else new_key())
    world = World(stored(old) if start == "always" else None, [leftover, other])
    world.fail = {step: when}
    with pytest.raises(fc.FluxCredentialsError):
        converge(world, regenerate="always" if start == "always" else "never")
    assert world.violations == [], "Flux kept a registered key while the rotation failed"
    if start == "always" and step in ("dry_run", "add", "write") and not (step == "write" and when == "after"):
        assert secret_fingerprint(world) == old.fingerprint, "the old key stays in the Secret"

    world.log.clear()
    _steps, outcome, _protected = converge(world)
    assert world.violations == []
    assert secret_fingerprint(world) == outcome.keypair.fingerprint
    titled = [k for k in world.keys if k["title"] == TITLE]
    assert [k["key"] for k in titled] == [deploy_keys.normalize(outcome.keypair.public)], world.keys
    assert other in world.keys
    if start == "always":
        assert "write" not in [c[0] for c in world.log], "the next run only deletes: the Secret already holds a key"
    assert not converge(world)[0].changed, "a third run changes nothing"


def test_write_failure_after_the_add_explains_the_state_and_the_next_run_keeps_the_old_key() -> None:
    old = fc.generate_keypair()
    world = World(stored(old), [key(1, TITLE, old.public)])
    github, store = FakeGitHub(world), FakeStore(world)

    class Refusing(FakeStore):
        def write(self, data, existing, dry_run=False):
            if not dry_run:
                raise KubeError("cannot replace the Secret flux-system/flux-system: 403 forbidden.")
            super().write(data, existing, dry_run)

    steps = fc.plan(world.secret, github.list_deploy_keys("o", "r"), TITLE, True, KNOWN_HOSTS, "always")
    with pytest.raises(fc.FluxCredentialsError) as err:
        fc.apply(steps, world.secret, github, Refusing(world), "o", "r", TITLE, True, KNOWN_HOSTS)
    message = str(err.value)
    new_fp = next(k for k in world.keys if k["id"] != 1)["key"]
    assert deploy_keys.fingerprint(new_fp) in message and old.fingerprint in message
    assert "Nothing was deleted" in message and "regenerate=never" in message and "403 forbidden" in message
    assert [k["id"] for k in world.keys] == [1, 101]

    steps = fc.plan(world.secret, github.list_deploy_keys("o", "r"), TITLE, True, KNOWN_HOSTS, "never")
    fc.apply(steps, world.secret, github, store, "o", "r", TITLE, True, KNOWN_HOSTS)
    assert [k["id"] for k in world.keys] == [1], "the unused new key is removed, the old one kept"
    assert secret_fingerprint(world) == old.fingerprint


def test_a_failed_dry_run_changes_nothing_on_github() -> None:
    world = World(None, [key(1, TITLE, new_key())])
    world.fail = {"dry_run": "before"}
    with pytest.raises(fc.FluxCredentialsError, match="dry_run"):
        converge(world)
    assert world.log == [] and [k["id"] for k in world.keys] == [1]


def test_readding_a_key_github_refuses_explains_the_fix() -> None:
    current = fc.generate_keypair()
    world = World(stored(current), [])

    class InUse(FakeGitHub):
        def add_deploy_key(self, owner, repo, title, key, read_only):
            raise GitHubError("GitHub API POST .../keys answered 422: Validation Failed (key is already in use).", 422)

    steps = fc.plan(world.secret, [], TITLE, True, KNOWN_HOSTS)
    with pytest.raises(fc.FluxCredentialsError, match=r"one repository only.*regenerate=always"):
        fc.apply(steps, world.secret, InUse(world), FakeStore(world), "o", "r", TITLE, True, KNOWN_HOSTS)


# -- secrets stay secret ----------------------------------------------------------------------------
def test_private_key_is_in_no_repr_plan_or_outcome() -> None:
    world = World()
    steps, outcome, protected = converge(world)
    private = outcome.keypair.private
    body = private.splitlines()[1]
    for shown in (repr(outcome.keypair), repr(world.secret), repr(steps), repr(outcome)):
        assert body not in shown
    assert protected == [private]
    state = fc.describe_state(outcome.keypair, True, KNOWN_HOSTS, world.keys, "secret")
    assert body not in repr(state) and base64.b64encode(private.encode()).decode()[:40] not in repr(state)
    assert state["secret"]["identity"].startswith("SHA256:")


# -- known_hosts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "# only a comment", "github.com", "github.com ssh-ed25519 not*base64"])
def test_malformed_known_hosts_fails_before_anything(bad) -> None:
    world = World()
    with pytest.raises(fc.FluxCredentialsError, match="known_hosts"):
        converge(world, known_hosts=bad)
    assert world.log == []


def test_pinned_github_host_keys_match_githubs_published_fingerprints() -> None:
    """roles/flux pins GitHub's host keys; their fingerprints are those GitHub publishes."""
    pinned = yaml.safe_load(ROLE_DEFAULTS.read_text())["flux_github_known_hosts"]
    shown = fc.describe_known_hosts(fc.normalize_known_hosts("\n".join(pinned)))
    assert shown == [
        "github.com ssh-ed25519 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        "github.com ecdsa-sha2-nistp256 SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        "github.com ssh-rsa SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
    ]


def test_extra_secret_keys_are_dropped_without_a_new_key() -> None:
    """A leftover ``password`` would make Flux try to decrypt an unencrypted identity."""
    current = fc.generate_keypair()
    secret = stored(current)
    secret.data["password"] = "hunter2"
    world = World(secret, [key(1, TITLE, current.public)])
    steps, _outcome, _protected = converge(world)
    assert steps.reasons == ["the Secret's password differs from the wanted content (same key)"]
    assert world.log == [("write", current.fingerprint)] and set(world.secret.data) == set(fc.SECRET_KEYS)
