# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CloudFormation API calls of the room, one method per call.

Every call is counted against the stack it is made for (``StackResult.api_calls``) or against the
run (:attr:`CfnClient.shared_api_calls`). A read whose response botocore cannot parse (an HTML 500
page of an overloaded endpoint, which botocore does not retry) is retried a few times; a write is
not, since it may have taken effect (:meth:`CfnClient.create_stack` looks before it tries again).
Botocore errors other than ``ClientError`` become :class:`AwsError` with CloudFormation's access
hint; a ``ClientError`` is left to the caller, which knows which codes are expected.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AwsError,
    BotoCoreError,
    ClientError,
    aws_error,
    error_code,
    error_message,
    unreadable_response,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import TemplateError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.render import change_of
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import stack_tags
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import TEMPLATE_TAG
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    load_template,
    required_capabilities,
)

# what the caller's role must be allowed to manage (the hint when AWS denies a request)
NEEDS = "CloudFormation stacks and the resources in the templates"
# reads retried after an unparseable response (e.g. an HTML 500 page from an overloaded endpoint)
UNREADABLE_RETRIES = 3
# how CloudFormation says that an update or change set has nothing to deploy
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


def nothing_to_deploy(text):
    """True when an error message or change set status reason says there is nothing to deploy."""
    return any(marker in text for marker in NO_CHANGES)


def change_set_missing(exc):
    """True when a ClientError says the change set (or its stack) does not exist."""
    code = error_code(exc)
    return code in ("ChangeSetNotFound", "ChangeSetNotFoundException") or (
        code == "ValidationError" and "does not exist" in error_message(exc)
    )


def change_set_name():
    return f"biomage-iac-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def stack_request(spec, location=None):
    """The template, parameters, capabilities and tags of a CreateStack/UpdateStack/CreateChangeSet.

    ``location`` (``{"TemplateURL": ...}``) replaces the body of a template uploaded to S3."""
    request = dict(location) if location else {"TemplateBody": spec.body}
    request.update(
        {
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(spec.parameters.items())],
            "Capabilities": spec.capabilities,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
        }
    )
    return request


