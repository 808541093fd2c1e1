#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cfn_stacks
short_description: Plan and converge a set of CloudFormation stacks in one call
version_added: 0.1.0
description:
  - Takes every stack of one environment and group (for example all of C(cf/*.yaml) but C(irsa-*))
    and converges them. It validates all templates first, plans against the deployed stacks, deploys the
    changed ones concurrently in dependency order, and reports orphans.
  - B(Validation first.) Every template is checked against the repository's template rules
    (C(plugins/module_utils/cloudformation/rules.py), also run by C(make lint)), every parameter against its
    declaration, and exports/imports are resolved into a dependency graph. Any problem fails the
    task before any AWS call, naming the file, the field and the fix.
  - B(Exemptions.) A template may exempt itself or one resource from a rule with a reason
    (C(Metadata.biomage.exemptions)), and accounts of other organisations or AWS services are accepted
    when the allow-list O(third_party_accounts) names them. Every exemption that applied is returned in
    RV(exemptions) and shown in the diff.
  - B(Unchanged stacks cost at most two API calls and no change set.) One paginated DescribeStacks
    lists all stacks; one GetTemplate per existing stack. A stack is unchanged when its deployed
    template (compared as parsed YAML/JSON, so comments and formatting do not count), its parameter
    values, tags and capabilities equal the desired ones.
  - B(Changed stacks) are deployed with a change set (O(deploy_method=change_set), whose resource
    changes are returned) or with CreateStack/UpdateStack (O(deploy_method=direct)). Each stack is
    waited for with exponential backoff; stacks another operation left C(*_IN_PROGRESS) are waited
    for before planning.
  - B(Recovery.) C(UPDATE_ROLLBACK_FAILED) stacks get ContinueUpdateRollback and are then updated.
    C(ROLLBACK_COMPLETE) and C(CREATE_FAILED) stacks (failed creations, which cannot be updated) are
    deleted and created again only with O(recreate_rollback_complete=true); otherwise the task fails
    before changing anything. C(REVIEW_IN_PROGRESS) stacks (an unexecuted creation change set, no
    resources) are replaced.
  - B(Ownership.) Every stack gets the tags C(biomage:managed-by=biomage.iac),
    C(biomage:environment), C(biomage:group) and C(biomage:template). A stack with the tags of this
    environment and group that is not in O(stacks) is an orphan. It is reported (and warned about)
    and deleted only with O(prune=true); a stack without these tags is never deleted.
  - B(Adoption.) A stack with a desired name but no ownership tags (for example created by an earlier
    pipeline) is planned as C(adopt); applying adds the tags and changes nothing else (its template
    and parameter values stay as deployed). From then on it is managed like any other stack; the next
    run plans its remaining differences, and it is an orphan once its template is gone.
  - B(Imports.) A stack importing another stack's export (C(Fn::ImportValue)) is deployed after it,
    after the exporting stack of the same call, or, for an export of another stack (another group's,
    or eksctl's cluster stack), once that stack is no longer being changed. An export nobody provides
    blocks the importing stack and the stacks that depend on it, and only those; the others are
    converged and the task then fails naming exactly the blocked ones.
  - B(Large templates.) A template over 51,200 bytes (CloudFormation's limit for a request body) is
    uploaded to the S3 bucket O(template_bucket) and deployed by C(TemplateURL), as AWS requires;
    without a bucket it is refused before any AWS call with that fix.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.attributes
author:
  - Biomage platform team (@biomage-org)
options:
  environment:
    description: The environment of the stacks (tag C(biomage:environment)).
    type: str
    required: true
  group:
    description:
      - The set these stacks belong to (tag C(biomage:group)), for example C(aws-resources) or
        C(irsa). Orphans are looked for only within this environment and group.
    type: str
    required: true
  stacks:
    description: The desired stacks. Give each a template path or a template body.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The stack name.
        type: str
        required: true
      template:
        description: Path of the template on the node that runs the module (the control node).
        type: path
      template_body:
        description: The template text, instead of O(stacks[].template).
        type: str
      template_label:
        description:
          - How the template is named in messages and in the C(biomage:template) tag, for example
            C(cf/dynamo.yaml). Defaults to O(stacks[].template).
        type: str
      parameters:
        description:
          - Parameter values. Parameters not given take their template default; a parameter without
            a default must be given. Lists are joined with commas, booleans become C(true)/C(false).
          - Keep secrets out of parameters; declare them in the template (Secrets Manager dynamic
            references). Values of C(NoEcho) parameters are masked in the output and cannot be compared.
        type: dict
        default: {}
      tags:
        description: Extra stack tags (keys starting with C(biomage:) or C(aws:) are reserved).
        type: dict
        default: {}
      capabilities:
        description:
          - Capabilities to grant in addition to those the template needs (computed from its IAM
            resources and transforms).
        type: list
        elements: str
        choices: [CAPABILITY_IAM, CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND]
        default: []
      depends_on:
        description:
          - Stacks of this call to converge first. Dependencies through C(Fn::ImportValue) of another
            stack's exports are found automatically.
        type: list
        elements: str
        default: []
      deploy:
        description:
          - C(false) validates the template and keeps an existing stack out of the orphan list, but
            neither creates nor updates it (for example a template the local emulator cannot deploy).
        type: bool
        default: true
  prune:
    description: Delete orphans (owned stacks of this environment and group whose template is gone).
    type: bool
    default: false
  recreate_rollback_complete:
    description:
      - Delete and recreate stacks in C(ROLLBACK_COMPLETE) or C(CREATE_FAILED) (their creation failed;
        CloudFormation cannot update them). Without it such a stack fails the task before any change.
    type: bool
    default: false
  deploy_method:
    description:
      - C(change_set) creates, describes and executes a change set per changed stack (the resource
        changes are returned).
      - C(direct) calls CreateStack/UpdateStack (the resource changes of a create are listed from the
        template). No environment of this repository uses it (the development emulator is patched to
        execute change sets as AWS does); it is there for an endpoint whose change sets cannot be used.
    type: str
    choices: [change_set, direct]
    default: change_set
  max_workers:
    description: Stacks deployed (and templates read) at the same time.
    type: int
    default: 4
  wait_timeout:
    description: Seconds to wait for one stack operation (or one left in progress by someone else).
    type: int
    default: 1800
  poll_delay:
    description: First delay in seconds between status polls; it doubles up to O(max_poll_delay).
    type: float
    default: 1.0
  max_poll_delay:
    description: Longest delay in seconds between status polls.
    type: float
    default: 15.0
  rules:
    description: Apply the repository's template rules before anything else.
    type: bool
    default: true
  third_party_accounts:
    description:
      - The reviewed allow-list of third-party AWS accounts (C(accounts) entries with C(account_id),
        C(service) and optionally C(reference)) for every template of the call.
      - By default each template (given by O(stacks[].template)) uses the nearest
        C(third-party-accounts.yaml) in its folder or above it, up to the repository root; a template
        given as O(stacks[].template_body) uses none.
    type: path
  validate_only:
    description: Validate the templates and inputs only; make no AWS call.
    type: bool
    default: false
  changed_before:
    description:
      - What earlier tasks of the same run changed (e.g. the stacks another role deployed), named in this
        module's failure messages so that they say everything the run changed before failing.
    type: list
    elements: str
    default: []
  option_variables:
    description:
      - The variables an operator sets for this module's options, named in error messages instead of the
        options (for example C(recreate_rollback_complete) -> C(aws_resources_recreate_rollback_complete)).
    type: dict
    default: {}
  template_bucket:
    description:
      - S3 bucket that templates over 51,200 bytes are uploaded to (key
        C(biomage-iac/cloudformation/<stack>/<sha256>.template), written once per template version) and
        deployed from with C(TemplateURL). Templates up to 1 MB are accepted this way.
      - Without it such a template is refused before any AWS call. Smaller templates never use it.
    type: str
  template_bucket_create:
    description:
      - Create O(template_bucket) when it does not exist (in the module's region; all public access
        blocked, SSE-S3 encryption, uploaded templates expire after 30 days since CloudFormation keeps
        its own copy). Only happens when a large template is deployed; the plan lists it.
    type: bool
    default: false
  keep_change_sets:
    description:
      - Check mode only (a plan run that writes a plan file, C(-e biomage_plan_out=<file>)). The change set
        of each stack update is kept instead of deleted, and returned in RV(planned_change_sets) for the plan
        file, so that an apply can execute exactly what was reviewed (O(execute_change_sets)).
      - Without it, check mode creates, describes and deletes them as always.
    type: bool
    default: false
  execute_change_sets:
    description:
      - An apply of a plan file. Stack name -> the record of its planned change set (RV(planned_change_sets)
        of the plan run, or just the change set id). Stacks of this call that have one are updated by
        executing exactly that change set (ExecuteChangeSet by id, no new change set), after checking, for
        every such stack and before any change, that the stack still needs the update, is the same stack
        in the same state (status and last update time), that its template, parameters, tags and
        capabilities are those the change set was made from, and that the change set exists and is
        C(CREATE_COMPLETE)/C(AVAILABLE). Any difference fails the task, naming it, with nothing changed.
      - Stacks of the call without an entry are planned and deployed as always; entries of other stacks
        are ignored. Not used in check mode.
    type: dict
    default: {}
  progress_interval:
    description:
      - While a stack operation is waited for, its status is reported to the C(biomage.iac.progress)
        callback at once, then every O(progress_interval) seconds with the elapsed time and the stack's
        latest event (one DescribeStackEvents each time). Nothing is read when no callback listens.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    details:
      - Nothing is created, updated or deleted. For a stack whose template, parameters or tags changed,
        a change set is created, described (its resource changes are returned) and deleted again (kept
        with O(keep_change_sets)). A new
        stack is planned from its template without any write, and so is an update of a template over
        51,200 bytes (nothing is uploaded to S3 in check mode). CloudFormation deciding a difference is
        not deployable (for example only a description changed) is reported as unchanged, as in a real run.
  diff_mode:
    support: full
    details:
      - One diff of the template text (deployed against desired) and one of parameters and tags per
        changing stack; C(NoEcho) parameter values are masked.
  idempotent:
    support: full
notes:
  - The module reads template files on the node that runs it; run it on the control node
    (a local connection), as the biomage.iac roles do.
  - Template bodies larger than 51,200 bytes need O(template_bucket) (CloudFormation takes them only from S3).
  - Termination protection, stack policies, notification ARNs and service roles are not managed.
seealso:
  - name: Template rules and how to add a template
    description: docs/aws-resources.md in the biomage.iac repository.
    link: https://github.com/biomage-org/iac/blob/main/docs/aws-resources.md
"""

EXAMPLES = r"""
- name: Converge every non-IRSA template of cf/ for staging
  biomage.iac.cfn_stacks:
    environment: staging
    group: aws-resources
    region: eu-west-1
    stacks:
      - name: biomage-dynamo-staging
        template: "{{ playbook_dir }}/../cf/dynamo.yaml"
        template_label: cf/dynamo.yaml
        parameters:
          Environment: staging
      - name: biomage-sns-staging
        template: "{{ playbook_dir }}/../cf/sns.yaml"
        template_label: cf/sns.yaml
        parameters:
          Environment: staging
          DomainName: scp-staging.biomage.net
  register: converged

- name: Show what a run would change (with --check --diff) and delete orphans
  biomage.iac.cfn_stacks:
    environment: staging
    group: aws-resources
    prune: true
    stacks: "{{ my_stacks }}"

- name: Validate templates without touching AWS (CI)
  biomage.iac.cfn_stacks:
    environment: development
    group: aws-resources
    validate_only: true
    stacks:
      - name: biomage-s3-development
        template: cf/s3.yaml
"""

RETURN = r"""
plan:
  description:
    - Every stack of the call and every orphan in the collection's plan shape (the C(biomage.iac.plan)
      callback sums them), sorted by name; first the S3 bucket for large templates when it is created.
    - C(action) is C(create), C(update) (also a continued rollback), C(replace) (a failed creation deleted
      and created again), C(delete) (a pruned orphan), C(adopt) or C(unchanged) (also C(deploy=false) and
      orphans kept); C(reason) names what differs (never a value).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "CloudFormation stack", "name": "biomage-sqs-staging", "action": "update", "reason": "template"}]
stacks:
  description: One entry per stack of the call and per orphan, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Stack name.
      type: str
      sample: biomage-dynamo-staging
    template:
      description: The template label (C(biomage:template) tag).
      type: str
      sample: cf/dynamo.yaml
    action:
      description:
        - What was (or in check mode would be) done - C(create), C(update), C(unchanged),
          C(recreate), C(continue_rollback), C(delete) (pruned orphan), C(adopt) (a stack created
          outside biomage.iac, tagged) or C(skipped) (C(deploy=false), or an orphan without O(prune)).
      type: str
      sample: update
    changed:
      description: Whether this stack changed (or would change).
      type: bool
    status:
      description: The stack status after the run (before it, in check mode).
      type: str
      sample: UPDATE_COMPLETE
    reasons:
      description: Why the stack is not unchanged (template, parameters, tags, capabilities, state).
      type: list
      elements: str
      sample: ["template", "parameters: OIDCProvider"]
    changes:
      description: Resource changes (from the change set, or from the template for a new stack).
      type: list
      elements: dict
      sample: [{"action": "Modify", "logical_id": "Role", "type": "AWS::IAM::Role", "replacement": "False"}]
    notes:
      description: Remarks (formatting-only template differences, waits, orphans, emulator limits).
      type: list
      elements: str
    error:
      description: Why this stack failed or was blocked (not deployed), if it was.
      type: str
    imports:
      description: Exports of stacks outside the call that this stack imports (for stacks being deployed).
      type: list
      elements: dict
      sample:
        - name: eksctl-biomage-staging-cluster::VPC
          value: vpc-0a1b2c
          exporter: eksctl-biomage-staging-cluster
    outputs:
      description: The stack outputs (C(OutputKey) to value).
      type: dict
      sample: {"ExperimentsTableName": "experiments-staging"}
    api_calls:
      description: CloudFormation API calls made for this stack.
      type: int
      sample: 1
    duration:
      description: Seconds spent deploying this stack.
      type: float
    change_set:
      description:
        - The id of the change set kept for a plan file (check mode with O(keep_change_sets)) or executed from
          one (O(execute_change_sets)); null otherwise.
      type: str
outputs:
  description: Outputs of every stack of the call, by stack name.
  returned: always
  type: dict
  sample: {"biomage-dynamo-staging": {"ExperimentsTableName": "experiments-staging"}}
orphans:
  description: Owned stacks of this environment and group whose template is not in O(stacks).
  returned: always
  type: list
  elements: str
summary:
  description: Number of stacks per action (C(failed) for failures).
  returned: always
  type: dict
  sample: {"unchanged": 7, "update": 1}
api_calls:
  description: CloudFormation API calls of the whole run.
  returned: always
  type: dict
  contains:
    total:
      description: All calls (counted by the client).
      type: int
    shared:
      description: Calls not attributable to one stack (DescribeStacks pages, ListExports).
      type: int
    by_operation:
      description: Calls per API operation.
      type: dict
duration:
  description: Seconds the whole run took.
  returned: success
  type: float
exemptions:
  description:
    - The rule findings the templates are exempt from, one per finding, with the reason (a
      C(Metadata.biomage.exemptions) entry of the template, or an account of the allow-list).
  returned: always
  type: list
  elements: dict
  contains:
    template:
      description: The template label.
      type: str
      sample: cf/assets.yaml
    rule:
      description: The rule exempted from.
      type: str
      sample: BIO008
    path:
      description: Where in the template the finding is.
      type: str
      sample: Resources.DownloadsPolicy.Properties.PolicyDocument.Statement[0].Principal
    reason:
      description: Why the template may break the rule there.
      type: str
    source:
      description: Where the reason is written (the exemption's place in the template, or the allow-list file).
      type: str
      sample: Resources.DownloadsPolicy.Metadata.biomage.exemptions[0]
planned_change_sets:
  description:
    - Check mode with O(keep_change_sets) - the kept change sets by stack name (the C(biomage.iac.plan)
      callback writes them into the plan file; O(execute_change_sets) takes them back).
  returned: check mode with O(keep_change_sets)
  type: dict
  sample:
    biomage-sqs-staging:
      id: arn:aws:cloudformation:eu-west-1:123456789012:changeSet/biomage-iac-20261203010203-1a2b3c4d/5e6f
      stack_id: arn:aws:cloudformation:eu-west-1:123456789012:stack/biomage-sqs-staging/0a1b
      stack_state: UPDATE_COMPLETE@2026-12-01T10:00:00+00:00
      request: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
ansible_stats:
  description:
    - The same kept change sets as custom stats (C(biomage_plan.change_sets), aggregated over the run, beside the
      fingerprint of M(biomage.iac.plan_fingerprint)), so that an Automation Controller workflow hands them to
      its apply job as the extra variable C(biomage_plan).
  returned: check mode with O(keep_change_sets), when a change set was kept
  type: dict
problems:
  description: Validation or planning problems (the task failed before any change).
  returned: failure
  type: list
  elements: str
"""

import time

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils import plan_file
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    ApiCallCounter,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import render
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import ALLOWED_CAPABILITIES, prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.upload import TemplateUploader
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.option_names import name_variables

STACK_OPTIONS = {
    "name": {"type": "str", "required": True},
    "template": {"type": "path"},
    "template_body": {"type": "str"},
    "template_label": {"type": "str"},
    "parameters": {"type": "dict", "default": {}},
    "tags": {"type": "dict", "default": {}},
    "capabilities": {"type": "list", "elements": "str", "choices": list(ALLOWED_CAPABILITIES), "default": []},
    "depends_on": {"type": "list", "elements": "str", "default": []},
    "deploy": {"type": "bool", "default": True},
}


def argument_spec():
    spec = {
        "environment": {"type": "str", "required": True},
        "group": {"type": "str", "required": True},
        "stacks": {
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": STACK_OPTIONS,
            "mutually_exclusive": [["template", "template_body"]],
            "required_one_of": [["template", "template_body"]],
        },
        "prune": {"type": "bool", "default": False},
        "recreate_rollback_complete": {"type": "bool", "default": False},
        "deploy_method": {"type": "str", "choices": ["change_set", "direct"], "default": "change_set"},
        "max_workers": {"type": "int", "default": 4},
        "wait_timeout": {"type": "int", "default": 1800},
        "poll_delay": {"type": "float", "default": 1.0},
        "max_poll_delay": {"type": "float", "default": 15.0},
        "rules": {"type": "bool", "default": True},
        "third_party_accounts": {"type": "path"},
        "validate_only": {"type": "bool", "default": False},
        "option_variables": {"type": "dict", "default": {}},
        "changed_before": {"type": "list", "elements": "str", "default": []},
        "template_bucket": {"type": "str"},
        "template_bucket_create": {"type": "bool", "default": False},
        "keep_change_sets": {"type": "bool", "default": False},
        "execute_change_sets": {"type": "dict", "default": {}},
        "progress_interval": {"type": "float", "default": 30.0},
    }
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    return spec


def converge(module, specs, counter):
    """Plan and (unless in check mode) apply ``specs``; the runner with its results."""
    params = module.params
    client = module_client(
        module, "cloudformation", counter=counter, max_pool_connections=max(10, params["max_workers"] * 2)
    )
    uploader = None
    if params["template_bucket"]:
        uploader = TemplateUploader(
            lambda: module_client(module, "s3"),
            params["template_bucket"],
            module.region,
            create=params["template_bucket_create"],
            check_mode=module.check_mode,
            settings=module_settings(module),
        )
    runner = CfnStacks(
        client,
        params["environment"],
        params["group"],
        settings=module_settings(module),
        check_mode=module.check_mode,
        prune=params["prune"],
        recreate_rollback_complete=params["recreate_rollback_complete"],
        deploy_method=params["deploy_method"],
        max_workers=params["max_workers"],
        wait_timeout=params["wait_timeout"],
        poll_delay=params["poll_delay"],
        max_poll_delay=params["max_poll_delay"],
        uploader=uploader,
        keep_change_sets=params["keep_change_sets"],
        planned_change_sets=params["execute_change_sets"],
        progress_interval=params["progress_interval"],
    )
    runner.plan(specs)
    runner.apply()
    return runner


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    counter = ApiCallCounter()
    started = time.monotonic()
    earlier = ", ".join(params["changed_before"])
    try:
        specs = prepare(
            params["stacks"],
            params["environment"],
            params["group"],
            module.region,
            apply_rules=params["rules"],
            third_party_accounts=params["third_party_accounts"],
            template_bucket=params["template_bucket"],
        )
        exemptions = [e for spec in specs for e in spec.exemptions]
        if params["validate_only"]:
            result = {
                "changed": False,
                "plan": [],
                "stacks": [{"name": s.name, "template": s.label, "action": "validated"} for s in specs],
                "outputs": {},
                "orphans": [],
                "summary": {"validated": len(specs)},
                "api_calls": {"total": 0, "shared": 0, "by_operation": {}},
                "exemptions": [e.to_dict() for e in exemptions],
            }
            if module._diff and exemptions:
                result["diff"] = [render.exemptions_diff(exemptions)]
            module.exit_json(**result)
        runner = converge(module, specs, counter)
    except BiomageError as exc:
        exc = name_variables(exc, params["option_variables"])
        if params["changed_before"]:
            exc.message = f"{exc.message} (this task changed nothing; earlier in this run: {earlier})"
            exc.args = (exc.message,)
        fail(module, exc, changed=False)

    results = [runner.results[name] for name in sorted(runner.results)]
    result = {
        "changed": any(r.changed for r in results) or bool(runner.uploader and runner.uploader.bucket_created),
        "plan": runner.plan_entries(),
        "stacks": [r.to_dict() for r in results],
        "outputs": {r.name: r.outputs for r in results if r.spec is not None},
        "orphans": sorted(runner.orphans),
        "summary": runner.summary(),
        "api_calls": {"total": counter.total, "shared": runner.shared_api_calls, "by_operation": counter.snapshot()},
        "duration": round(time.monotonic() - started, 3),
        "exemptions": [e.to_dict() for e in exemptions],
    }
    if module.check_mode and params["keep_change_sets"]:
        result["planned_change_sets"] = runner.kept_change_sets()
        if result["planned_change_sets"]:
            result["ansible_stats"] = plan_file.handoff(change_sets=result["planned_change_sets"])
    if module._diff:
        diffs = runner.diffs()
        if exemptions:
            diffs.append(render.exemptions_diff(exemptions))
        if diffs:
            result["diff"] = diffs
    for warning in runner.warnings:
        module.warn(warning)
    blocked = [r for r in results if r.error and r.blocked]
    failed = [r for r in results if r.error and not r.blocked]
    if blocked or failed:
        parts = []
        if failed:
            # stacks that failed alike (e.g. not attempted once AWS could not be reached) are named together
            alike = {}
            for r in failed:
                alike.setdefault(r.error, []).append(r.name)
            parts.append(
                f"{len(failed)} stack(s) failed: " + "; ".join(f"{', '.join(n)}: {e}" for e, n in alike.items())
            )
        if blocked:
            parts.append(
                f"{len(blocked)} stack(s) blocked, not deployed: "
                + "; ".join(f"{r.name}: {r.error}" for r in blocked)
                + (" (the other stacks were converged)" if not module.check_mode else "")
            )
        message = ". ".join(parts)
        changed = [f"{r.name} ({r.action})" for r in results if r.changed and not r.error]
        # failed after its change was sent: the change may have been made (e.g. the endpoint died meanwhile)
        maybe = [f"{r.name} ({r.action})" for r in results if r.error and r.write_sent]
        message += (
            f". Changed by this task before or while they failed: {', '.join(changed) or 'nothing'}"
            + (f"; sent, outcome unknown (may have changed): {', '.join(maybe)}" if maybe else "")
            + (f"; earlier in this run: {earlier}" if params["changed_before"] else "")
            + ". A re-run plans again from what is deployed: it leaves the changed stacks as they are and "
            "retries the failed ones."
        )
        fail(module, name_variables(CfnError(message), params["option_variables"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
