# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shape in which every biomage.iac module reports what it will change (or changed).

A module that can change something returns ``plan``: a list of entries, one per resource::

    {"kind": "CloudFormation stack", "name": "biomage-dynamo-staging", "action": "update",
     "reason": "template changed"}

``action`` is one of :data:`ACTIONS`; ``unchanged`` entries may be left out. Entries never carry
values (no parameters, no keys, no tokens): a kind, a name, an action and a short reason only. The
``biomage.iac.plan`` callback sums them per role and for the run (docs/plan.md).
"""

from __future__ import annotations

ACTIONS = ("create", "update", "replace", "delete", "adopt", "rotate", "unchanged")
# the actions the summary line counts, in its order
COUNTED = ("create", "update", "replace", "delete")
MAX_REASON = 200


def entry(kind, name, action, reason=""):
    """One plan entry; raises ValueError on an unknown action (a programming error)."""
    if action not in ACTIONS:
        raise ValueError(f"plan action {action!r} is not one of {', '.join(ACTIONS)}")
    return {"kind": str(kind), "name": str(name), "action": action, "reason": str(reason or "")[:MAX_REASON]}


def is_entry(value):
    """True for a dict in the plan shape."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("kind"), str)
        and isinstance(value.get("name"), str)
        and value.get("action") in ACTIONS
    )


def counts(entries):
    """``{action: n}`` over ``entries`` for every action (zeros included)."""
    totals = dict.fromkeys(ACTIONS, 0)
    for item in entries:
        totals[item["action"]] += 1
    return totals


def summary_line(entries, applied=False):
    """``Plan: 3 to create, 2 to update, 1 to replace, 0 to delete`` (``Applied: 3 created, ...``)."""
    totals = counts(entries)
    if applied:
        done = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
        parts = [f"{totals[action]} {done[action]}" for action in COUNTED]
        head = "Applied"
    else:
        parts = [f"{totals[action]} to {action}" for action in COUNTED]
        head = "Plan"
    extra = [f"{totals[action]} to {action}" for action in ("adopt", "rotate") if totals[action]]
    return f"{head}: {', '.join(parts + extra)}"
