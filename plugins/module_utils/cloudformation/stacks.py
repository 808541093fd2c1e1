# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and converge a set of CloudFormation stacks (the logic behind ``biomage.iac.cfn_stacks``).

Three phases, in this order, so that nothing changes unless everything checked out:

1. ``prepare``: read every template, apply the template rules, check parameters against the
   declarations, resolve exports/imports into a dependency graph. No AWS call.
2. ``plan``: one paginated DescribeStacks for the whole account/region, then one GetTemplate per
   existing stack; a stack whose template (compared as parsed YAML/JSON), parameters, tags and
   capabilities equal the desired ones is unchanged (no change set). Stacks left *_IN_PROGRESS by
   another run are waited for; failed states are classified (recreate, continue rollback, blocked).
   Any blocker fails the whole run here, before any change.
3. ``apply`` (skipped in check mode): changed stacks are deployed concurrently (bounded thread
   pool) in dependency order, each waited for with exponential backoff; orphans are deleted only
   when pruning is enabled, importers before exporters.

In check mode a changed stack's resource-level plan comes from a change set that is created,
described and deleted again (the only write check mode makes); a new stack is planned from its
template alone, without creating anything.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AwsError,
    BotoCoreError,
    ClientError,
    aws_error,
    error_code,
    error_message,
    unreadable_response,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.rules import check_text
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    MAX_TEMPLATE_BODY_BYTES,
    TemplateError,
    canonical,
    exports_of,
    imports_of,
    load_template,
    names_match,
    parameters_of,
    planned_resources,
    required_capabilities,
)

OWNER_TAG = "biomage:managed-by"
OWNER_VALUE = "biomage.iac"
ENVIRONMENT_TAG = "biomage:environment"
GROUP_TAG = "biomage:group"
TEMPLATE_TAG = "biomage:template"
# reads retried after an unparseable response (e.g. an HTML 500 page from an overloaded endpoint)
UNREADABLE_RETRIES = 3
RESERVED_TAG_PREFIXES = ("biomage:", "aws:")

STABLE_STATES = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
)
RECREATE_STATES = ("ROLLBACK_COMPLETE", "CREATE_FAILED")
BLOCKED_STATES = ("ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED", "UPDATE_FAILED")
ALLOWED_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
MASK = "****"

# plan actions
CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"
RECREATE = "recreate"
CONTINUE_ROLLBACK = "continue_rollback"
DELETE = "delete"
SKIPPED = "skipped"
CHANGING_ACTIONS = (CREATE, UPDATE, RECREATE, CONTINUE_ROLLBACK, DELETE)


