# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What happened (or would happen) to each stack: the plan actions, :class:`StackResult`, and the
readers of a deployed stack as DescribeStacks returns it (tags, parameters, outputs, exports)."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import TEMPLATE_TAG

# plan actions
CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
RECREATE = "recreate"
CONTINUE_ROLLBACK = "continue_rollback"
DELETE = "delete"
ADOPT = "adopt"
SKIPPED = "skipped"
CHANGING_ACTIONS = (CREATE, UPDATE, RECREATE, CONTINUE_ROLLBACK, DELETE, ADOPT)
# the actions that deploy a template (and so need its imports to exist)
DEPLOYING_ACTIONS = (CREATE, UPDATE, RECREATE, CONTINUE_ROLLBACK)
# our actions in the collection's one plan shape (module_utils/plan.py)
PLAN_ACTIONS = {
    CREATE: "create",
    UPDATE: "update",
    RECREATE: "replace",
    CONTINUE_ROLLBACK: "update",
    DELETE: "delete",
    ADOPT: "adopt",
    UNCHANGED: "unchanged",
    SKIPPED: "unchanged",
}
PLAN_KIND = "CloudFormation stack"


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
        # the plan found a reason this stack cannot be deployed (an import nobody exports, or a
        # stack it depends on that is blocked); it is not deployed and the task fails
        self.blocked = False
        # a stack of a desired name without our ownership tags (created outside biomage.iac)
        self.adopting = False
        # exports of other stacks this stack imports: [{"name", "value", "exporter"}]
        self.imports = []
        # an adopted stack's other differences, for the run after the adoption
        self.pending = []
        # {"TemplateURL": ...} of a template uploaded to S3 (too large for a request body)
        self.template_location = None
        self.deployed = None
        self.deployed_body = None
        self.deployed_template = None
        self.outputs = {}
        self.api_calls = 0
        self.delete_first = False
        # check mode with keep_change_sets: the kept preview change set, as the plan file records it
        # ({"id", "stack_id", "stack_state", "request"}); apply: the planned one executed instead of a new one
        self.kept_change_set = None
        self.planned_change_set = None
        self.started = None
        self.duration = 0.0

    @property
    def changed(self):
        return self.action in CHANGING_ACTIONS and self.error is None

    def nothing_to_deploy(self):
        """CloudFormation found no deployable difference (e.g. only a description changed)."""
        if self.action in (UPDATE, ADOPT):
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
            "imports": [dict(i) for i in self.imports],
            "outputs": dict(self.outputs),
            "api_calls": self.api_calls,
            "duration": round(self.duration, 3),
            "change_set": (self.planned_change_set or self.kept_change_set or {}).get("id"),
        }

    def plan_entry(self):
        """This stack in the plan shape: kind, name, action, reason (names only, never values)."""
        action = PLAN_ACTIONS.get(self.action, "unchanged")
        if self.error:
            reason = ("blocked: " if self.blocked else "failed: ") + self.error
        elif self.action == SKIPPED:
            reason = "; ".join(self.notes[:1])
        elif self.action == UNCHANGED:
            reason = "; ".join(n for n in self.notes if n.startswith("CloudFormation found nothing"))
        else:
            reason = "; ".join(self.reasons)
        return plan_shape.entry(PLAN_KIND, self.name, action, reason)


def stack_tags(stack):
    return {t["Key"]: t["Value"] for t in (stack or {}).get("Tags") or []}


def stack_parameters(stack):
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}


def stack_outputs(stack):
    return {o["OutputKey"]: o.get("OutputValue") for o in (stack or {}).get("Outputs") or []}


def stack_exports(stack):
    return [o["ExportName"] for o in (stack or {}).get("Outputs") or [] if o.get("ExportName")]
