# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitHub Actions repository variables and secrets: the plan (what to do, before doing it), its
application, and the diff shown for it.

Variables can be read back, so their plan is exact. Secrets cannot (GitHub returns only their
names and dates), so a present secret is rewritten only when the caller forces it.
"""

from __future__ import annotations

import contextlib
import re

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github.client import NOT_APPLIED, GitHubError

# GitHub: alphanumerics and underscores, not starting with a digit or GITHUB_ (case-insensitive)
NAME = re.compile(r"^(?![0-9])(?!GITHUB_)[A-Z0-9_]+$")
MAX_VARIABLE_BYTES = 48 * 1024


class ActionsSettingError(GitHubError):
    """A variable or secret that cannot be ensured, worded with the fix: an invalid request
    (``status`` None) or GitHub's refusal (``status`` is its HTTP status)."""


def normalise_name(name, kind):
    upper = (name or "").upper()
    if not NAME.match(upper):
        raise ActionsSettingError(
            f"{kind} name {name!r} is invalid.",
            fix="use letters, digits and underscores, not starting with a digit or GITHUB_.",
        )
    return upper


def plan_variable(current, value, state):
    """``create``, ``update``, ``delete`` or ``unchanged`` for a variable (``current`` None = absent)."""
    if state == "absent":
        return "delete" if current is not None else "unchanged"
    if value is None or len(value.encode("utf-8")) > MAX_VARIABLE_BYTES:
        raise ActionsSettingError(
            f"a variable value must be given and at most {MAX_VARIABLE_BYTES} bytes.", fix="check the value."
        )
    if current is None:
        return "create"
    return "update" if current.get("value") != value else "unchanged"


def apply_variable(client, owner, repo, name, value, action):
    if action == "create":
        client.create_variable(owner, repo, name, value)
    elif action == "update":
        client.update_variable(owner, repo, name, value)
    elif action == "delete":
        client.delete_variable(owner, repo, name)


def plan_secret(current, state, force):
    """``create``, ``update``, ``delete`` or ``unchanged`` for a secret (``current`` None = absent).

    An existing secret's value cannot be read, so it is ``unchanged`` (value not compared) unless
    ``force`` asks for it to be written again.
    """
    if state == "absent":
        return "delete" if current is not None else "unchanged"
    if current is None:
        return "create"
    return "update" if force else "unchanged"


def apply_secret(client, owner, repo, name, value, action, current=None):
    if action in ("create", "update"):
        client.put_secret(owner, repo, name, value, previous=current)
    elif action == "delete":
        client.delete_secret(owner, repo, name)


@contextlib.contextmanager
def _setting(owner, repo, kind, name):
    """Any error of the block as an :class:`ActionsSettingError` naming the repository and setting."""
    try:
        yield
    except BiomageError as exc:
        raise ActionsSettingError(
            f"{owner}/{repo} {kind} {name}: {exc.message}",
            status=getattr(exc, "status", None),
            fix=exc.fix,
            outcome=getattr(exc, "outcome", NOT_APPLIED),
        ) from exc


def ensure_variable(client, owner, repo, name, value, state, check_mode=False):
    """Read, plan and (unless ``check_mode``) apply a variable.

    Returns ``(name, current, action)``: the name as GitHub stores it, the variable before (None when
    absent) and the action taken (or planned).
    """
    return _ensure(
        "variable",
        owner,
        repo,
        name,
        check_mode,
        read=client.get_variable,
        plan=lambda current: plan_variable(current, value, state),
        write=lambda stored_name, action, current: apply_variable(client, owner, repo, stored_name, value, action),
    )


def ensure_secret(client, owner, repo, name, value, state, force=False, check_mode=False):
    """Read, plan and (unless ``check_mode``) apply a secret; returns ``(name, current, action)`` as
    :func:`ensure_variable` does (``current`` holds the secret's metadata, never its value)."""
    return _ensure(
        "secret",
        owner,
        repo,
        name,
        check_mode,
        read=client.get_secret,
        plan=lambda current: plan_secret(current, state, force),
        write=lambda stored_name, action, current: apply_secret(
            client, owner, repo, stored_name, value, action, current
        ),
    )


def _ensure(kind, owner, repo, name, check_mode, read, plan, write):
    """The steps both kinds take; ``read``, ``plan`` and ``write`` are what differs between them."""
    with _setting(owner, repo, kind, name):
        stored_name = normalise_name(name, kind)
        current = read(owner, repo, stored_name)
        action = plan(current)
        if action != "unchanged" and not check_mode:
            write(stored_name, action, current)
    return stored_name, current, action


def _text_diff(label, before, after):
    return {"before_header": label, "after_header": label, "before": before, "after": after}


def variable_diff(owner, repo, name, current, value, state):
    """The variable's value before and after (one line each; empty when absent)."""
    before = current.get("value") if current else None
    after = value if state == "present" else None
    return _text_diff(
        f"{owner}/{repo} vars.{name}",
        "" if before is None else before + "\n",
        "" if after is None else after + "\n",
    )


def secret_diff(owner, repo, name, current, action, state):
    """Whether the secret exists before and after, and whether its value is new; never a value."""
    if state != "present":
        after = ""
    elif action == "unchanged":
        after = "present (value not readable)\n"
    else:
        after = "present (new value)\n"
    before = "present (value not readable)\n" if current is not None else ""
    return _text_diff(f"{owner}/{repo} secrets.{name}", before, after)
