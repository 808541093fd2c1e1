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
and deleted again (the only write check mode makes); a new stack is planned from its template. With
``keep_change_sets`` (a plan run that writes a plan file) a change set with changes is kept instead,
and recorded in ``StackResult.kept_change_set``. An apply given ``planned_change_sets`` (from the plan
file) checks each one against the stack, the desired inputs and the change set itself before any
change, and the applier executes it instead of creating a new one (see :meth:`Planner.check_planned`).
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, ClientError, error_message
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.client import (
    change_set_name,
    nothing_to_deploy,
    request_digest,
    stack_state,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.pool import bounded_map
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.render import template_changes
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import (
    ADOPT,
    CONTINUE_ROLLBACK,
    CREATE,
    DELETE,
    DEPLOYING_ACTIONS,
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

# the actions of desired stacks that a blocked dependency stops
CHANGING_ACTIONS_OF_SPECS = (CREATE, UPDATE, RECREATE, CONTINUE_ROLLBACK, ADOPT)
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
        uploader=None,
        keep_change_sets=False,
        planned_change_sets=None,
    ):
        self.api = api
        self.keep_change_sets = keep_change_sets
        self.planned_change_sets = {str(k): planned_record(v) for k, v in (planned_change_sets or {}).items()}
        self.uploader = uploader
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
        self._deployed = {}

    def _map(self, func, items):
        return bounded_map(func, items, self.max_workers)

    def plan(self, specs):
        """Classify every stack; raise PlanFailed (before any change) when something blocks the run."""
        deployed = self.api.describe_all()
        self._deployed = deployed
        problems = []
        for spec in specs:
            self._add(spec, deployed.get(spec.name), problems)
        self._wait_for_other_operations()
        to_compare = [r for r in self.results.values() if r.action is None and self._classify(r, problems)]
        for result, fetched in zip(to_compare, self._map(self._deployed_template, to_compare), strict=True):
            result.deployed_body, result.deployed_template = fetched
            compare(result)
            if result.adopting:
                adopt(result)

        self._find_orphans(deployed, specs, problems)
        doomed = [r for r in self.results.values() if r.spec is None and r.action == DELETE]
        for result, fetched in zip(doomed, self._map(self.api.template_or_none, doomed), strict=True):
            result.deployed_body, result.deployed_template = fetched
        if problems:
            raise PlanFailed(f"{_blocking(problems)} stack(s) block the run; nothing was changed", problems=problems)
        self._check_external_imports(specs)

        large = [r for r in self.results.values() if r.spec is not None and r.spec.large and _deploys(r)]
        if large:
            if self.uploader is None:
                raise PlanFailed(
                    f"{large[0].name}: the template is too large for a request body and no S3 bucket was given"
                )
            # the bucket must exist (or be creatable) before anything changes
            self.uploader.check()
        if self.check_mode:
            updates = [r for r in self.results.values() if r.action == UPDATE and not r.error]
            self._map(self._preview_change_set, [r for r in updates if not r.spec.large])
            for result in updates:
                if result.spec.large:
                    result.changes = template_changes(result.deployed_template, result.spec.template)
                    result.notes.append(
                        "planned from the template (a large template is uploaded to S3 only when applied)"
                    )
            for result in self.results.values():
                if result.action in (CREATE, RECREATE):
                    plan_from_template(result)
        else:
            self.check_planned()
        return self.results

    def check_planned(self):
        """An apply of a plan file: every stack of this call with a planned change set must still be
        what was planned (same stack and state, same desired inputs) and its change set executable;
        otherwise PlanFailed names each reason, before any change."""
        mine = [
            (self.results[name], record)
            for name, record in sorted(self.planned_change_sets.items())
            if name in self.results and self.results[name].spec is not None
        ]
        if not mine:
            return
        problems = []
        for (result, record), found in zip(mine, self._map(self._read_planned, mine), strict=True):
            problem = _planned_problem(result, record, found)
            if problem:
                problems.append(f"{result.name}: not applying planned change set {record['id']}: {problem}")
                continue
            result.planned_change_set = record
            result.changes = found.get("_changes", [])
            result.notes.append(f"executes the change set of the plan file ({record['id']})")
        if problems:
            raise PlanFailed(
                f"{_blocking(problems)} stack(s) changed since the plan file was made; nothing was changed",
                fix="review the new plan: run the plan again (--check -e biomage_plan_out=<file>) and apply that file.",
                problems=problems,
            )

    def _read_planned(self, item):
        result, record = item
        if result.action != UPDATE or result.error:
            return None
        found = self.api.describe_change_set_by_id(result, record["id"])
        if found is not None and found.get("Status") == "CREATE_COMPLETE":
            found["_changes"] = self.api.change_set_changes(result, record["id"], found)
        return found

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
        if stack and owner.get(OWNER_TAG) != OWNER_VALUE:
            # a stack of the desired name that biomage.iac did not create (an earlier pipeline's)
            result.adopting = True
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
        elif result.adopting and status not in STABLE_STATES and status != "REVIEW_IN_PROGRESS":
            problems.append(
                f"{result.name}: the stack is {status} and was not created by biomage.iac (no ownership tags), so "
                "it is neither deleted nor repaired here. Fix: resolve or delete it yourself, then run again "
                "(a stable stack of this name is adopted)."
            )
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

    def _check_external_imports(self, specs):
        """Imports of exports no stack of this run makes: each found export is recorded (name, value,
        exporting stack) and its stack, if another operation is changing it, waited for; an import
        nobody exports blocks its stack and the stacks that depend on it, and only those."""
        needed = [
            s
            for s in specs
            if s.external_imports
            and self.results[s.name].action in DEPLOYING_ACTIONS
            and not self.results[s.name].error
        ]
        if not needed:
            return
        exports = self.api.exports()
        exporters = {}
        missing = {}
        for spec in needed:
            result = self.results[spec.name]
            for wanted in spec.external_imports:
                found = [e for e in exports if names_match(wanted, e["Name"])]
                if not found:
                    missing.setdefault(spec.name, []).append(wanted)
                    continue
                for export in found:
                    exporter = _stack_name_of(export.get("ExportingStackId"))
                    result.imports.append({"name": export["Name"], "value": export.get("Value"), "exporter": exporter})
                    result.notes.append(f"imports {export['Name']} = {export.get('Value')} (from stack {exporter})")
                    if export.get("ExportingStackId"):
                        exporters.setdefault(export["ExportingStackId"], result)
        self._wait_for_exporters(exporters)
        for name, wanted in sorted(missing.items()):
            result = self.results[name]
            message = f"{result.spec.label}: imports {', '.join(wanted)}, which no stack exports"
            if self.check_mode:
                result.notes.append(message + " yet (an earlier step of a real run may create it)")
                self.warnings.append(message)
            else:
                result.blocked = True
                result.error = (
                    message + ". Fix: deploy the stack that exports it first (for eksctl's exports, the "
                    "cluster: playbooks/base.yml), or correct the import."
                )
        if not self.check_mode:
            self._block_dependants()

    def _wait_for_exporters(self, exporters):
        """A stack this run imports from that another operation is changing: wait until it settles."""
        by_id = {stack["StackId"]: stack for stack in self._deployed.values()}
        for stack_id, importer in sorted(exporters.items()):
            stack = by_id.get(stack_id)
            if stack is not None and not settled(stack):
                settled_stack = self.waiter.stack(importer, stack_id, True)
                importer.notes.append(
                    f"waited for {stack['StackName']} ({stack['StackStatus']}), whose exports it imports"
                )
                if settled_stack is None:
                    importer.notes.append(f"{stack['StackName']} was deleted while waiting for it")

    def _block_dependants(self):
        """Every stack that depends (directly or not) on a blocked stack is blocked too."""
        changed = True
        while changed:
            changed = False
            for result in self.results.values():
                if result.spec is None or result.blocked:
                    continue
                blockers = sorted(d for d in result.spec.depends_on if d in self.results and self.results[d].blocked)
                if blockers and result.action in CHANGING_ACTIONS_OF_SPECS:
                    result.blocked = True
                    result.error = f"not deployed: it depends on {', '.join(blockers)}, which is blocked"
                    changed = True

    def _preview_change_set(self, result):
        """Check mode: the resource-level plan of an update from a change set that is then deleted
        (kept, with ``keep_change_sets``, when it has changes to execute)."""
        name = change_set_name()
        created = {}
        try:
            created = self.api.create_change_set(result, name, "UPDATE")
            change_set = self.waiter.change_set(result, name)
            if change_set.get("Status") == "FAILED":
                reason = change_set.get("StatusReason", "")
                if nothing_to_deploy(reason):
                    result.nothing_to_deploy()
                else:
                    result.error = f"the change set failed: {reason}"
            else:
                result.changes = change_set.get("_changes", [])
                if self.keep_change_sets:
                    result.kept_change_set = {
                        "id": created.get("Id") or change_set.get("ChangeSetId") or name,
                        "stack_id": result.deployed["StackId"],
                        "stack_state": stack_state(result.deployed),
                        "request": request_digest(result.spec),
                    }
                    result.notes.append(f"change set {result.kept_change_set['id']} kept for the plan file")
        except ClientError as exc:
            if nothing_to_deploy(error_message(exc)):
                # some endpoints refuse an empty change set instead of creating a FAILED one
                result.nothing_to_deploy()
            else:
                result.error = f"cannot preview the update: {error_message(exc)}"
        finally:
            try:
                if result.kept_change_set is None:
                    self.api.delete_change_set(result, name, f"delete the preview change set of {result.name}")
            except (ClientError, AwsError) as exc:
                self.warnings.append(f"{result.name}: could not delete preview change set {name}: {exc}")


def planned_record(value):
    """A plan file's change set record (a dict, or just the id) as a dict with an ``id``."""
    record = dict(value) if isinstance(value, dict) else {"id": value}
    record["id"] = str(record.get("id") or "")
    return record


def _planned_problem(result, record, change_set):
    """Why the planned change set of ``result`` must not be executed (None when it may)."""
    if not record["id"]:
        return "the plan file gives no change set id"
    if result.error:
        return result.error
    if result.action != UPDATE:
        what = {UNCHANGED: "no longer differs from its template (someone applied it since)"}.get(
            result.action, f"now needs {result.action}"
        )
        return f"the plan updates the stack, but it {what}"
    if record.get("stack_id") and record["stack_id"] != result.deployed.get("StackId"):
        return "the stack was deleted and created again since the plan"
    if record.get("stack_state") and record["stack_state"] != stack_state(result.deployed):
        return f"the stack changed since the plan ({record['stack_state']} -> {stack_state(result.deployed)})"
    if record.get("request") and record["request"] != request_digest(result.spec):
        return "its template, parameters, tags or capabilities differ from those the change set was planned with"
    if change_set is None:
        return "the change set no longer exists"
    status = change_set.get("Status")
    execution = change_set.get("ExecutionStatus", "AVAILABLE")
    if status != "CREATE_COMPLETE" or execution != "AVAILABLE":
        reason = change_set.get("StatusReason")
        return f"the change set is {status}/{execution}, not CREATE_COMPLETE/AVAILABLE" + (
            f" ({reason})" if reason else ""
        )
    if record.get("stack_id") and change_set.get("StackId") and change_set["StackId"] != record["stack_id"]:
        return "the change set belongs to another stack"
    return None


def _deploys(result):
    return result.action in DEPLOYING_ACTIONS and not result.error


def adopt(result):
    """An unowned stack of a desired name: the only change is adding the tags (ownership and the
    desired ones). Its other differences are left for the run after the adoption, when the stack is
    ours and is updated like any other."""
    pending = [r for r in result.reasons if not r.startswith("tags: ")]
    extra = sorted(set(stack_tags(result.deployed)) - set(result.spec.tags))
    if extra:
        pending.append(f"tags: {', '.join(extra)} (not desired: removed)")
    result.pending = pending
    result.action = ADOPT
    result.reasons = ["no ownership tags (created outside biomage.iac): adopted by adding them"]
    if result.pending:
        result.notes.append(
            "adoption changes only the tags; the next run plans the other differences: " + "; ".join(result.pending)
        )


def _blocking(problems):
    """How many stacks the problems name (a stack may have several): each starts with ``<name>:``."""
    return len({problem.split(":", 1)[0] for problem in problems})


def _stack_name_of(stack_id):
    """``arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>`` -> ``<name>``."""
    parts = str(stack_id or "").split(":stack/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else (stack_id or "?")


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
