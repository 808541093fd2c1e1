# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What happened (or would happen) to each stack: the plan actions, :class:`StackResult`, and the
readers of a deployed stack as DescribeStacks returns it (tags, parameters, outputs, exports)."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import TEMPLATE_TAG

# plan actions
CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
RECREATE = "recreate"
CONTINUE_ROLLBACK = "continue_rollback"
DELETE = "delete"
SKIPPED = "skipped"
CHANGING_ACTIONS = (CREATE, UPDATE, RECREATE, CONTINUE_ROLLBACK, DELETE)


class StackResult:
    """What happened (or would happen) to one stack."""

    def __init__(self, name, spec=None):
        self.name = name
        self.spec = spec
        self.action = None
        self.status = None
        self.reasons = []
        self.changes = []
        self.notes = []
        self.error = None
        self.deployed = None
        self.deployed_body = None
        self.deployed_template = None
        self.outputs = {}
        self.api_calls = 0
        self.delete_first = False
        self.started = None
        self.duration = 0.0

    @property
    def changed(self):
        return self.action in CHANGING_ACTIONS and self.error is None

    def nothing_to_deploy(self):
        """CloudFormation found no deployable difference (e.g. only a description changed)."""
        if self.action == UPDATE:
            self.action = UNCHANGED
        self.notes.append(f"CloudFormation found nothing to deploy for: {', '.join(self.reasons)}")

    def to_dict(self):
        return {
            "name": self.name,
            "template": self.spec.label if self.spec else stack_tags(self.deployed).get(TEMPLATE_TAG),
            "action": self.action,
            "changed": self.changed,
            "status": self.status,
            "reasons": list(self.reasons),
            "changes": list(self.changes),
            "notes": list(self.notes),
            "error": self.error,
            "outputs": dict(self.outputs),
            "api_calls": self.api_calls,
            "duration": round(self.duration, 3),
        }


def stack_tags(stack):
    return {t["Key"]: t["Value"] for t in (stack or {}).get("Tags") or []}


def stack_parameters(stack):
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}


def stack_outputs(stack):
    return {o["OutputKey"]: o.get("OutputValue") for o in (stack or {}).get("Outputs") or []}


def stack_exports(stack):
    return [o["ExportName"] for o in (stack or {}).get("Outputs") or [] if o.get("ExportName")]
