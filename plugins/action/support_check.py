# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.support_check on the control node (documented in plugins/modules/support_check.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible.utils.display import Display
from ansible_collections.biomage.iac.plugins.module_utils import support
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.plugin_utils.controller_action import ControllerAction

display = Display()


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "calendar": {"type": "path", "required": True},
        "versions": {"type": "dict", "required": True},
        "today": {"type": "str"},
        "warn_days": {"type": "int", "default": support.DEFAULT_WARN_DAYS},
        "accept_expired": {"type": "list", "elements": "str", "default": []},
    }

    def act(self, args):
        try:
            findings = support.check_file(
                args["calendar"], args["versions"], args["today"], args["warn_days"], args["accept_expired"]
            )
        except BiomageError as exc:
            return {"failed": True, "msg": str(exc), "support": []}
        for item in findings:
            if item["status"] != "ok":
                display.warning(item["message"])
        blocked = support.blocking(findings)
        if blocked:
            return {"failed": True, "msg": support.blocking_message(blocked), "support": findings}
        return {"changed": False, "support": findings}
