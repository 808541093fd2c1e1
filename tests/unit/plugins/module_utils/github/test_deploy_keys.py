"""Deploy key planning: additions before deletions, other consumers' keys never touched."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_key(comment: str = "") -> str:
    public = Ed25519PrivateKey.generate().public_key()
    text = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{text} {comment}".strip()


def registered(key_id: int, title: str, key: str, read_only: bool = True) -> dict:
    return {"id": key_id, "title": title, "key": deploy_keys.normalize(key), "read_only": read_only}


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_deploy_key(self, owner, repo, title, key, read_only):
        self.calls.append(("add", title, key, read_only))
        return {"id": 99, "title": title, "key": key, "read_only": read_only}

    def delete_deploy_key(self, owner, repo, key_id):
        self.calls.append(("delete", key_id))


def test_missing_key_is_added() -> None:
    key = new_key("flux@staging")
    steps = deploy_keys.plan([], "flux-biomage-staging", key, True)
    assert steps["add"] == {"title": "flux-biomage-staging", "key": deploy_keys.normalize(key), "read_only": True}
    assert steps["delete"] == [] and deploy_keys.changed(steps)


def test_present_key_is_kept_whatever_its_comment() -> None:
    key = new_key()
    existing = [registered(1, "flux-biomage-staging", key)]
    steps = deploy_keys.plan(existing, "flux-biomage-staging", f"{key} another-comment", True)
    assert steps == {"add": None, "delete": [], "keep": existing[0]}
    assert not deploy_keys.changed(steps)


def test_rotation_adds_first_and_deletes_old_only_when_exclusive() -> None:
    old, new, other_env = new_key(), new_key(), new_key()
    existing = [registered(1, "flux-biomage-staging", old), registered(2, "flux-biomage-production", other_env)]
    first = deploy_keys.plan(existing, "flux-biomage-staging", new, True)
    assert first["add"] and first["delete"] == []
    existing.append(registered(3, "flux-biomage-staging", new))
    second = deploy_keys.plan(existing, "flux-biomage-staging", new, True, exclusive=True)
    assert second["add"] is None
    assert [k["id"] for k in second["delete"]] == [1], "the production key is never touched"


def test_access_mode_change_deletes_then_re_adds_the_same_material() -> None:
    key = new_key()
    existing = [
        registered(1, "flux-biomage-staging", key, read_only=True),
        registered(2, "flux-biomage-staging", new_key()),
    ]
    steps = deploy_keys.plan(existing, "flux-biomage-staging", key, False, exclusive=True)
    client = RecordingClient()
    deploy_keys.apply(client, "o", "r", steps)
    assert client.calls == [
        ("delete", 1),
        ("add", "flux-biomage-staging", deploy_keys.normalize(key), False),
        ("delete", 2),
    ]


def test_apply_adds_before_deleting_stale_keys() -> None:
    old, new = new_key(), new_key()
    steps = deploy_keys.plan([registered(1, "t", old)], "t", new, True, exclusive=True)
    client = RecordingClient()
    added = deploy_keys.apply(client, "o", "r", steps)
    assert [c[0] for c in client.calls] == ["add", "delete"]
    assert added["id"] == 99


def test_absent_deletes_every_key_of_the_title_only() -> None:
    existing = [registered(1, "t", new_key()), registered(2, "t", new_key()), registered(3, "u", new_key())]
    steps = deploy_keys.plan(existing, "t", None, True, state="absent")
    assert [k["id"] for k in steps["delete"]] == [1, 2] and steps["add"] is None


@pytest.mark.parametrize("bad", ["", "ssh-ed25519", "ssh-ed25519 not*base64"])
def test_malformed_public_key_is_named(bad: str) -> None:
    with pytest.raises(deploy_keys.DeployKeyError, match=r"public_key|base64"):
        deploy_keys.plan([], "t", bad, True)


def test_fingerprint_matches_openssh_format() -> None:
    key = new_key()
    fp = deploy_keys.fingerprint(key)
    assert fp.startswith("SHA256:") and len(fp) == len("SHA256:") + 43
    assert deploy_keys.describe(registered(5, "t", key)) == {
        "id": 5,
        "title": "t",
        "fingerprint": fp,
        "read_only": True,
    }


class ListingClient(RecordingClient):
    def __init__(self, keys: list[dict]) -> None:
        super().__init__()
        self.keys = keys

    def list_deploy_keys(self, owner, repo):
        self.calls.append(("list", owner, repo))
        return self.keys


def test_ensure_reads_plans_and_applies_outside_check_mode_only() -> None:
    old, new = new_key(), new_key()
    client = ListingClient([registered(1, "t", old)])
    existing, steps, added = deploy_keys.ensure(client, "o", "r", "t", new, True, exclusive=True, check_mode=True)
    assert client.calls == [("list", "o", "r")] and added is None
    assert existing == [registered(1, "t", old)] and deploy_keys.changed(steps)
    existing, steps, added = deploy_keys.ensure(client, "o", "r", "t", new, True, exclusive=True)
    assert [c[0] for c in client.calls] == ["list", "list", "add", "delete"] and added["id"] == 99
    diff = deploy_keys.diff(existing, steps, added)
    assert [k["id"] for k in diff["before"]["deploy_keys"]] == [1]
    assert diff["after"]["deploy_keys"] == [deploy_keys.describe(added)]


def test_a_malformed_key_is_a_biomage_error_with_its_fix() -> None:
    with pytest.raises(BiomageError) as caught:
        deploy_keys.normalize("ssh-ed25519")
    assert isinstance(caught.value, deploy_keys.DeployKeyError)
    assert caught.value.fix.startswith("pass the .pub content")
    assert str(caught.value) == (
        "public_key is not an OpenSSH public key (expected '<type> <base64> [comment]'). Fix: pass the .pub "
        "content, e.g. from community.crypto.openssh_keypair or the Flux Secret's identity.pub."
    )
