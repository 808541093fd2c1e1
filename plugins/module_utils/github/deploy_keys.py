# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning and applying a repository's deploy keys, the way keys must be rotated on GitHub.

Deploy keys are immutable, so a rotation is: add the new key, switch the consumer (e.g. Flux's
Secret) to it, and only then delete the old one. A key is identified by its material (type and
base64 body); ``title`` names the consumer (``flux-biomage-staging``). With ``exclusive`` the
other keys carrying the same title (the previous keys of this consumer) are deleted, after the
add; keys with other titles (other environments, other tools) are never touched.

The original system deleted every key before adding its own (a window with no access, and other
clusters' keys lost), and later, through a quoting bug, deleted none for a year.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github.client import UNKNOWN, GitHubError


class DeployKeyError(BiomageError):
    """A public key that is not one (the input is wrong; nothing was asked of GitHub)."""


def normalize(public_key):
    """The comparable part of an OpenSSH public key: ``<type> <base64>`` (the comment dropped)."""
    parts = (public_key or "").split()
    if len(parts) < 2:
        raise DeployKeyError(
            "public_key is not an OpenSSH public key (expected '<type> <base64> [comment]').",
            fix="pass the .pub content, e.g. from community.crypto.openssh_keypair or the Flux Secret's identity.pub.",
        )
    try:
        base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise DeployKeyError(f"public_key's key body is not base64: {exc}") from exc
    return f"{parts[0]} {parts[1]}"


def fingerprint(public_key):
    """OpenSSH's SHA256 fingerprint of a public key (what GitHub shows in its settings)."""
    body = base64.b64decode(normalize(public_key).split()[1])
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def describe(key):
    """A key as shown in plans and diffs: no need to print whole public keys."""
    return {
        "id": key.get("id"),
        "title": key["title"],
        "fingerprint": fingerprint(key["key"]),
        "read_only": key["read_only"],
    }


def plan(existing, title, public_key, read_only, state="present", exclusive=False):
    """What to do: ``{"add": key or None, "delete": [keys], "keep": key or None}``.

    Additions always happen before deletions (see ``apply``), so the consumer keeps access.
    """
    wanted = normalize(public_key) if state == "present" else None
    same_title = [k for k in existing if k["title"] == title]
    result = {"add": None, "delete": [], "keep": None}
    if state == "absent":
        result["delete"] = same_title
        return result
    match = [k for k in existing if normalize(k["key"]) == wanted]
    if match and match[0]["read_only"] == read_only:
        result["keep"] = match[0]
    else:
        # an immutable key whose access mode must change is deleted and added again
        # (GitHub refuses the same material twice)
        result["delete"].extend(match)
        result["add"] = {"title": title, "key": wanted, "read_only": read_only}
    if exclusive:
        result["delete"].extend(k for k in same_title if k not in match)
    return result


def apply(client, owner, repo, steps):
    """Carry out a plan: conflicting same-material keys first, then the add, then stale keys.

    A write that fails raises a GitHubError whose message also says what this call changed before it
    and what a re-run does (the client has read the state back after an ambiguous answer)."""
    added = None
    done = []
    wanted = steps["add"]["key"] if steps["add"] else None
    conflicting = [k for k in steps["delete"] if wanted and normalize(k["key"]) == wanted]
    with _reporting(owner, repo, steps, done):
        for key in conflicting:
            client.delete_deploy_key(owner, repo, key["id"])
            done.append(f"deleted the key {_label(key)}")
        if steps["add"]:
            added = client.add_deploy_key(
                owner, repo, steps["add"]["title"], steps["add"]["key"], steps["add"]["read_only"]
            )
            done.append(f"added the key {_label(added or steps['add'])}")
        for key in steps["delete"]:
            if key not in conflicting:
                client.delete_deploy_key(owner, repo, key["id"])
                done.append(f"deleted the key {_label(key)}")
    return added


def _label(key):
    shown = f"{key.get('title')!r} {fingerprint(key['key'])}"
    return shown + (f" (id {key['id']})" if key.get("id") is not None else "")


@contextlib.contextmanager
def _reporting(owner, repo, steps, done):
    """A GitHubError of the block, amended with what the block changed before it and what a re-run does."""
    try:
        yield
    except GitHubError as exc:
        before = "the failed write may have taken effect; " if exc.outcome == UNKNOWN else ""
        changed = "; ".join(done) if done else "nothing"
        added = any(step.startswith("added") for step in done)
        rerun = "adds the wanted key" if steps["add"] and not added else "deletes the keys still to be deleted"
        exc.message = (
            f"{exc.message} Before this failure, this task changed on {owner}/{repo}: {changed}; {before}"
            f"a re-run reads the repository's keys back and converges (it {rerun} and leaves what is done as it is)."
        )
        exc.args = (exc.message,)
        exc.details["changed_before"] = list(done)
        raise


def changed(steps):
    return bool(steps["add"] or steps["delete"])


def ensure(client, owner, repo, title, public_key, read_only, state="present", exclusive=False, check_mode=False):
    """Read the repository's keys, plan, and apply the plan unless ``check_mode``.

    Returns ``(existing, steps, added)``: the keys before, the plan, the key GitHub added (None in
    check mode or when nothing was added).
    """
    existing = client.list_deploy_keys(owner, repo)
    steps = plan(existing, title, public_key, read_only, state, exclusive)
    added = apply(client, owner, repo, steps) if changed(steps) and not check_mode else None
    return existing, steps, added


def diff(existing, steps, added):
    """The repository's keys before and after the plan, described (``{before, after}``)."""
    after = [k for k in existing if k not in steps["delete"]] + ([added or steps["add"]] if steps["add"] else [])
    return {
        "before": {"deploy_keys": [describe(k) for k in existing]},
        "after": {"deploy_keys": [describe(k) for k in after]},
    }
