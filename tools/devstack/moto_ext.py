"""Labelled extensions of the moto server the local stack runs (the AWS emulator).

moto departs from AWS in a few places the roles rely on. Rather than give development another code
path (deploying stacks directly instead of by change set, say), the stack runs moto with these
patches applied, so that development takes the path staging and production take. Each patch names
the AWS behaviour it reproduces; tests/integration/test_moto_ext.py pins every one of them against
the running emulator. Nothing here changes moto on disk: the patches live in the server process
started by :mod:`devstack.moto_server` only.
"""

from __future__ import annotations

import json
import threading

import yaml
from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse, transform_dict

# (name, the AWS behaviour reproduced): what `python -m devstack.moto_server --patches` prints
PATCHES: list[tuple[str, str]] = []

# IAM resource types that need CAPABILITY_IAM, and the name property that makes one need
# CAPABILITY_NAMED_IAM (AWS CloudFormation User Guide, "Acknowledging IAM resources").
IAM_NAME_PROPERTIES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}


class InsufficientCapabilitiesException(CloudFormationError):
    code = "InsufficientCapabilitiesException"


def _patch(name: str, behaviour: str):
    def register(func):
        PATCHES.append((name, behaviour))
        func.patch_name = name
        return func

    return register


def _template_dict(body: str | None) -> dict:
    if not body:
        return {}
    try:
        loaded = json.loads(body)
    except ValueError:
        loader = type("TagTolerantLoader", (yaml.SafeLoader,), {})
        loader.add_multi_constructor("!", lambda ldr, suffix, node: None)
        loaded = yaml.load(body, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    return loaded if isinstance(loaded, dict) else {}


def required_capabilities(body: str | None) -> str | None:
    """The capability a template needs: CAPABILITY_NAMED_IAM, CAPABILITY_IAM or None."""
    needed = None
    resources = _template_dict(body).get("Resources") or {}
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") not in IAM_NAME_PROPERTIES:
            continue
        name_property = IAM_NAME_PROPERTIES[resource["Type"]]
        if name_property and name_property in (resource.get("Properties") or {}):
            return "CAPABILITY_NAMED_IAM"
        needed = "CAPABILITY_IAM"
    return needed


@_patch(
    "insufficient-capabilities",
    "CreateStack, UpdateStack and CreateChangeSet refuse a template with IAM resources unless the "
    "request acknowledges them (InsufficientCapabilitiesException, 'Requires capabilities : [...]'); "
    "CAPABILITY_NAMED_IAM covers CAPABILITY_IAM.",
)
def _insufficient_capabilities() -> None:

    def check(self) -> None:
        body = self._get_param("TemplateBody")
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        needed = required_capabilities(body)
        given = set(self._get_param("Capabilities", []) or [])
        if needed == "CAPABILITY_NAMED_IAM" and needed not in given:
            raise InsufficientCapabilitiesException("Requires capabilities : [CAPABILITY_NAMED_IAM]")
        if needed == "CAPABILITY_IAM" and not given & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
            raise InsufficientCapabilitiesException("Requires capabilities : [CAPABILITY_IAM]")

    for operation in ("create_stack", "update_stack", "create_change_set"):
        original = getattr(CloudFormationResponse, operation)

        def checked(self, _original=original):
            check(self)
            return _original(self)

        setattr(CloudFormationResponse, operation, checked)


@_patch(
    "capabilities-reported",
    "DescribeStacks and DescribeChangeSet return the Capabilities the stack or change set was created or updated with.",
)
def _capabilities_reported() -> None:

    def record_on_stack(operation: str):
        original = getattr(CloudFormationResponse, operation)

        def recorded(self):
            result = original(self)
            stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
            stack.capabilities = list(self._get_param("Capabilities", []) or [])
            return result

        setattr(CloudFormationResponse, operation, recorded)

    record_on_stack("create_stack")
    record_on_stack("update_stack")
    original_change_set = CloudFormationResponse.create_change_set

    def change_set_recorded(self):
        result = original_change_set(self)
        change_set = self.cloudformation_backend.describe_change_set(self._get_param("ChangeSetName"))
        change_set.capabilities = list(self._get_param("Capabilities", []) or [])
        return result

    CloudFormationResponse.create_change_set = change_set_recorded


@_patch(
    "execute-change-set-records-the-stack",
    "ExecuteChangeSet leaves the stack with the change set's parameters, tags (when the change set "
    "names any), capabilities, outputs and description, as UpdateStack does; so a second change set "
    "with the same inputs has no changes.",
)
def _execute_change_set_records_the_stack() -> None:

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        original(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        stack.parameters = dict(stack.resource_map.resolved_parameters)
        if change_set.tags:
            stack.tags = dict(change_set.tags)
        stack.capabilities = list(getattr(change_set, "capabilities", []) or [])
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute_change_set
    # DescribeChangeSet lists the change set's tags (moto keeps them as a dict and returned none)
    CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER["DescribeChangeSetOutput.Tags"] = transform_dict


@_patch(
    "change-set-without-changes",
    "CreateChangeSet with the stack's own template and parameters succeeds; the change set ends "
    'FAILED with "The submitted information didn\'t contain changes." (only UpdateStack answers '
    '"No updates are to be performed.").',
)
def _change_set_without_changes() -> None:
    original = CloudFormationResponse.create_change_set

    def create_change_set(self):
        # the backend marks an unchanged change set FAILED itself; the response's own check, which
        # answered with UpdateStack's error instead, is skipped for this request
        self._validate_different_update = lambda *_args: None
        try:
            return original(self)
        finally:
            del self._validate_different_update

    CloudFormationResponse.create_change_set = create_change_set


@_patch(
    "create-stack-atomic",
    "A CreateStack that fails creates nothing, and concurrent CloudFormation calls do not interfere: "
    "AWS never reports CREATE_PENDING. (moto stores the new stack in CREATE_PENDING before checking its "
    "exports, with no lock in its threaded server: a failed check, or another request's export added "
    "meanwhile ('dictionary changed size during iteration'), left the stack CREATE_PENDING forever.)",
)
def _create_stack_atomic() -> None:
    # one lock for the CloudFormation backend's writes (the emulator's own lock, not moto's)
    lock = threading.RLock()

    def serialised(original):
        def call(self, *args, **kwargs):
            with lock:
                return original(self, *args, **kwargs)

        return call

    original_create = CloudFormationBackend.create_stack

    def create_stack(self, name, *args, **kwargs):
        with lock:
            before = set(self.stacks)
            try:
                return original_create(self, name, *args, **kwargs)
            except Exception:
                for stack_id in set(self.stacks) - before:
                    stack = self.stacks[stack_id]
                    if stack.status == "CREATE_PENDING":  # refused before any resource: no stack, as on AWS
                        del self.stacks[stack_id]
                        for export in list(stack.exports):
                            if getattr(self.exports.get(export.name), "exporting_stack_id", None) == stack_id:
                                del self.exports[export.name]
                    elif stack.status == "CREATE_IN_PROGRESS":  # a resource failed: as AWS shows it
                        stack.status = "CREATE_FAILED"
                        stack._add_stack_event("CREATE_FAILED", resource_status_reason="emulator error")
                raise

    CloudFormationBackend.create_stack = create_stack
    for operation in ("update_stack", "delete_stack", "create_change_set", "execute_change_set", "delete_change_set"):
        setattr(CloudFormationBackend, operation, serialised(getattr(CloudFormationBackend, operation)))


_APPLIED = False


def apply() -> list[tuple[str, str]]:
    """Apply every patch once; return their names and the AWS behaviour each reproduces."""
    global _APPLIED  # noqa: PLW0603 - patches are process-wide by nature
    if not _APPLIED:
        for patch in (
            _change_set_without_changes,
            _insufficient_capabilities,
            _capabilities_reported,
            _execute_change_set_records_the_stack,
            _create_stack_atomic,
        ):
            patch()
        _APPLIED = True
    return list(PATCHES)
