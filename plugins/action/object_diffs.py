# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.object_diffs on the control node (documented in plugins/modules/object_diffs.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.biomage.iac.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.biomage.iac.plugins.plugin_utils.kube_objects import diffs, planned, refused


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
                return refused(failures)
            labels, entries = labels + more, entries + more_entries
        return {"changed": bool(labels), "objects": labels, "diff": entries, "plan": plan}
