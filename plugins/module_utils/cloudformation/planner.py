# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: what each desired stack and each orphan needs, decided before anything changes.

One paginated DescribeStacks for the whole account/region, then one GetTemplate per existing stack;
a stack whose template (compared as parsed YAML/JSON), parameters, tags and capabilities equal the
desired ones is unchanged (no change set). Stacks left *_IN_PROGRESS by another run are waited for;
failed states are classified (recreate, continue rollback, blocked). Orphans (owned stacks of this
environment and group no longer desired) are found, and imports of exports no stack of the run
makes are looked up. Any blocker raises :class:`PlanFailed` here, before any change.

In check mode an update's resource-level plan comes from a change set that is created, described
and deleted again (the only write check mode makes); a new stack is planned from its template.
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, ClientError, error_message
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.client import (
    change_set_name,
    nothing_to_deploy,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.pool import bounded_map
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import (
    CONTINUE_ROLLBACK,
    CREATE,
    DELETE,
    RECREATE,
    SKIPPED,
    UNCHANGED,
    UPDATE,
    StackResult,
    stack_exports,
    stack_outputs,
    stack_parameters,
    stack_tags,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import (
    ENVIRONMENT_TAG,
    GROUP_TAG,
    OWNER_TAG,
    OWNER_VALUE,
    TEMPLATE_TAG,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    canonical,
    names_match,
    planned_resources,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.waiter import settled, undocumented_state

STABLE_STATES = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
)
# failed creations: CloudFormation cannot update them, only delete them
RECREATE_STATES = ("ROLLBACK_COMPLETE", "CREATE_FAILED")


class Planner:
    """Plans the stacks of one environment and group; fills ``results``, ``orphans`` and ``warnings``."""

    def __init__(
        self,
        api,
        waiter,
        environment,
        group,
        *,
        check_mode=False,
        prune=False,
        recreate_rollback_complete=False,
        max_workers=4,
    ):
        self.api = api
        self.waiter = waiter
        self.environment = environment
        self.group = group
        self.check_mode = check_mode
        self.prune = prune
        self.recreate_rollback_complete = recreate_rollback_complete
        self.max_workers = max_workers
        self.results = {}
        self.orphans = []
        self.warnings = []

    def _map(self, func, items):
        return bounded_map(func, items, self.max_workers)

    def plan(self, specs):
        """Classify every stack; raise PlanFailed (before any change) when something blocks the run."""
        deployed = self.api.describe_all()
        problems = []
        for spec in specs:
            self._add(spec, deployed.get(spec.name), problems)
        self._wait_for_other_operations()
        to_compare = [r for r in self.results.values() if r.action is None and self._classify(r, problems)]
        for result, fetched in zip(to_compare, self._map(self._deployed_template, to_compare), strict=True):
            result.deployed_body, result.deployed_template = fetched
            compare(result)

        self._find_orphans(deployed, specs, problems)
        doomed = [r for r in self.results.values() if r.spec is None and r.action == DELETE]
        for result, fetched in zip(doomed, self._map(self.api.template_or_none, doomed), strict=True):
            result.deployed_body, result.deployed_template = fetched
        self._check_external_imports(specs, problems)
        if problems:
            raise PlanFailed(f"{len(problems)} stack(s) block the run; nothing was changed", problems=problems)

        if self.check_mode:
            self._map(self._preview_change_set, [r for r in self.results.values() if r.action == UPDATE])
            for result in self.results.values():
                if result.action in (CREATE, RECREATE):
                    plan_from_template(result)
        return self.results

    def _add(self, spec, stack, problems):
        result = StackResult(spec.name, spec)
        result.deployed = stack
        self.results[spec.name] = result
        if not spec.deploy:
            result.action = SKIPPED
            result.status = (stack or {}).get("StackStatus")
            result.notes.append("deploy: false (validated, not deployed)")
            result.outputs = stack_outputs(stack)
            return
        owner = stack_tags(stack)
        if (
            stack
            and owner.get(OWNER_TAG) == OWNER_VALUE
            and (owner.get(ENVIRONMENT_TAG) != self.environment or owner.get(GROUP_TAG) != self.group)
        ):
            problems.append(
                f"{spec.name}: the stack belongs to environment {owner.get(ENVIRONMENT_TAG)!r}, group "
                f"{owner.get(GROUP_TAG)!r}, not {self.environment!r}/{self.group!r}. Fix: rename the template "
                "or prune the stack from its own group."
            )

    def _wait_for_other_operations(self):
        """Stacks another run left in progress: wait (read-only) and plan from their settled state."""
        busy = [r for r in self.results.values() if r.action is None and r.deployed and not settled(r.deployed)]
        waited = self._map(lambda r: self.waiter.stack(r, r.deployed["StackId"], True), busy)
        for result, stack in zip(busy, waited, strict=True):
            result.notes.append(f"waited for {result.deployed['StackStatus']} left by another operation")
            result.deployed = stack

    def _classify(self, result, problems):
        """Decide what a non-stable stack needs; True when it is stable and its template must be compared."""
        stack = result.deployed
        status = (stack or {}).get("StackStatus")
        result.status = status
        if stack is None:
            result.action = CREATE
            result.reasons.append("stack does not exist")
        elif status == "REVIEW_IN_PROGRESS":
            result.action = CREATE
            result.delete_first = True
            result.reasons.append("stack exists only as an unexecuted change set (REVIEW_IN_PROGRESS)")
        elif status in RECREATE_STATES:
            if self.recreate_rollback_complete:
                result.action = RECREATE
                result.reasons.append(f"stack is {status} (its creation failed): delete and create again")
            else:
                problems.append(
                    f"{result.name}: the stack is {status} (its creation failed and it cannot be updated). "
                    "Fix: set recreate_rollback_complete: true to delete and recreate it, or delete it yourself."
                )
        elif status == "UPDATE_ROLLBACK_FAILED":
            result.action = CONTINUE_ROLLBACK
            result.reasons.append("stack is UPDATE_ROLLBACK_FAILED: continue the rollback, then update")
        elif status in STABLE_STATES:
            return True
        else:
            problems.append(
                undocumented_state(result.name, status)
                or f"{result.name}: the stack is {status}, which needs an operator. Fix: resolve it in CloudFormation "
                "(e.g. delete with retained resources) and run again."
            )
        return False

    def _deployed_template(self, result):
        return self.api.template(result, result.deployed["StackId"])

    def _find_orphans(self, deployed, specs, problems):
        wanted = {s.name for s in specs}
        for name, stack in sorted(deployed.items()):
            tags = stack_tags(stack)
            if name in wanted or tags.get(OWNER_TAG) != OWNER_VALUE:
                continue
            if tags.get(ENVIRONMENT_TAG) != self.environment or tags.get(GROUP_TAG) != self.group:
                continue
            result = StackResult(name)
            result.deployed = stack
            result.status = stack.get("StackStatus")
            result.outputs = stack_outputs(stack)
            self.orphans.append(name)
            self.results[name] = result
            if not self.prune:
                result.action = SKIPPED
                result.notes.append(
                    f"orphan: its template {tags.get(TEMPLATE_TAG)} is no longer in the set; prune: true deletes it"
                )
                self.warnings.append(
                    f"stack {name} is an orphan (template {tags.get(TEMPLATE_TAG)} is gone); "
                    "run with prune enabled to delete it"
                )
                continue
            result.action = DELETE
            result.reasons.append(f"orphan: template {tags.get(TEMPLATE_TAG)} is no longer in the set")
            importers = [
                s.name
                for s in specs
                for export in stack_exports(stack)
                if any(names_match(i, export) for i in s.imports)
            ]
            if importers:
                problems.append(
                    f"{name}: cannot prune: its exports are imported by {', '.join(sorted(set(importers)))}. "
                    "Fix: remove those imports first."
                )

    def _check_external_imports(self, specs, problems):
        needed = [(s, i) for s in specs if s.deploy for i in s.external_imports]
        if not needed:
            return
        names = self.api.export_names()
        for spec, wanted in needed:
            if any(names_match(wanted, n) for n in names):
                continue
            message = f"{spec.label}: imports {wanted}, which no stack exports yet"
            if self.check_mode:
                self.results[spec.name].notes.append(message + " (an earlier step of a real run may create it)")
                self.warnings.append(message)
            else:
                problems.append(message + ". Fix: deploy the exporting stack first or fix the import.")

    def _preview_change_set(self, result):
        """Check mode: the resource-level plan of an update from a change set that is then deleted."""
        name = change_set_name()
        try:
            self.api.create_change_set(result, name, "UPDATE")
            change_set = self.waiter.change_set(result, name)
            if change_set.get("Status") == "FAILED":
                reason = change_set.get("StatusReason", "")
                if nothing_to_deploy(reason):
                    result.nothing_to_deploy()
                else:
                    result.error = f"the change set failed: {reason}"
            else:
                result.changes = change_set.get("_changes", [])
        except ClientError as exc:
            if nothing_to_deploy(error_message(exc)):
                # some endpoints refuse an empty change set instead of creating a FAILED one
                result.nothing_to_deploy()
            else:
                result.error = f"cannot preview the update: {error_message(exc)}"
        finally:
            try:
                self.api.delete_change_set(result, name, f"delete the preview change set of {result.name}")
            except (ClientError, AwsError) as exc:
                self.warnings.append(f"{result.name}: could not delete preview change set {name}: {exc}")


def compare(result):
    """UPDATE (with the reasons) or UNCHANGED: the deployed stack against its spec."""
    spec, stack = result.spec, result.deployed
    result.outputs = stack_outputs(stack)
    if result.deployed_template is None or canonical(result.deployed_template) != canonical(spec.template):
        result.reasons.append("template")
    elif result.deployed_body != spec.body:
        result.notes.append("template text differs only in formatting or comments (not a change)")
    deployed_params = stack_parameters(stack)
    changed_params = sorted(
        k
        for k in set(spec.parameters) | set(deployed_params)
        if k not in spec.noecho and spec.parameters.get(k) != deployed_params.get(k)
    )
    if changed_params:
        result.reasons.append(f"parameters: {', '.join(changed_params)}")
    if spec.noecho:
        result.notes.append(f"NoEcho parameters {', '.join(sorted(spec.noecho))} cannot be compared")
    deployed_tags = stack_tags(stack)
    changed_tags = sorted(k for k in set(spec.tags) | set(deployed_tags) if spec.tags.get(k) != deployed_tags.get(k))
    if changed_tags:
        result.reasons.append(f"tags: {', '.join(changed_tags)}")
    if "Capabilities" in stack:
        if set(stack.get("Capabilities") or []) != set(spec.capabilities):
            result.reasons.append(f"capabilities: {', '.join(spec.capabilities) or 'none'}")
    elif spec.capabilities:
        result.notes.append("the endpoint does not report capabilities (an emulator); not compared")
    result.action = UPDATE if result.reasons else UNCHANGED


def plan_from_template(result):
    """The resources a new stack gets, from its template alone (conditions decided where possible)."""
    for logical_id, rtype, included in planned_resources(result.spec.template, result.spec.parameters):
        if included is False:
            continue
        change = {"action": "Add", "logical_id": logical_id, "type": rtype}
        if included is None:
            change["condition"] = "undecided"
        result.changes.append(change)
    if result.action == RECREATE:
        result.notes.append("the failed stack is deleted first (it holds no working resources)")
