# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""biomage.iac.support_check on the control node (documented in plugins/modules/support_check.py)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.biomage.iac.plugins.module_utils import support
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

display = Display()

ARGUMENT_SPEC = {
    "calendar": {"type": "path", "required": True},
    "versions": {"type": "dict", "required": True},
    "today": {"type": "str"},
    "warn_days": {"type": "int", "default": support.DEFAULT_WARN_DAYS},
    "accept_expired": {"type": "list", "elements": "str", "default": []},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            findings = support.check_file(
                args["calendar"], args["versions"], args["today"], args["warn_days"], args["accept_expired"]
            )
        except BiomageError as exc:
            return {**result, "failed": True, "msg": str(exc), "support": []}
        for item in findings:
            if item["status"] != "ok":
                display.warning(item["message"])
        blocked = support.blocking(findings)
        if blocked:
            return {**result, "failed": True, "msg": support.blocking_message(blocked), "support": findings}
        return {**result, "changed": False, "support": findings}