class CfnError(Exception):
    """A failure worded for the operator. ``details`` holds per-item messages."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = list(details or [])


class ValidationFailed(CfnError):
    """Templates or inputs are wrong: nothing was changed."""


class PlanFailed(CfnError):
    """The deployed state blocks the run: nothing was changed."""


# -- desired state --------------------------------------------------------------------------------
class StackSpec:
    """One desired stack after validation."""

    def __init__(self, *, name, label, body, template, parameters, noecho, tags, capabilities, depends_on, deploy):
        self.name = name
        self.label = label
        self.body = body
        self.template = template
        self.parameters = parameters
        self.noecho = noecho
        self.tags = tags
        self.capabilities = capabilities
        self.depends_on = set(depends_on)
        self.deploy = deploy
        self.exports = []
        self.imports = []
        self.external_imports = []


def _parameter_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_parameter_value(v) for v in value)
    if value is None:
        return ""
    return str(value)


def _check_parameter(name, declaration, value):
    """Problems of one effective parameter value against its declaration (as CloudFormation checks)."""
    problems = []
    ptype = str(declaration.get("Type", "String"))
    allowed = declaration.get("AllowedValues")
    if (
        isinstance(allowed, list)
        and ptype in ("String", "Number")
        and value not in [_parameter_value(v) for v in allowed]
    ):
        problems.append(f"{name}={value!r} is not one of {allowed}")
    pattern = declaration.get("AllowedPattern")
    if isinstance(pattern, str) and ptype == "String":
        try:
            if not re.fullmatch(pattern, value):
                problems.append(f"{name}={value!r} does not match AllowedPattern {pattern}")
        except re.error:
            pass
    if ptype == "Number":
        try:
            number = float(value)
        except ValueError:
            problems.append(f"{name}={value!r} is not a number")
        else:
            for key, test in (("MinValue", lambda lim: number < lim), ("MaxValue", lambda lim: number > lim)):
                if key in declaration and test(float(declaration[key])):
                    problems.append(f"{name}={value} is outside {key} {declaration[key]}")
    if ptype == "String":
        if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
            problems.append(f"{name} is shorter than MinLength {declaration['MinLength']}")
        if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
            problems.append(f"{name} is longer than MaxLength {declaration['MaxLength']}")
    return problems


def prepare(stacks, environment, group, region, *, apply_rules=True, read_file=None):
    """Validate the desired stacks; return ``[StackSpec]`` or raise ValidationFailed with every problem.

    ``stacks``: dicts with name, template (path) or template_body, template_label, parameters, tags,
    capabilities, depends_on, deploy.
    """
    problems = []
    specs = []
    seen = set()
    read_file = read_file or _read_file
    for index, item in enumerate(stacks):
        name = item.get("name") or ""
        label = item.get("template_label") or item.get("template") or f"stacks[{index}]"
        where = f"stack {name or index} ({label})"
        if not STACK_NAME.match(name):
            problems.append(f"{where}: invalid stack name {name!r} (letters, digits and '-', starting with a letter)")
            continue
        if name in seen:
            problems.append(f"{where}: stack {name} is listed twice")
            continue
        seen.add(name)
        if item.get("template_body") is not None:
            body = item["template_body"]
        elif item.get("template"):
            try:
                body = read_file(item["template"])
            except OSError as exc:
                problems.append(f"{where}: cannot read {item['template']}: {exc.strerror or exc}")
                continue
        else:
            problems.append(f"{where}: give template (a path) or template_body")
            continue
        size = len(body.encode("utf-8"))
        if size > MAX_TEMPLATE_BODY_BYTES:
            problems.append(
                f"{label}: the template is {size} bytes; CloudFormation takes at most {MAX_TEMPLATE_BODY_BYTES} "
                "in a request. Fix: split it into several templates (one group of resources each)."
            )
            continue
        if apply_rules:
            findings = check_text(body, label)
            if findings:
                problems.extend(str(f) for f in findings)
                continue
        try:
            template = load_template(body, label)
        except TemplateError as exc:
            problems.append(str(exc))
            continue

        declared = parameters_of(template)
        given = {k: _parameter_value(v) for k, v in (item.get("parameters") or {}).items()}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            problems.append(
                f"{label}: parameter(s) {', '.join(unknown)} are not declared in the template "
                f"(declared: {', '.join(sorted(declared)) or 'none'}). Fix: remove them or declare them."
            )
        effective = {}
        for pname, raw_declaration in sorted(declared.items()):
            declaration = raw_declaration if isinstance(raw_declaration, dict) else {}
            if pname in given:
                effective[pname] = given[pname]
            elif "Default" in declaration:
                effective[pname] = _parameter_value(declaration["Default"])
            else:
                problems.append(f"{label}: parameter {pname} has no default and no value. Fix: pass it in parameters.")
                continue
            problems.extend(f"{label}: parameter {p}" for p in _check_parameter(pname, declaration, effective[pname]))
        noecho = {p for p, d in declared.items() if isinstance(d, dict) and str(d.get("NoEcho", "")).lower() == "true"}

        user_tags = {str(k): str(v) for k, v in (item.get("tags") or {}).items()}
        reserved = sorted(k for k in user_tags if k.startswith(RESERVED_TAG_PREFIXES))
        if reserved:
            problems.append(
                f"{where}: tag keys {', '.join(reserved)} are reserved (biomage:*, aws:*). Fix: rename them."
            )
        tags = dict(user_tags)
        tags.update({OWNER_TAG: OWNER_VALUE, ENVIRONMENT_TAG: environment, GROUP_TAG: group, TEMPLATE_TAG: label})

        extra_caps = list(item.get("capabilities") or [])
        bad_caps = sorted(set(extra_caps) - set(ALLOWED_CAPABILITIES))
        if bad_caps:
            problems.append(
                f"{where}: unknown capabilities {', '.join(bad_caps)} (allowed: {', '.join(ALLOWED_CAPABILITIES)})"
            )
        capabilities = sorted(set(required_capabilities(template)) | set(extra_caps))

        spec = StackSpec(
            name=name,
            label=label,
            body=body,
            template=template,
            parameters=effective,
            noecho=noecho,
            tags=tags,
            capabilities=capabilities,
            depends_on=item.get("depends_on") or [],
            deploy=item.get("deploy", True) is not False,
        )
        variables = dict(effective)
        variables.update({"AWS::StackName": name, "AWS::Region": region or "*"})
        spec.exports = exports_of(template, variables)
        spec.imports = imports_of(template, variables)
        specs.append(spec)

    by_name = {s.name: s for s in specs}
    for spec in specs:
        for dep in sorted(spec.depends_on):
            if dep not in by_name:
                problems.append(f"{spec.label}: depends_on names {dep}, which is not a stack of this run")
        for wanted in spec.imports:
            producers = [o.name for o in specs if o is not spec and any(names_match(wanted, e) for e in o.exports)]
            if producers:
                spec.depends_on.update(producers)
            else:
                spec.external_imports.append(wanted)
        if spec.deploy:
            skipped = sorted(d for d in spec.depends_on if d in by_name and not by_name[d].deploy)
            if skipped:
                problems.append(f"{spec.label}: depends on {', '.join(skipped)}, which is not deployed in this run")
    cycle = _find_cycle({s.name: s.depends_on & set(by_name) for s in specs})
    if cycle:
        problems.append(f"stacks depend on each other in a cycle: {' -> '.join(cycle)}. Fix: break the import cycle.")
    if problems:
        raise ValidationFailed(
            f"{len(problems)} problem(s) in the templates or their inputs; nothing was changed", problems
        )
    return specs


def _read_file(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _find_cycle(graph):
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# -- plan and apply -------------------------------------------------------------------------------
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

    def to_dict(self):
        return {
            "name": self.name,
            "template": self.spec.label if self.spec else _tags(self.deployed).get(TEMPLATE_TAG),
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


def _tags(stack):
    return {t["Key"]: t["Value"] for t in (stack or {}).get("Tags") or []}


def _params(stack):
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}


def _outputs(stack):
    return {o["OutputKey"]: o.get("OutputValue") for o in (stack or {}).get("Outputs") or []}


def _export_names(stack):
    return [o["ExportName"] for o in (stack or {}).get("Outputs") or [] if o.get("ExportName")]


class CfnStacks:
    """Converges the stacks of one environment and group (``biomage:group`` tag) with one client."""

    def __init__(
        self,
        client,
        environment,
        group,
        *,
        settings=None,
        check_mode=False,
        prune=False,
        recreate_rollback_complete=False,
        deploy_method="change_set",
        max_workers=4,
        wait_timeout=1800,
        poll_delay=1.0,
        max_poll_delay=15.0,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.client = client
        self.environment = environment
        self.group = group
        self.settings = settings or {}
        self.check_mode = check_mode
        self.prune = prune
        self.recreate_rollback_complete = recreate_rollback_complete
        self.deploy_method = deploy_method
        self.max_workers = max(1, int(max_workers))
        self.wait_timeout = wait_timeout
        self.poll_delay = poll_delay
        self.max_poll_delay = max_poll_delay
        self.sleep = sleep
        self.clock = clock
        self.shared_api_calls = 0
        self.warnings = []
        self._lock = threading.Lock()
        self.results = {}
        self.orphans = []

    # -- API access ----------------------------------------------------------------------------
    def _call(self, result, operation, action, **kwargs):
        """Call ``operation`` on the client, attributing it to ``result`` (or to the shared count).

        A read whose response cannot be parsed (an HTML error page from an overloaded endpoint:
        botocore does not retry those) is retried a few times; a write is not, since it may have
        taken effect (see ``_create_stack``).
        """
        reads = operation.startswith(("describe_", "get_", "list_"))
        for attempt in range(UNREADABLE_RETRIES + 1 if reads else 1):
            with self._lock:
                if result is None:
                    self.shared_api_calls += 1
                else:
                    result.api_calls += 1
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError:
                raise
            except (BotoCoreError, Exception) as exc:  # botocore parser errors are not BotoCoreErrors
                if not (reads and unreadable_response(exc) and attempt < UNREADABLE_RETRIES):
                    raise aws_error(exc, self.settings, action) from exc
                self.sleep(self.poll_delay * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _create_stack(self, result, **kwargs):
        """CreateStack; when its response is unreadable, look: created (ours) -> go on, absent -> once more."""
        action = f"create {result.name}"
        for attempt in range(2):
            try:
                return self._call(result, "create_stack", action, **kwargs)["StackId"]
            except AwsError as exc:
                if not unreadable_response(exc.__cause__):
                    raise
                try:
                    found = self._call(result, "describe_stacks", f"look for {result.name}", StackName=result.name)
                except ClientError:
                    found = {"Stacks": []}  # it does not exist: the create did not happen
                stacks = [s for s in found.get("Stacks") or [] if s.get("StackStatus") != "DELETE_COMPLETE"]
                if stacks and _tags(stacks[0]).get(TEMPLATE_TAG) == result.spec.tags.get(TEMPLATE_TAG):
                    return stacks[0]["StackId"]
                if stacks or attempt == 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def describe_all(self):
        """All stacks of the account/region: one DescribeStacks call per page."""
        stacks = {}
        token = None
        while True:
            kwargs = {"NextToken": token} if token else {}
            try:
                page = self._call(None, "describe_stacks", "list the CloudFormation stacks", **kwargs)
            except ClientError as exc:
                raise aws_error(exc, self.settings, "list the CloudFormation stacks") from exc
            for stack in page.get("Stacks") or []:
                if stack.get("StackStatus") != "DELETE_COMPLETE":
                    stacks[stack["StackName"]] = stack
            token = page.get("NextToken")
            if not token:
                return stacks

    def _describe_one(self, result, stack_id):
        try:
            stacks = self._call(result, "describe_stacks", f"describe stack {result.name}", StackName=stack_id)[
                "Stacks"
            ]
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
                return None
            raise
        return stacks[0] if stacks else None

    def _get_template(self, result, stack_id):
        body = self._call(
            result, "get_template", f"read the template of {result.name}", StackName=stack_id, TemplateStage="Original"
        )["TemplateBody"]
        if isinstance(body, dict):
            # botocore decodes JSON bodies; keep a readable text for diffs
            return json.dumps(body, indent=2, sort_keys=False), body
        try:
            return body, load_template(body, result.name)
        except TemplateError:
            return body, None

    def _wait_settled(self, result, stack_id, allow_missing=False):
        """Poll with exponential backoff until the stack is no longer *_IN_PROGRESS; return it (None if gone)."""
        deadline = self.clock() + self.wait_timeout
        delay = self.poll_delay
        while True:
            stack = self._describe_one(result, stack_id)
            if stack is None:
                if allow_missing:
                    return None
                raise CfnError(f"{result.name}: the stack disappeared while waiting for it")
            status = stack.get("StackStatus", "")
            if not status.endswith("_IN_PROGRESS") or status == "REVIEW_IN_PROGRESS":
                return stack
            if self.clock() >= deadline:
                raise CfnError(
                    f"{result.name}: still {status} after {self.wait_timeout}s. Fix: wait for the other operation to "
                    "finish (AWS console / describe-stack-events), or raise wait_timeout."
                )
            self.sleep(delay)
            delay = min(delay * 2, self.max_poll_delay)

    def _failure_reasons(self, result, stack_id):
        try:
            events = self._call(
                result, "describe_stack_events", f"read events of {result.name}", StackName=stack_id
            ).get("StackEvents", [])
        except (ClientError, AwsError):
            return []
        reasons = []
        for event in events[:50]:
            if str(event.get("ResourceStatus", "")).endswith("FAILED") and event.get("ResourceStatusReason"):
                reasons.append(f"{event.get('LogicalResourceId')}: {event['ResourceStatusReason']}")
        return reasons[:5]

    # -- plan ------------------------------------------------------------------------------------
    def plan(self, specs):
        """Classify every stack; raise PlanFailed (before any change) when something blocks the run."""
        deployed = self.describe_all()
        problems = []
        for spec in specs:
            result = StackResult(spec.name, spec)
            result.deployed = deployed.get(spec.name)
            self.results[spec.name] = result
            if not spec.deploy:
                result.action = SKIPPED
                result.status = (result.deployed or {}).get("StackStatus")
                result.notes.append("deploy: false (validated, not deployed)")
                result.outputs = _outputs(result.deployed)
                continue
            owner = _tags(result.deployed)
            if (
                result.deployed
                and owner.get(OWNER_TAG) == OWNER_VALUE
                and (owner.get(ENVIRONMENT_TAG) != self.environment or owner.get(GROUP_TAG) != self.group)
            ):
                problems.append(
                    f"{spec.name}: the stack belongs to environment {owner.get(ENVIRONMENT_TAG)!r}, group "
                    f"{owner.get(GROUP_TAG)!r}, not {self.environment!r}/{self.group!r}. Fix: rename the template "
                    "or prune the stack from its own group."
                )

        # stacks another run left in progress: wait (read-only) and use their settled state
        in_progress = [
            r
            for r in self.results.values()
            if r.action is None
            and r.deployed
            and r.deployed["StackStatus"].endswith("_IN_PROGRESS")
            and r.deployed["StackStatus"] != "REVIEW_IN_PROGRESS"
        ]
        settled_stacks = self._map(lambda r: self._wait_settled(r, r.deployed["StackId"], True), in_progress)
        for result, settled in zip(in_progress, settled_stacks, strict=True):
            result.notes.append(f"waited for {result.deployed['StackStatus']} left by another operation")
            result.deployed = settled

        to_compare = []
        for result in self.results.values():
            if result.action is not None:
                continue
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
                to_compare.append(result)
            else:
                problems.append(
                    f"{result.name}: the stack is {status}, which needs an operator. Fix: resolve it in CloudFormation "
                    "(e.g. delete with retained resources) and run again."
                )

        templates = self._map(lambda r: self._get_template(r, r.deployed["StackId"]), to_compare)
        for result, fetched in zip(to_compare, templates, strict=True):
            result.deployed_body, result.deployed_template = fetched
            self._compare(result)

        self._find_orphans(deployed, specs, problems)
        doomed = [r for r in self.results.values() if r.spec is None and r.action == DELETE]
        for result, fetched in zip(doomed, self._map(self._safe_template, doomed), strict=True):
            result.deployed_body, result.deployed_template = fetched
        self._check_external_imports(specs, problems)
        if problems:
            raise PlanFailed(f"{len(problems)} stack(s) block the run; nothing was changed", problems)

        if self.check_mode:
            previews = [r for r in self.results.values() if r.action == UPDATE]
            self._map(self._preview_change_set, previews)
            for result in self.results.values():
                if result.action in (CREATE, RECREATE):
                    self._plan_from_template(result)
        return self.results

    def _compare(self, result):
        spec, stack = result.spec, result.deployed
        result.outputs = _outputs(stack)
        if result.deployed_template is None or canonical(result.deployed_template) != canonical(spec.template):
            result.reasons.append("template")
        elif result.deployed_body != spec.body:
            result.notes.append("template text differs only in formatting or comments (not a change)")
        deployed_params = _params(stack)
        changed_params = sorted(
            k
            for k in set(spec.parameters) | set(deployed_params)
            if k not in spec.noecho and spec.parameters.get(k) != deployed_params.get(k)
        )
        if changed_params:
            result.reasons.append(f"parameters: {', '.join(changed_params)}")
        if spec.noecho:
            result.notes.append(f"NoEcho parameters {', '.join(sorted(spec.noecho))} cannot be compared")
        deployed_tags = _tags(stack)
        changed_tags = sorted(
            k for k in set(spec.tags) | set(deployed_tags) if spec.tags.get(k) != deployed_tags.get(k)
        )
        if changed_tags:
            result.reasons.append(f"tags: {', '.join(changed_tags)}")
        if "Capabilities" in stack:
            if set(stack.get("Capabilities") or []) != set(spec.capabilities):
                result.reasons.append(f"capabilities: {', '.join(spec.capabilities) or 'none'}")
        elif spec.capabilities:
            result.notes.append("the endpoint does not report capabilities (an emulator); not compared")
        result.action = UPDATE if result.reasons else UNCHANGED

    def _find_orphans(self, deployed, specs, problems):
        wanted = {s.name for s in specs}
        for name, stack in sorted(deployed.items()):
            tags = _tags(stack)
            if name in wanted or tags.get(OWNER_TAG) != OWNER_VALUE:
                continue
            if tags.get(ENVIRONMENT_TAG) != self.environment or tags.get(GROUP_TAG) != self.group:
                continue
            result = StackResult(name)
            result.deployed = stack
            result.status = stack.get("StackStatus")
            result.outputs = _outputs(stack)
            self.orphans.append(name)
            if not self.prune:
                result.action = SKIPPED
                result.notes.append(
                    f"orphan: its template {tags.get(TEMPLATE_TAG)} is no longer in the set; prune: true deletes it"
                )
                self.warnings.append(
                    f"stack {name} is an orphan (template {tags.get(TEMPLATE_TAG)} is gone); "
                    "run with prune enabled to delete it"
                )
                self.results[name] = result
                continue
            result.action = DELETE
            result.reasons.append(f"orphan: template {tags.get(TEMPLATE_TAG)} is no longer in the set")
            importers = [
                s.name
                for s in specs
                for export in _export_names(stack)
                if any(names_match(i, export) for i in s.imports)
            ]
            if importers:
                problems.append(
                    f"{name}: cannot prune: its exports are imported by {', '.join(sorted(set(importers)))}. "
                    "Fix: remove those imports first."
                )
            self.results[name] = result

    def _check_external_imports(self, specs, problems):
        needed = [(s, i) for s in specs if s.deploy for i in s.external_imports]
        if not needed:
            return
        names = []
        token = None
        while True:
            kwargs = {"NextToken": token} if token else {}
            try:
                page = self._call(None, "list_exports", "list CloudFormation exports", **kwargs)
            except ClientError as exc:
                raise aws_error(exc, self.settings, "list CloudFormation exports") from exc
            names.extend(e["Name"] for e in page.get("Exports") or [])
            token = page.get("NextToken")
            if not token:
                break
        for spec, wanted in needed:
            if any(names_match(wanted, n) for n in names):
                continue
            message = f"{spec.label}: imports {wanted}, which no stack exports yet"
            if self.check_mode:
                self.results[spec.name].notes.append(message + " (an earlier step of a real run may create it)")
                self.warnings.append(message)
            else:
                problems.append(message + ". Fix: deploy the exporting stack first or fix the import.")

    def _plan_from_template(self, result):
        for logical_id, rtype, included in planned_resources(result.spec.template, result.spec.parameters):
            if included is False:
                continue
            change = {"action": "Add", "logical_id": logical_id, "type": rtype}
            if included is None:
                change["condition"] = "undecided"
            result.changes.append(change)
        if result.action == RECREATE:
            result.notes.append("the failed stack is deleted first (it holds no working resources)")

    def _preview_change_set(self, result):
        """Check mode: the resource-level plan of an update from a change set that is then deleted."""
        name = _change_set_name()
        try:
            self._create_change_set(result, name, "UPDATE")
            change_set = self._wait_change_set(result, name)
            if change_set.get("Status") == "FAILED":
                reason = change_set.get("StatusReason", "")
                if any(marker in reason for marker in NO_CHANGES):
                    result.action = UNCHANGED
                    result.notes.append(f"CloudFormation found nothing to deploy for: {', '.join(result.reasons)}")
                else:
                    result.error = f"the change set failed: {reason}"
            else:
                result.changes = change_set.get("_changes", [])
        except ClientError as exc:
            if any(marker in error_message(exc) for marker in NO_CHANGES):
                # some endpoints refuse an empty change set instead of creating a FAILED one
                result.action = UNCHANGED
                result.notes.append(f"CloudFormation found nothing to deploy for: {', '.join(result.reasons)}")
            else:
                result.error = f"cannot preview the update: {error_message(exc)}"
        finally:
            try:
                self._call(
                    result,
                    "delete_change_set",
                    f"delete the preview change set of {result.name}",
                    StackName=result.name,
                    ChangeSetName=name,
                )
            except (ClientError, AwsError) as exc:
                self.warnings.append(f"{result.name}: could not delete preview change set {name}: {exc}")

    def _create_change_set(self, result, name, change_set_type):
        spec = result.spec
        return self._call(
            result,
            "create_change_set",
            f"create a change set for {result.name}",
            StackName=result.name,
            ChangeSetName=name,
            ChangeSetType=change_set_type,
            TemplateBody=spec.body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(spec.parameters.items())],
            Capabilities=spec.capabilities,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
            Description=f"biomage.iac {self.environment}/{self.group}",
        )

    def _wait_change_set(self, result, name):
        deadline = self.clock() + self.wait_timeout
        delay = self.poll_delay
        while True:
            change_set = self._call(
                result,
                "describe_change_set",
                f"describe the change set of {result.name}",
                StackName=result.name,
                ChangeSetName=name,
            )
            status = change_set.get("Status", "")
            if status in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED"):
                changes = [_summarise_change(c) for c in change_set.get("Changes") or []]
                token = change_set.get("NextToken")
                while token:
                    page = self._call(
                        result,
                        "describe_change_set",
                        f"describe the change set of {result.name}",
                        StackName=result.name,
                        ChangeSetName=name,
                        NextToken=token,
                    )
                    changes.extend(_summarise_change(c) for c in page.get("Changes") or [])
                    token = page.get("NextToken")
                change_set["_changes"] = changes
                return change_set
            if self.clock() >= deadline:
                raise CfnError(f"{result.name}: change set {name} still {status} after {self.wait_timeout}s")
            self.sleep(delay)
            delay = min(delay * 2, self.max_poll_delay)

    # -- apply -----------------------------------------------------------------------------------
    def apply(self):
        """Deploy the planned changes in dependency order, then prune. Returns the results."""
        if self.check_mode:
            return self.results
        deploys = {n: r for n, r in self.results.items() if r.spec is not None and r.action in CHANGING_ACTIONS}
        finished = {n for n, r in self.results.items() if r.spec is not None and n not in deploys}
        failed = set()
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
                    result = self.results[name]
                    try:
                        future.result()
                    except (CfnError, AwsError) as exc:
                        result.error = str(exc)
                    except ClientError as exc:
                        result.error = error_message(exc)
                    except Exception as exc:  # one stack's surprise must not hide the others' results
                        result.error = f"unexpected error: {exc!r}"
                    (failed if result.error else finished).add(name)
        deletes = [r for r in self.results.values() if r.spec is None and r.action == DELETE]
        if deletes:
            self._prune(deletes)
        return self.results

    def _map(self, func, items):
        """``func`` over ``items`` in the bounded pool, results in order."""
        if not items:
            return []
        if len(items) == 1 or self.max_workers == 1:
            return [func(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(func, items))

    def _deploy(self, result):
        result.started = self.clock()
        try:
            if result.action == CONTINUE_ROLLBACK:
                self._call(
                    result,
                    "continue_update_rollback",
                    f"continue the rollback of {result.name}",
                    StackName=result.deployed["StackId"],
                )
                stack = self._wait_settled(result, result.deployed["StackId"])
                if stack["StackStatus"] != "UPDATE_ROLLBACK_COMPLETE":
                    raise CfnError(
                        f"{result.name}: continuing the rollback ended in {stack['StackStatus']}: "
                        + "; ".join(self._failure_reasons(result, stack["StackId"]))
                    )
                result.deployed = stack
                result.deployed_body, result.deployed_template = self._get_template(result, stack["StackId"])
                result.reasons = []
                self._compare(result)
                if result.action == UNCHANGED:
                    result.action = CONTINUE_ROLLBACK
                    result.status = stack["StackStatus"]
                    return
                result.action = CONTINUE_ROLLBACK
                self._update(result)
                return
            if result.action == RECREATE or result.delete_first:
                self._delete(result, result.deployed["StackId"])
                self._create(result)
                return
            if result.action == CREATE:
                self._create(result)
                return
            self._update(result)
        finally:
            result.duration = self.clock() - result.started

    def _create(self, result):
        spec = result.spec
        if self.deploy_method == "change_set":
            name = _change_set_name()
            created = self._create_change_set(result, name, "CREATE")
            change_set = self._wait_change_set(result, name)
            if change_set.get("Status") == "FAILED":
                raise CfnError(f"{result.name}: the change set failed: {change_set.get('StatusReason')}")
            result.changes = change_set.get("_changes", [])
            self._call(result, "execute_change_set", f"create {result.name}", StackName=result.name, ChangeSetName=name)
            stack_id = created.get("StackId", result.name)
        else:
            stack_id = self._create_stack(
                result,
                StackName=result.name,
                TemplateBody=spec.body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(spec.parameters.items())],
                Capabilities=spec.capabilities,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
                OnFailure="ROLLBACK",
            )
            self._plan_from_template(result)
        self._finish(result, stack_id, ("CREATE_COMPLETE",))

    def _update(self, result):
        spec = result.spec
        stack_id = result.deployed["StackId"]
        if self.deploy_method == "change_set":
            name = _change_set_name()
            try:
                self._create_change_set(result, name, "UPDATE")
            except ClientError as exc:
                if any(marker in error_message(exc) for marker in NO_CHANGES):
                    self._no_changes(result)
                    return
                raise
            change_set = self._wait_change_set(result, name)
            if change_set.get("Status") == "FAILED":
                reason = change_set.get("StatusReason", "")
                self._call(
                    result,
                    "delete_change_set",
                    f"delete the empty change set of {result.name}",
                    StackName=result.name,
                    ChangeSetName=name,
                )
                if any(marker in reason for marker in NO_CHANGES):
                    self._no_changes(result)
                    return
                raise CfnError(f"{result.name}: the change set failed: {reason}")
            result.changes = change_set.get("_changes", [])
            self._call(result, "execute_change_set", f"update {result.name}", StackName=result.name, ChangeSetName=name)
        else:
            try:
                self._call(
                    result,
                    "update_stack",
                    f"update {result.name}",
                    StackName=stack_id,
                    TemplateBody=spec.body,
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(spec.parameters.items())],
                    Capabilities=spec.capabilities,
                    Tags=[{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
                )
            except ClientError as exc:
                if any(marker in error_message(exc) for marker in NO_CHANGES):
                    self._no_changes(result)
                    return
                raise CfnError(f"{result.name}: update refused: {error_message(exc)}") from exc
            result.changes = template_changes(result.deployed_template, spec.template)
        self._finish(result, stack_id, ("UPDATE_COMPLETE",))

    def _no_changes(self, result):
        if result.action == UPDATE:
            result.action = UNCHANGED
        result.notes.append(f"CloudFormation found nothing to deploy for: {', '.join(result.reasons)}")

    def _finish(self, result, stack_id, success):
        stack = self._wait_settled(result, stack_id)
        result.status = stack["StackStatus"]
        result.outputs = _outputs(stack)
        if result.status not in success:
            reasons = self._failure_reasons(result, stack_id)
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
        self._call(result, "delete_stack", f"delete {result.name}", StackName=stack_id)
        stack = self._wait_settled(result, stack_id, allow_missing=True)
        status = (stack or {}).get("StackStatus", "DELETE_COMPLETE")
        if status != "DELETE_COMPLETE":
            reasons = self._failure_reasons(result, stack_id)
            raise CfnError(
                f"{result.name}: deletion ended in {status}" + (": " + "; ".join(reasons) if reasons else "")
            )
        result.status = status

    def _prune(self, deletes):
        """Delete orphans, importers before the stacks they import from."""
        exports = {r.name: _export_names(r.deployed) for r in deletes}
        importers_of = {r.name: set() for r in deletes}
        for result in deletes:
            template = result.deployed_template
            if template is None:
                continue
            for wanted in imports_of(template, dict(_params(result.deployed), **{"AWS::StackName": result.name})):
                for other, names in exports.items():
                    if other != result.name and any(names_match(wanted, n) for n in names):
                        importers_of[other].add(result.name)
        remaining = {r.name: r for r in deletes}
        while remaining:
            wave = [r for n, r in sorted(remaining.items()) if not (importers_of[n] & set(remaining))]
            if not wave:
                wave = list(remaining.values())
            for result, error in zip(wave, self._map(self._delete_orphan, wave), strict=True):
                result.error = error
                del remaining[result.name]

    def _safe_template(self, result):
        try:
            return self._get_template(result, result.deployed["StackId"])
        except (ClientError, AwsError):
            return None, None

    def _delete_orphan(self, result):
        result.started = self.clock()
        try:
            self._delete(result, result.deployed["StackId"])
        except (CfnError, AwsError) as exc:
            return str(exc)
        except ClientError as exc:
            return error_message(exc)
        finally:
            result.duration = self.clock() - result.started
        return None

    # -- reporting -------------------------------------------------------------------------------
    def diffs(self):
        """Ansible ``diff`` entries (template text, then parameters and tags) for changing stacks."""
        out = []
        for name in sorted(self.results):
            result = self.results[name]
            if not result.changed:
                continue
            spec = result.spec
            before_body = result.deployed_body or ""
            if result.action == DELETE:
                after_body, after_header = "", f"{name} (deleted)"
            else:
                after_body, after_header = spec.body, f"{name} ({spec.label})"
            if (
                result.action in (CREATE, RECREATE)
                or result.deployed_template is None
                or (canonical(result.deployed_template) != canonical(spec.template) if spec else True)
            ):
                out.append(
                    {
                        "before_header": f"{name} (deployed template)" if before_body else f"{name} (no stack)",
                        "after_header": after_header,
                        "before": before_body,
                        "after": after_body,
                    }
                )
            if result.changes:
                lines = [f"{name}: {result.action} ({', '.join(result.reasons) or 'see notes'})"]
                for change in result.changes:
                    extra = f", replacement {change['replacement']}" if change.get("replacement") else ""
                    lines.append(f"  {change['action']} {change['logical_id']} ({change['type']}{extra})")
                out.append({"prepared": "\n".join(lines) + "\n"})
            before_meta = _render_settings(
                _params(result.deployed), _tags(result.deployed), spec.noecho if spec else set()
            )
            after_meta = (
                _render_settings(spec.parameters, spec.tags, spec.noecho) if spec and result.action != DELETE else ""
            )
            if before_meta != after_meta:
                out.append(
                    {
                        "before_header": f"{name} parameters and tags (deployed)",
                        "after_header": f"{name} parameters and tags (desired)",
                        "before": before_meta,
                        "after": after_meta,
                    }
                )
        return out

    def summary(self):
        counts = {}
        for result in self.results.values():
            key = "failed" if result.error else result.action
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def _render_settings(parameters, tags, noecho):
    if not parameters and not tags:
        return ""
    lines = ["parameters:"]
    lines += [f"  {k}: {MASK if k in noecho else json.dumps(v)}" for k, v in sorted(parameters.items())]
    lines.append("tags:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(tags.items())]
    return "\n".join(lines) + "\n"


def _summarise_change(change):
    rc = change.get("ResourceChange") or {}
    out = {
        "action": rc.get("Action"),
        "logical_id": rc.get("LogicalResourceId"),
        "type": rc.get("ResourceType"),
    }
    if rc.get("Replacement"):
        out["replacement"] = rc["Replacement"]
    if rc.get("Scope"):
        out["scope"] = rc["Scope"]
    return out


def template_changes(before, after):
    """Resource-level differences between two parsed templates (used where no change set is made)."""
    old = (before or {}).get("Resources") or {}
    new = (after or {}).get("Resources") or {}
    changes = []
    for logical_id in sorted(set(old) | set(new)):
        if logical_id not in old:
            action = "Add"
        elif logical_id not in new:
            action = "Remove"
        elif canonical(old[logical_id]) != canonical(new[logical_id]):
            action = "Modify"
        else:
            continue
        rtype = (new.get(logical_id) or old.get(logical_id) or {}).get("Type", "?")
        changes.append({"action": action, "logical_id": logical_id, "type": rtype, "source": "template"})
    return changes


def _change_set_name():
    return f"biomage-iac-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def unified_diff(before, after, before_header, after_header):
    """A unified diff text (used by tests and the summary)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), fromfile=before_header, tofile=after_header, n=3
        )
    )
