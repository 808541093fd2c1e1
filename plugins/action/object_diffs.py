# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.object_diffs on the control node (documented in plugins/modules/object_diffs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ansible_collections.biomage.iac.plugins.plugin_utils.controller_action import ControllerAction


def object_label(result):
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped) of one kubernetes.core.k8s result."""
    obj = result.get("result") if isinstance(result.get("result"), Mapping) else {}
    diff = result.get("diff") if isinstance(result.get("diff"), Mapping) else {}
    for candidate in (obj, diff.get("after"), diff.get("before")):
        if isinstance(candidate, Mapping) and candidate.get("kind"):
            obj = candidate
            break
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = metadata.get("name") or "?"
    if metadata.get("namespace"):
        name = f"{metadata['namespace']}/{name}"
    return f"{obj.get('kind') or 'object'} {name}"


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
            entries.append(
                {
                    "before_header": label,
                    "after_header": label,
                    "before": diff.get("before") or {},
                    "after": diff.get("after") or {},
                }
            )
    return labels, entries


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {"results": {"type": "list", "elements": "dict", "required": True}}

    def act(self, args):
        labels, entries = diffs(args["results"])
        return {"changed": bool(labels), "objects": labels, "diff": entries, "plan": []}
