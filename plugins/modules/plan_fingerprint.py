#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: plan_fingerprint
short_description: Fingerprint a plan's inputs and live state; refuse an apply whose plan file is stale
version_added: 0.2.0
description:
  - Computes one SHA-256 per input file (templates, cluster config, charts, release files, inventory)
    and reads the status and last update time of the environment's CloudFormation stacks.
  - The C(biomage.iac.plan) callback writes the result into the plan file of a check run
    (C(-e biomage_plan_out=<file>)).
  - Given O(plan_in) (C(-e biomage_plan_in=<file>)) or O(plan), it fails, naming every changed file and stack,
    when the inputs or the live stacks differ from the plan file's, or when a CloudFormation change set the
    plan file records is gone or no longer executable, so an apply refuses before any change.
  - Read-only. See docs/plan.md.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
author:
  - Biomage platform team (@biomage-org)
options:
  root:
    description: The repository root the O(inputs) are relative to.
    type: path
    required: true
  inputs:
    description: Files and folders (relative to O(root)) whose content the plan depends on.
    type: list
    elements: str
    required: true
  stack_prefix:
    description: With O(stack_suffix), the CloudFormation stacks whose state is part of the fingerprint.
    type: str
    default: biomage-
  stack_suffix:
    description: The environment's stack name suffix (C(-staging)); unset, no stack is read.
    type: str
  plan_in:
    description: A plan file to compare with; the module fails when it is stale.
    type: path
  plan:
    description:
      - A plan given as data instead of a file, the same comparison made. It is the extra variable
        C(biomage_plan) that an Automation Controller workflow passes from its plan job to its apply job
        (see O(hand_on)).
      - Mutually exclusive with O(plan_in).
    type: dict
  hand_on:
    description:
      - In check mode, also return the fingerprint as C(ansible_stats) (data C(biomage_plan), aggregated over
        the run, with the change sets M(biomage.iac.cfn_stacks) keeps). A controller's workflow hands a job's
        stats to the nodes after it as extra variables, so the apply after an approval gets the plan it
        approved as C(biomage_plan). ansible-playbook shows them only with C(show_custom_stats).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Fingerprint the inputs; refuse a stale plan file
  biomage.iac.plan_fingerprint:
    root: "{{ playbook_dir | dirname }}"
    inputs: [cf, infra, charts, releases/staging, inventories/staging]
    stack_suffix: -staging
    plan_in: "{{ biomage_plan_in | default(omit) }}"

- name: In an Automation Controller workflow, the plan job hands its plan on and the apply checks it
  biomage.iac.plan_fingerprint:
    root: "{{ playbook_dir | dirname }}"
    inputs: [cf, infra, charts, releases/staging, inventories/staging]
    stack_suffix: -staging
    hand_on: "{{ ansible_check_mode }}"
    plan: "{{ biomage_plan | default(omit) }}"
"""

RETURN = r"""
plan_fingerprint:
  description: The fingerprint (the callback copies it into the plan file).
  returned: success
  type: dict
  sample:
    format: 1
    inputs: {cf/dynamo.yaml: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    inputs_digest: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    live: {biomage-dynamo-staging: UPDATE_COMPLETE@2026-11-30T10:00:00+00:00}
    live_digest: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9
checked:
  description: Whether a plan file was compared (and matched).
  returned: success
  type: bool
change_sets:
  description:
    - The planned change sets recorded in O(plan_in) or O(plan) (stack name -> the change set's record, with
      its C(id)); the roles that converge stacks pass them to M(biomage.iac.cfn_stacks) (option
      C(execute_change_sets)).
  returned: when O(plan_in) or O(plan) is given
  type: dict
ansible_stats:
  description: The fingerprint as custom stats (C(biomage_plan.fingerprint)), for a controller's workflow.
  returned: check mode with O(hand_on)
  type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils import plan_file
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    ClientError,
    aws_errors,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.client import change_set_missing
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail


def live_stacks(module):
    suffix = module.params["stack_suffix"]
    if not suffix:
        return {}
    settings = module_settings(module)
    with aws_errors(settings, "list the CloudFormation stacks", needs="cloudformation:DescribeStacks"):
        client = module_client(module, "cloudformation")
        stacks = [s for page in client.get_paginator("describe_stacks").paginate() for s in page.get("Stacks", [])]
    return plan_file.stack_states(stacks, module.params["stack_prefix"], suffix)


def change_set_reasons(module, change_sets):
    """Why the plan file's change sets cannot be executed (gone, failed, executed or obsolete)."""
    if not change_sets:
        return []
    settings = module_settings(module)
    client = module_client(module, "cloudformation")

    def describe(stack, change_set_id):
        with aws_errors(settings, f"read change set {change_set_id}", needs="cloudformation:DescribeChangeSet"):
            try:
                return client.describe_change_set(StackName=stack, ChangeSetName=change_set_id)
            except ClientError as exc:
                if change_set_missing(exc):
                    return None
                raise

    return plan_file.change_set_problems(change_sets, describe)


def main():
    spec = dict(
        root=dict(type="path", required=True),
        inputs=dict(type="list", elements="str", required=True),
        stack_prefix=dict(type="str", default="biomage-"),
        stack_suffix=dict(type="str"),
        plan_in=dict(type="path"),
        plan=dict(type="dict"),
        hand_on=dict(type="bool", default=False),
    )
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=spec, supports_check_mode=True, mutually_exclusive=[("plan_in", "plan")])
    params = module.params
    result = dict(changed=False, checked=False)
    try:
        if params["plan"]:
            planned, source = plan_file.handed_on(params["plan"]), plan_file.HANDED_ON
        elif params["plan_in"]:
            planned, source = plan_file.read(params["plan_in"]), params["plan_in"]
        else:
            planned = source = None
        current = plan_file.fingerprint(plan_file.input_digests(params["root"], params["inputs"]), live_stacks(module))
        result["plan_fingerprint"] = current
        if module.check_mode and params["hand_on"]:
            result["ansible_stats"] = plan_file.handoff(fingerprint=current)
        if planned is not None:
            reasons = plan_file.compare(planned["fingerprint"], current)
            reasons += change_set_reasons(module, planned.get("change_sets"))
            if reasons:
                raise plan_file.refusal(source, reasons)
            result.update(checked=True, change_sets=dict(planned.get("change_sets") or {}))
    except BiomageError as exc:
        fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
