# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans for GitHub Actions repository variables and secrets (what to do, before doing it).

Variables can be read back, so their plan is exact. Secrets cannot (GitHub returns only their
names and dates), so a present secret is rewritten only when the caller forces it.
"""

from __future__ import annotations

import re

# GitHub: alphanumerics and underscores, not starting with a digit or GITHUB_ (case-insensitive)
NAME = re.compile(r"^(?![0-9])(?!GITHUB_)[A-Z0-9_]+$")
MAX_VARIABLE_BYTES = 48 * 1024


class ActionsSettingError(Exception):
    """An invalid variable or secret request, worded with the fix."""


def normalise_name(name, kind):
    upper = (name or "").upper()
    if not NAME.match(upper):
        raise ActionsSettingError(
            f"{kind} name {name!r} is invalid. Fix: use letters, digits and underscores, not starting "
            "with a digit or GITHUB_."
        )
    return upper


def plan_variable(current, value, state):
    """``create``, ``update``, ``delete`` or ``unchanged`` for a variable (``current`` None = absent)."""
    if state == "absent":
        return "delete" if current is not None else "unchanged"
    if value is None or len(value.encode("utf-8")) > MAX_VARIABLE_BYTES:
        raise ActionsSettingError(
            f"a variable value must be given and at most {MAX_VARIABLE_BYTES} bytes. Fix: check the value."
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


def apply_secret(client, owner, repo, name, value, action):
    if action in ("create", "update"):
        client.put_secret(owner, repo, name, value)
    elif action == "delete":
        client.delete_secret(owner, repo, name)