def request_digest(spec):
    """SHA-256 of what a change set of ``spec`` is created from (template text, parameters, capabilities,
    tags): a planned change set is executed only while the desired stack still has this digest."""
    text = json.dumps(stack_request(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stack_state(stack):
    """``STATUS@last change`` of a described stack (LastUpdatedTime, else CreationTime), as plan files
    record it: a stack that was changed, or is being changed, since then has another state."""
    when = (stack or {}).get("LastUpdatedTime") or (stack or {}).get("CreationTime") or ""
    when = when.isoformat() if hasattr(when, "isoformat") else str(when)
    return f"{(stack or {}).get('StackStatus', '?')}@{when}"


def adopt_request(result):
    """An update that changes only the tags of a deployed stack: its own template and parameter values,
    the capabilities it was deployed with (or its template needs), its tags plus the desired ones."""
    tags = stack_tags(result.deployed)
    tags.update(result.spec.tags)
    capabilities = set(result.deployed.get("Capabilities") or [])
    if result.deployed_template is not None:
        capabilities |= set(required_capabilities(result.deployed_template))
    return {
        "UsePreviousTemplate": True,
        "Parameters": [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in result.deployed.get("Parameters") or []
        ],
        "Capabilities": sorted(capabilities),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }


class CfnClient:
    """A boto3 CloudFormation client (or a stand-in with the same methods), counted and retried."""

    def __init__(self, client, settings=None, *, description="biomage.iac", retry_delay=1.0, sleep=time.sleep):
        self.client = client
        self.settings = settings or {}
        self.description = description
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.shared_api_calls = 0
        self._lock = threading.Lock()

    def error(self, exc, action):
        """The :class:`AwsError` of a botocore error, with CloudFormation's access hint."""
        return aws_error(exc, self.settings, action, needs=NEEDS)

    def call(self, result, operation, action, **kwargs):
        """Call ``operation``, attributing it to ``result`` (None: to the shared count)."""
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
                    raise self.error(exc, action) from exc
                self.sleep(self.retry_delay * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(self, operation, action, key):
        """Every item under ``key`` of a paginated listing (shared calls, errors translated)."""
        token = None
        while True:
            kwargs = {"NextToken": token} if token else {}
            try:
                page = self.call(None, operation, action, **kwargs)
            except ClientError as exc:
                raise self.error(exc, action) from exc
            yield from page.get(key) or []
            token = page.get("NextToken")
            if not token:
                return

    # -- stacks ----------------------------------------------------------------------------------
    def describe_all(self):
        """All stacks of the account/region by name: one DescribeStacks call per page."""
        return {
            stack["StackName"]: stack
            for stack in self._pages("describe_stacks", "list the CloudFormation stacks", "Stacks")
            if stack.get("StackStatus") != "DELETE_COMPLETE"
        }

    def describe(self, result, stack_id):
        """The stack, or None when it does not exist."""
        try:
            stacks = self.call(result, "describe_stacks", f"describe stack {result.name}", StackName=stack_id)["Stacks"]
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
                return None
            raise
        return stacks[0] if stacks else None

    def template(self, result, stack_id):
        """``(text, parsed or None)`` of the deployed template."""
        body = self.call(
            result, "get_template", f"read the template of {result.name}", StackName=stack_id, TemplateStage="Original"
        )["TemplateBody"]
        if isinstance(body, dict):
            # botocore decodes JSON bodies; keep a readable text for diffs
            return json.dumps(body, indent=2, sort_keys=False), body
        try:
            return body, load_template(body, result.name)
        except TemplateError:
            return body, None

    def template_or_none(self, result):
        """:meth:`template` of the deployed stack, ``(None, None)`` when it cannot be read."""
        try:
            return self.template(result, result.deployed["StackId"])
        except (ClientError, AwsError):
            return None, None

    def events(self, result, stack_id):
        return self.call(result, "describe_stack_events", f"read events of {result.name}", StackName=stack_id).get(
            "StackEvents", []
        )

    def exports(self):
        """Every export of the account/region: ``{"Name", "Value", "ExportingStackId"}``."""
        return list(self._pages("list_exports", "list CloudFormation exports", "Exports"))

    def create_stack(self, result):
        """CreateStack; when its response is unreadable, look: created (ours) -> go on, absent -> once more."""
        action = f"create {result.name}"
        for attempt in range(2):
            try:
                return self.call(
                    result,
                    "create_stack",
                    action,
                    StackName=result.name,
                    OnFailure="ROLLBACK",
                    **stack_request(result.spec, result.template_location),
                )["StackId"]
            except AwsError as exc:
                if not unreadable_response(exc.__cause__):
                    raise
                try:
                    found = self.call(result, "describe_stacks", f"look for {result.name}", StackName=result.name)
                except ClientError:
                    found = {"Stacks": []}  # it does not exist: the create did not happen
                stacks = [s for s in found.get("Stacks") or [] if s.get("StackStatus") != "DELETE_COMPLETE"]
                if stacks and stack_tags(stacks[0]).get(TEMPLATE_TAG) == result.spec.tags.get(TEMPLATE_TAG):
                    return stacks[0]["StackId"]
                if stacks or attempt == 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def update_stack(self, result, stack_id):
        return self.call(
            result,
            "update_stack",
            f"update {result.name}",
            StackName=stack_id,
            **stack_request(result.spec, result.template_location),
        )

    def adopt_stack(self, result, stack_id):
        """UpdateStack changing only the tags (see :func:`adopt_request`)."""
        return self.call(result, "update_stack", f"tag {result.name}", StackName=stack_id, **adopt_request(result))

    def delete_stack(self, result, stack_id):
        return self.call(result, "delete_stack", f"delete {result.name}", StackName=stack_id)

    def continue_update_rollback(self, result, stack_id):
        return self.call(
            result, "continue_update_rollback", f"continue the rollback of {result.name}", StackName=stack_id
        )

    # -- change sets -----------------------------------------------------------------------------
    def create_change_set(self, result, name, change_set_type, adopt=False):
        """CreateChangeSet of the desired stack (``adopt``: of the deployed one with only the tags added)."""
        request = adopt_request(result) if adopt else stack_request(result.spec, result.template_location)
        return self.call(
            result,
            "create_change_set",
            f"create a change set for {result.name}",
            StackName=result.name,
            ChangeSetName=name,
            ChangeSetType=change_set_type,
            Description=self.description,
            **request,
        )

    def describe_change_set(self, result, name, token=None):
        """One page of DescribeChangeSet."""
        kwargs = {"NextToken": token} if token else {}
        return self.call(
            result,
            "describe_change_set",
            f"describe the change set of {result.name}",
            StackName=result.name,
            ChangeSetName=name,
            **kwargs,
        )

    def change_set_changes(self, result, name, change_set):
        """Every resource change of a described change set (following its pages), summarised."""
        changes = [change_of(c) for c in change_set.get("Changes") or []]
        token = change_set.get("NextToken")
        while token:
            page = self.describe_change_set(result, name, token)
            changes.extend(change_of(c) for c in page.get("Changes") or [])
            token = page.get("NextToken")
        return changes

    def describe_change_set_by_id(self, result, change_set_id):
        """A change set by its id (ARN), None when it no longer exists."""
        try:
            return self.call(
                result,
                "describe_change_set",
                f"describe the planned change set of {result.name}",
                StackName=result.name,
                ChangeSetName=change_set_id,
            )
        except ClientError as exc:
            if change_set_missing(exc):
                return None
            raise

    def execute_change_set(self, result, name, action):
        return self.call(result, "execute_change_set", action, StackName=result.name, ChangeSetName=name)

    def delete_change_set(self, result, name, action):
        return self.call(result, "delete_change_set", action, StackName=result.name, ChangeSetName=name)
