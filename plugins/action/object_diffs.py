# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.object_diffs on the control node (documented in plugins/modules/object_diffs.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.plugin_utils.controller_action import ControllerAction


def _mapping(value):
    return value if isinstance(value, Mapping) else {}


def object_label(result):
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped) of one kubernetes.core.k8s result, or of a
    definition."""
    obj = _mapping(result.get("result")) if "result" in result or "diff" in result else result
    diff = _mapping(result.get("diff"))
    for candidate in (obj, diff.get("after"), diff.get("before")):
        if isinstance(candidate, Mapping) and candidate.get("kind"):
            obj = candidate
            break
    metadata = _mapping(obj.get("metadata"))
    name = metadata.get("name") or "?"
    if metadata.get("namespace"):
        name = f"{metadata['namespace']}/{name}"
    return f"{obj.get('kind') or 'object'} {name}"


def _entry(label, before, after):
    return {"before_header": label, "after_header": label, "before": before or {}, "after": after or {}}


def diffs(results):
    """The changed objects' labels and their ``diff`` entries, in the order given."""
    labels, entries = [], []
    for result in results:
        if not result.get("changed"):
            continue
        label = object_label(result)
        labels.append(label)
        diff = result.get("diff")
        if isinstance(diff, Mapping) and ("before" in diff or "after" in diff):
            entries.append(_entry(label, diff.get("before"), diff.get("after")))
    return labels, entries


def _provides(result, definition):
    """What an object the call creates (or, in a dry run, would create) gives the objects after it:
    ``("Namespace", name)`` or ``("CRD", group, kind)``; None for anything else."""
    obj = _mapping(result.get("result")) or definition
    kind = obj.get("kind")
    if kind == "Namespace":
        return ("Namespace", _mapping(obj.get("metadata")).get("name"))
    if kind == "CustomResourceDefinition":
        spec = _mapping(obj.get("spec"))
        return ("CRD", spec.get("group"), _mapping(spec.get("names")).get("kind"))
    return None


def _status(message):
    """The API server's Status object that kubernetes.core puts in its message as JSON ({} when there is none)."""
    start = message.find("{")
    try:
        status = json.loads(message[start:]) if start >= 0 else {}
    except ValueError:
        return {}
    return status if isinstance(status, Mapping) else {}


def _namespace_not_found(message, namespace):
    status = _status(message)
    details = _mapping(status.get("details"))
    if status.get("reason") == "NotFound" and details.get("kind") == "namespaces":
        return details.get("name") == namespace
    return f'namespaces "{namespace}" not found' in message.replace('\\"', '"')


def _missing(definition, message, provided):
    """What the call only plans that explains this definition's dry-run error, or None: its namespace (the API
    server's NotFound of that namespace) or its kind's CRD (kubernetes.core finds no such kind)."""
    namespace = _mapping(definition.get("metadata")).get("namespace")
    if namespace and ("Namespace", namespace) in provided and _namespace_not_found(message, namespace):
        return f"in namespace {namespace}, still to be created"
    group = str(definition.get("apiVersion") or "").rpartition("/")[0]
    kind = definition.get("kind")
    if ("CRD", group, kind) in provided and "Failed to find exact match for" in message:
        return f"its CustomResourceDefinition ({kind}.{group}) is still to be created"
    return None


def planned(results, definitions):
    """Check mode: the objects a dry run could not judge because the same call only plans what they need (their
    namespace, their CRD), as ``(labels, diff entries, plan entries, failures)``; any other error is a failure."""
    if len(results) != len(definitions):
        counts = f"{len(results)} results for {len(definitions)} definitions"
        return [], [], [], [f"{counts}: pass the definition list of the call whose results these are"]
    labels, entries, plan, failures = [], [], [], []
    provided = set()
    for result, definition in zip(results, definitions, strict=True):
        label = object_label(definition)
        error = result.get("error")
        if not error:
            if result.get("changed"):
                provided.add(_provides(result, definition))
            continue
        message = str(_mapping(error).get("msg") or error)
        reason = _missing(definition, message, provided)
        if reason is None:
            failures.append(f"{label}: {message}")
            continue
        provided.add(_provides({}, definition))
        labels.append(label)
        entries.append(_entry(label, {}, dict(definition)))
        plan.append(plan_shape.entry(definition.get("kind") or "object", label.partition(" ")[2], "create", reason))
    return labels, entries, plan, failures


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "results": {"type": "list", "elements": "dict", "required": True},
        "definitions": {"type": "list", "elements": "dict"},
    }

    def act(self, args):
        labels, entries = diffs(args["results"])
        plan = []
        if args.get("definitions") is not None:
            more, more_entries, plan, failures = planned(args["results"], args["definitions"])
            if failures:
                return {"failed": True, "changed": False, "msg": "The dry run refused: " + "; ".join(failures)}
            labels, entries = labels + more, entries + more_entries
        return {"changed": bool(labels), "objects": labels, "diff": entries, "plan": plan}
