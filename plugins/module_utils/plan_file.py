# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan files: what a check run planned, and the fingerprint an apply compares before any change.

A plan file is the ``biomage.iac.plan`` callback's JSON plus ``fingerprint`` (one SHA-256 per input
file: templates, cluster config, charts, release files, inventory; and the live CloudFormation stacks'
status and last update time) and ``change_sets`` (stack -> change set id, when the stacks module keeps
its planned change sets). :func:`compare` says, in words, why an apply must not use a plan.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

FORMAT = 1
MAX_FILES = 20000
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_PLAN_BYTES = 8 * 1024 * 1024
SHOWN = 10


class PlanFileError(BiomageError):
    """A plan file that cannot be used (unreadable, or planned for other inputs or another live state)."""


def _digest_file(path):
    sha = hashlib.sha256()
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise PlanFileError(f"{path} has {size} bytes, more than an input may have ({MAX_FILE_BYTES}).")
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            sha.update(block)
    return sha.hexdigest()


def input_digests(root, inputs):
    """``{relative path: sha256}`` of every file under ``inputs`` (paths relative to ``root``; missing ones
    are recorded as absent, so a folder that appears later is a change too)."""
    found = {}
    root = os.path.abspath(root)
    for item in inputs:
        top = os.path.normpath(os.path.join(root, item))
        if not os.path.exists(top):
            found[os.path.relpath(top, root)] = "absent"
            continue
        if os.path.isfile(top):
            found[os.path.relpath(top, root)] = _digest_file(top)
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.startswith(".") and name != ".ci.yaml":
                    continue
                found[os.path.relpath(path, root)] = _digest_file(path)
                if len(found) > MAX_FILES:
                    raise PlanFileError(f"more than {MAX_FILES} input files under {root}: name fewer inputs.")
    return dict(sorted(found.items()))


def total(digests):
    """One digest over a ``{name: digest}`` map."""
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode("utf-8")).hexdigest()


def stack_states(stacks, prefix, suffix):
    """``{stack name: "STATUS@last change"}`` of the environment's stacks (DescribeStacks output)."""
    states = {}
    for stack in stacks:
        name = stack.get("StackName", "")
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        when = stack.get("LastUpdatedTime") or stack.get("CreationTime") or ""
        when = when.isoformat() if hasattr(when, "isoformat") else str(when)
        states[name] = f"{stack.get('StackStatus', '?')}@{when}"
    return dict(sorted(states.items()))


def fingerprint(inputs, live):
    return {
        "format": FORMAT,
        "inputs": inputs,
        "inputs_digest": total(inputs),
        "live": live,
        "live_digest": total(live),
    }


def read(path):
    """The plan file at ``path`` (a dict with ``fingerprint``); raises PlanFileError saying what is wrong."""
    fix = "run the plan again (ansible-playbook ... --check -e biomage_plan_out=<file>) and apply that file."
    try:
        size = os.path.getsize(path)
        if size > MAX_PLAN_BYTES:
            raise PlanFileError(f"plan file {path} has {size} bytes, more than a plan may have.", fix=fix)
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror}.", fix=fix) from None
    except ValueError as exc:
        raise PlanFileError(f"plan file {path} is not JSON ({exc}).", fix=fix) from None
    return validated(data, f"plan file {path}", fix)


HANDED_ON = "the plan handed on by the workflow's plan job (extra variable biomage_plan)"


def handed_on(data):
    """A plan handed on as data (``biomage_plan``: what a check run's modules return as ``ansible_stats``,
    which an Automation Controller workflow passes to the nodes after it); raises PlanFileError."""
    fix = "run the workflow again from its plan job, or remove the extra variable biomage_plan."
    return validated(data, HANDED_ON, fix)


def validated(data, what, fix):
    """``data`` if it is a plan with a fingerprint of this format; raises PlanFileError naming ``what``."""
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), dict):
        raise PlanFileError(f"{what} has no fingerprint: it is not a plan.", fix=fix)
    if data["fingerprint"].get("format") != FORMAT:
        raise PlanFileError(f"{what} has format {data['fingerprint'].get('format')}, not {FORMAT}.", fix=fix)
    if not isinstance(data.get("change_sets") or {}, dict):
        raise PlanFileError(f"{what} has change_sets that are not a mapping of stack names.", fix=fix)
    return data


def handoff(fingerprint=None, change_sets=None):
    """What a check run's module returns as ``ansible_stats`` (aggregated over the run) so that a controller's
    workflow hands the plan to its apply as the extra variable ``biomage_plan`` (see :func:`handed_on`)."""
    plan = {}
    if fingerprint is not None:
        plan["fingerprint"] = fingerprint
    if change_sets:
        plan["change_sets"] = change_sets
    return {"data": {"biomage_plan": plan}, "per_host": False, "aggregate": True}


def _differences(before, after, what):
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None or old == "absent":
            lines.append(f"{what} {name} was added")
        elif new is None or new == "absent":
            lines.append(f"{what} {name} was removed")
        elif what == "stack":
            lines.append(f"stack {name} changed ({old} -> {new})")
        else:
            lines.append(f"{what} {name} changed")
    return lines


def compare(planned, current):
    """The reasons (a list of sentences) why ``current`` is not what ``planned`` was made from; [] if equal."""
    reasons = []
    if planned.get("inputs_digest") != current.get("inputs_digest"):
        reasons += _differences(planned.get("inputs") or {}, current.get("inputs") or {}, "input")
    if planned.get("live_digest") != current.get("live_digest"):
        reasons += _differences(planned.get("live") or {}, current.get("live") or {}, "stack")
    return reasons


def change_set_problems(change_sets, describe):
    """Why the plan file's change sets cannot be executed: ``describe(stack, id)`` returns the change set
    (DescribeChangeSet) or None when it is gone. [] when every one is CREATE_COMPLETE and AVAILABLE."""
    reasons = []
    for stack, record in sorted((change_sets or {}).items()):
        change_set_id = record.get("id") if isinstance(record, dict) else record
        if not change_set_id:
            reasons.append(f"the plan file names no change set id for stack {stack}")
            continue
        found = describe(stack, str(change_set_id))
        if found is None:
            reasons.append(f"change set {change_set_id} of stack {stack} no longer exists")
            continue
        status, execution = found.get("Status"), found.get("ExecutionStatus", "AVAILABLE")
        if status != "CREATE_COMPLETE" or execution != "AVAILABLE":
            reasons.append(f"change set {change_set_id} of stack {stack} is {status}/{execution}")
    return reasons


def refusal(source, reasons):
    """The PlanFileError an apply raises before any change (``source``: a plan file's path, or HANDED_ON)."""
    shown = "; ".join(reasons[:SHOWN]) + (f"; and {len(reasons) - SHOWN} more" if len(reasons) > SHOWN else "")
    if source == HANDED_ON:
        what, fix = source, "review the new plan: run the workflow again from its plan job."
    else:
        what = f"plan file {source}"
        fix = "review the new plan: run the plan again (--check -e biomage_plan_out=<file>) and apply that file."
    return PlanFileError(
        f"refusing to apply {what}: the inputs or the live state changed since it was planned: {shown}. "
        "Nothing was changed.",
        fix=fix,
    )
