# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The apply: the planned changes made, in dependency (export) order.

Changed stacks are deployed concurrently in a bounded thread pool, a stack only once every stack it
depends on has finished; a failed stack fails its dependants without deploying them, and the others
go on. Each deploy (change set or CreateStack/UpdateStack) is waited for. Pruned orphans are deleted
last, importers before the stacks they import from.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, ClientError, error_message
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.client import (
    change_set_name,
    nothing_to_deploy,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.planner import (
    RECREATE_STATES,
    compare,
    plan_from_template,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.pool import bounded_map
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.render import template_changes
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import (
    ADOPT,
    CHANGING_ACTIONS,
    CONTINUE_ROLLBACK,
    CREATE,
    DELETE,
    RECREATE,
    UNCHANGED,
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
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import imports_of, names_match


def failure_text(exc):
    """What ``result.error`` says for an expected failure; None for a surprise."""
    if isinstance(exc, (CfnError, AwsError)):
        return str(exc)
    if isinstance(exc, ClientError):
        return error_message(exc)
    return None


class Applier:
    """Deploys planned results (``deploy_method`` change_set or direct) and prunes orphans."""

    def __init__(
        self,
        api,
        waiter,
        *,
        environment=None,
        group=None,
        deploy_method="change_set",
        max_workers=4,
        uploader=None,
        clock=time.monotonic,
    ):
        self.api = api
        self.waiter = waiter
        self.environment = environment
        self.group = group
        self.deploy_method = deploy_method
        self.max_workers = max_workers
        self.uploader = uploader
        self.clock = clock

    def apply(self, results):
        """Deploy the planned changes in dependency order, then prune. Returns ``results``."""
        blocked = {n for n, r in results.items() if r.spec is not None and r.error}
        deploys = {
            n: r for n, r in results.items() if r.spec is not None and r.action in CHANGING_ACTIONS and n not in blocked
        }
        finished = {n for n, r in results.items() if r.spec is not None and n not in deploys and n not in blocked}
        failed = set(blocked)
        pending = dict(deploys)
        running = {}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            while pending or running:
                for name in sorted(pending):
                    result = pending[name]
                    deps = result.spec.depends_on
                    broken = sorted(deps & failed)
                    if broken:
                        result.error = f"not deployed: it depends on {', '.join(broken)}, which failed"
                        failed.add(name)
                        del pending[name]
                    elif deps <= finished:
                        running[pool.submit(self._deploy, result)] = name
                        del pending[name]
                if not running:
                    if pending:  # unreachable with an acyclic graph, kept as a guard
                        for name, result in pending.items():
                            result.error = "not deployed: its dependencies never finished"
                            failed.add(name)
                        pending.clear()
                    break
                done, _pending = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    result = results[name]
                    try:
                        future.result()
                    except Exception as exc:  # one stack's surprise must not hide the others' results
                        text = failure_text(exc)
                        result.error = f"unexpected error: {exc!r}" if text is None else text
                    (failed if result.error else finished).add(name)
        deletes = [r for r in results.values() if r.spec is None and r.action == DELETE]
        if deletes:
            self.prune(deletes)
        return results

    def _deploy(self, result):
        result.started = self.clock()
        try:
            if result.spec.large and result.action != ADOPT:
                result.template_location = self.uploader.location(result.name, result.spec.body)
            if result.action == ADOPT:
                self._adopt(result)
            elif result.action == CONTINUE_ROLLBACK:
                self._continue_rollback(result)
            elif result.action == RECREATE or result.delete_first:
                self._delete(result, result.deployed["StackId"])
                self._create(result)
            elif result.action == CREATE:
                self._create(result)
            else:
                self._update(result)
        finally:
            result.duration = self.clock() - result.started

    def _continue_rollback(self, result):
        """ContinueUpdateRollback, then plan the settled stack again and update it if it still differs."""
        self.api.continue_update_rollback(result, result.deployed["StackId"])
        stack = self.waiter.stack(result, result.deployed["StackId"])
        if stack["StackStatus"] != "UPDATE_ROLLBACK_COMPLETE":
            raise CfnError(
                f"{result.name}: continuing the rollback ended in {stack['StackStatus']}: "
                + "; ".join(self.waiter.failure_reasons(result, stack["StackId"]))
            )
        result.deployed = stack
        result.deployed_body, result.deployed_template = self.api.template(result, stack["StackId"])
        result.reasons = []
        compare(result)
        unchanged = result.action == UNCHANGED
        result.action = CONTINUE_ROLLBACK
        if unchanged:
            result.status = stack["StackStatus"]
            return
        self._update(result)

    def _create(self, result):
        if self.deploy_method == "change_set":
            name, change_set = self._change_set(result, "CREATE")
            self.api.execute_change_set(result, name, f"create {result.name}")
            stack_id = change_set.get("StackId", result.name)
        else:
            stack_id = self.api.create_stack(result)
            plan_from_template(result)
        self._finish(result, stack_id, ("CREATE_COMPLETE",))

    def _update(self, result):
        stack_id = result.deployed["StackId"]
        if result.planned_change_set is not None:
            # the reviewed change set of the plan file (checked by the planner): executed, never re-created
            self.api.execute_change_set(result, result.planned_change_set["id"], f"update {result.name} (planned)")
        elif self.deploy_method == "change_set":
            name, _change_set = self._change_set(result, "UPDATE")
            if name is None:
                return
            self.api.execute_change_set(result, name, f"update {result.name}")
        else:
            try:
                self.api.update_stack(result, stack_id)
            except ClientError as exc:
                if nothing_to_deploy(error_message(exc)):
                    result.nothing_to_deploy()
                    return
                raise CfnError(f"{result.name}: update refused: {error_message(exc)}") from exc
            result.changes = template_changes(result.deployed_template, result.spec.template)
        self._finish(result, stack_id, ("UPDATE_COMPLETE",))

    def _adopt(self, result):
        """Add the tags to a stack created outside biomage.iac; its template and parameters stay."""
        stack_id = result.deployed["StackId"]
        if self.deploy_method == "change_set":
            name, _change_set = self._change_set(result, "UPDATE", adopt=True)
            if name is None:
                return
            self.api.execute_change_set(result, name, f"tag {result.name}")
        else:
            try:
                self.api.adopt_stack(result, stack_id)
            except ClientError as exc:
                if nothing_to_deploy(error_message(exc)):
                    result.nothing_to_deploy()
                    return
                raise CfnError(f"{result.name}: adding the ownership tags was refused: {error_message(exc)}") from exc
        self._finish(result, stack_id, ("UPDATE_COMPLETE",))

    def _change_set(self, result, change_set_type, adopt=False):
        """Create a change set and wait for it; ``(name, created)``, or ``(None, None)`` when an update
        has nothing to deploy. Its resource changes become ``result.changes``."""
        name = change_set_name()
        try:
            created = self.api.create_change_set(result, name, change_set_type, adopt=adopt)
        except ClientError as exc:
            if change_set_type == "UPDATE" and nothing_to_deploy(error_message(exc)):
                result.nothing_to_deploy()
                return None, None
            raise
        change_set = self.waiter.change_set(result, name)
        if change_set.get("Status") == "FAILED":
            if change_set_type == "CREATE":
                raise CfnError(f"{result.name}: the change set failed: {change_set.get('StatusReason')}")
            reason = change_set.get("StatusReason", "")
            self.api.delete_change_set(result, name, f"delete the empty change set of {result.name}")
            if nothing_to_deploy(reason):
                result.nothing_to_deploy()
                return None, None
            raise CfnError(f"{result.name}: the change set failed: {reason}")
        result.changes = change_set.get("_changes", [])
        return name, created

    def _finish(self, result, stack_id, success):
        """Wait for the deploy; raise CfnError with the failed events' reasons unless it ended in ``success``."""
        stack = self.waiter.stack(result, stack_id)
        result.status = stack["StackStatus"]
        result.outputs = stack_outputs(stack)
        if result.status not in success:
            reasons = self.waiter.failure_reasons(result, stack_id)
            raise CfnError(
                f"{result.name}: ended in {result.status}"
                + (": " + "; ".join(reasons) if reasons else "")
                + ". Fix: correct the template or parameters and run again"
                + (
                    " (a failed creation needs recreate_rollback_complete: true)"
                    if result.status in RECREATE_STATES
                    else ""
                )
            )

    def _delete(self, result, stack_id):
        self.api.delete_stack(result, stack_id)
        stack = self.waiter.stack(result, stack_id, allow_missing=True)
        status = (stack or {}).get("StackStatus", "DELETE_COMPLETE")
        if status != "DELETE_COMPLETE":
            reasons = self.waiter.failure_reasons(result, stack_id)
            raise CfnError(
                f"{result.name}: deletion ended in {status}" + (": " + "; ".join(reasons) if reasons else "")
            )
        result.status = status

    def prune(self, deletes):
        """Delete orphans, importers before the stacks they import from."""
        exports = {r.name: stack_exports(r.deployed) for r in deletes}
        importers_of = {r.name: set() for r in deletes}
        for result in deletes:
            template = result.deployed_template
            if template is None:
                continue
            variables = dict(stack_parameters(result.deployed), **{"AWS::StackName": result.name})
            for wanted in imports_of(template, variables):
                for other, names in exports.items():
                    if other != result.name and any(names_match(wanted, n) for n in names):
                        importers_of[other].add(result.name)
        remaining = {r.name: r for r in deletes}
        while remaining:
            wave = [r for n, r in sorted(remaining.items()) if not (importers_of[n] & set(remaining))]
            if not wave:
                wave = list(remaining.values())
            for result, error in zip(wave, bounded_map(self._delete_orphan, wave, self.max_workers), strict=True):
                result.error = error
                del remaining[result.name]

    def _delete_orphan(self, result):
        tags = stack_tags(result.deployed)
        if (
            tags.get(OWNER_TAG) != OWNER_VALUE
            or tags.get(ENVIRONMENT_TAG) != self.environment
            or tags.get(GROUP_TAG) != self.group
        ):
            # the planner only ever makes orphans of our own stacks: never delete anything else
            return f"{result.name}: not deleted: the stack is not owned by biomage.iac {self.environment}/{self.group}"
        result.started = self.clock()
        try:
            self._delete(result, result.deployed["StackId"])
        except (CfnError, AwsError, ClientError) as exc:
            return failure_text(exc)
        finally:
            result.duration = self.clock() - result.started
        return None
