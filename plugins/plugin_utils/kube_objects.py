# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one kubernetes.core.k8s call did to each of the objects it was given, read on the control node.

Used by the action plugins ``biomage.iac.k8s_apply`` (which makes the call) and ``biomage.iac.object_diffs``
(which is given a registered call's results), and by the ``biomage.iac.plan`` callback: the objects' labels,
their ``--diff`` entries, their plan entries and, in a check run, the objects the API server's dry run could
not judge because the same call only plans what they need."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape

MODULE = "kubernetes.core.k8s"
# kubernetes.core.k8s's ``method`` (6.x) as a plan action; ``apply`` (server-side) is read from the diff
METHODS = {"create": "create", "patch": "update", "update": "update", "replace": "replace", "delete": "delete"}


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


def plan_entry(result, fallback_name):
    """The plan entry of one changed object's result. Only the kind, namespace and name of its ``result``
    (the object as it is, or in check mode as it would be) are read; ``fallback_name`` names an object
    without metadata."""
    obj = _mapping(result.get("result"))
    meta = _mapping(obj.get("metadata"))
    name = "/".join(part for part in (meta.get("namespace"), meta.get("name")) if part) or fallback_name
    method = result.get("method", "")
    if method == "apply":
        # server-side apply says nothing about existence; the diff (when asked for) does
        diff = result.get("diff")
        action = "create" if isinstance(diff, Mapping) and not diff.get("before") else "update"
    else:
        action = METHODS.get(method, "update")
    kind = obj.get("kind", "Kubernetes object")
    return plan_shape.entry(kind, name, action, f"kubernetes.core.k8s {method or 'change'}")


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


def refused(failures):
    """The failed result of a check run whose dry run refused objects for reasons the run does not explain."""
    return {"failed": True, "changed": False, "msg": "The dry run refused: " + "; ".join(failures)}


def select(documents, kinds=None, source="<input>"):
    """The objects of a YAML stream's ``documents``: the empty documents left out, only those of ``kinds`` kept
    when it is given (an empty list keeps none). A document that is not a mapping is refused, naming it."""
    objects = []
    for number, document in enumerate(documents, start=1):
        if not document:
            continue
        if not isinstance(document, dict):
            raise ValueError(
                f"{source}: document {number} is a {type(document).__name__}, not a Kubernetes object."
                " Fix: each document of the file must be one object (apiVersion, kind, metadata)"
            )
        if kinds is None or document.get("kind") in kinds:
            objects.append(document)
    return objects


def module_args(definitions, kubeconfig=None, field_manager=None, force_conflicts=False, check_mode=False):
    """kubernetes.core.k8s's arguments for applying ``definitions`` in one run. A check run continues past an
    object's error, so that :func:`summary` can plan the objects whose namespace or CRD the call only plans."""
    args = {"state": "present", "definition": list(definitions), "continue_on_error": bool(check_mode)}
    if kubeconfig:
        args["kubeconfig"] = kubeconfig
    if field_manager:
        args["apply"] = True
        args["server_side_apply"] = {"field_manager": field_manager, "force_conflicts": bool(force_conflicts)}
    return args


def per_object(returned, count):
    """The per-object results of one kubernetes.core.k8s run given ``count`` definitions (a run given one
    returns that object's result as its own)."""
    nested = _mapping(returned.get("result")).get("results")
    if isinstance(nested, list):
        return [_mapping(item) for item in nested]
    return [returned] if count == 1 else []


def summary(returned, definitions, check_mode, return_kinds=()):
    """The result of ``biomage.iac.k8s_apply`` from kubernetes.core.k8s's ``returned`` for ``definitions``:
    the changed (or planned) objects' labels, their diff and plan entries, and the objects of ``return_kinds``
    as the API server returned them. The definitions and the other objects are not carried on."""
    kept = {key: returned[key] for key in ("warnings", "deprecations") if returned.get(key)}
    if returned.get("failed"):
        # what says why (a crash's traceback and stderr too), not the arguments the module echoes back
        why = {key: returned[key] for key in ("exception", "module_stderr", "rc") if key in returned}
        message = str(returned.get("msg") or "kubernetes.core.k8s failed")
        return {**kept, **why, "failed": True, "changed": False, "msg": message}
    results = per_object(returned, len(definitions))
    labels, entries = diffs(results)
    plan = [plan_entry(result, object_label(result)) for result in results if result.get("changed")]
    if check_mode:
        more, more_entries, more_plan, failures = planned(results, definitions)
        if failures:
            return {**kept, **refused(failures)}
        labels, entries, plan = labels + more, entries + more_entries, plan + more_plan
    wanted = set(return_kinds or ())
    resources = [
        dict(obj) for obj in (_mapping(result.get("result")) for result in results) if obj.get("kind") in wanted
    ]
    return {**kept, "changed": bool(labels), "objects": labels, "diff": entries, "plan": plan, "resources": resources}
