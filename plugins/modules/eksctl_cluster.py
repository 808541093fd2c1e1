#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eksctl_cluster
short_description: Converge an EKS cluster with eksctl from a ClusterConfig file
version_added: 0.1.0
description:
  - Reads the live cluster with eksctl's JSON output, compares it with an C(eksctl.io/v1alpha5) ClusterConfig and
    applies the difference in a safe order, or only reports the plan in check mode.
  - The configuration is validated before any eksctl call; an invalid file fails naming the file, the field and
    the fix.
  - A missing cluster is created. An existing one has its control plane upgraded one minor version at a time
    (at most O(max_version_steps) in a run; a longer jump fails before any change), then lagging managed node
    groups and add-ons; the IAM OIDC provider associated; the authentication mode moved
    forward (CONFIG_MAP, API_AND_CONFIG_MAP, API; never back); access entries reconciled (missing ones added
    before extra IAM user entries are removed); Fargate profiles and node groups added and removed.
  - Node groups are immutable. A change of an immutable field (instance types, AMI family, volume, IMDS, spot,
    networking, availability zones, labels, taints, IAM) fails before any change by default; with
    O(nodegroup_changes=roll) a replacement named C(<name>-<hash of its spec>) is created and waited for, then
    the old group is drained and deleted, so capacity never drops.
  - O(state=absent) deletes the cluster's LoadBalancer Services first (their load balancers block the VPC's
    deletion), then the cluster, and waits.
extends_documentation_fragment:
  - biomage.iac.attributes
author:
  - Biomage platform team (@biomage-org)
requirements:
  - eksctl 0.230.0 or newer on the control node
  - PyYAML
  - the kubernetes Python client (for O(state=absent) only)
attributes:
  check_mode:
    support: full
    details: Reads the live state and returns the full plan; no mutating eksctl command is run.
  diff_mode:
    support: full
    details: Returns C(before) and C(after) summaries of the cluster (version, node groups, add-ons,
      Fargate profiles, access entries).
  idempotent:
    support: full
    details: A second run against an unchanged configuration plans nothing and reports no change.
options:
  name:
    description: The EKS cluster name (C(biomage-<environment>)); fills C(metadata.name).
    type: str
    required: true
  region:
    description: The AWS region; fills C(metadata.region).
    type: str
    required: true
  state:
    description: Whether the cluster should exist.
    type: str
    choices: [present, absent]
    default: present
  config_file:
    description:
      - The ClusterConfig (C(infra/cluster.yaml)), without name and region. Required when O(state=present).
    type: path
  kubernetes_version:
    description:
      - Overrides C(metadata.version) of O(config_file), for example to upgrade one environment first.
    type: str
  addon_versions:
    description:
      - Overrides the C(version) of add-ons listed in O(config_file), by add-on name (for example C(kube-proxy),
        which follows the Kubernetes version).
    type: dict
    default: {}
  cluster_admins_file:
    description:
      - A file of IAM user names, one a line (C(#) comments allowed), given C(AmazonEKSClusterAdminPolicy)
        at cluster scope through access entries.
    type: path
  cluster_users_file:
    description:
      - A file of IAM user names, one a line, given read-only C(AmazonEKSViewPolicy) at cluster scope.
    type: path
  account_id:
    description:
      - The AWS account id, used to turn the user names into IAM ARNs. Required with O(cluster_admins_file)
        or O(cluster_users_file).
    type: str
  keep_principals:
    description:
      - IAM principal ARNs whose access entries are never removed (for example the identity running this).
      - Only access entries of IAM users are ever removed; roles (node roles, Fargate, CI) keep theirs.
    type: list
    elements: str
    default: []
  nodegroup_changes:
    description:
      - What to do when an immutable field of an existing node group changed.
      - V(fail) stops before any change with a message naming the group, the fields and the fix.
      - V(roll) creates C(<name>-<hash of spec>), waits until it is active, then drains and deletes the old group.
    type: str
    choices: [fail, roll]
    default: fail
  max_version_steps:
    description:
      - How many Kubernetes minor versions the control plane may move in one run. A config further ahead of the
        live cluster fails before any change, naming the next minor to set.
      - The default takes one minor per change of the config, so each step gets its own add-on versions and
        node group upgrade.
    type: int
    default: 1
  kubeconfig:
    description:
      - Where to write the cluster's kubeconfig (C(eksctl utils write-kubeconfig)); its path is returned.
      - Defaults to C(~/.kube/eksctl/clusters/<name>).
    type: path
  eksctl_path:
    description: The eksctl binary; found on E(PATH) when not set.
    type: path
  work_dir:
    description:
      - Folder for the rendered configuration files handed to eksctl; a temporary folder, removed afterwards,
        when not set.
    type: path
  wait_timeout:
    description: Seconds to wait for a replacement node group (and for LoadBalancer Services to go).
    type: int
    default: 1800
  poll_interval:
    description: Seconds between two checks while waiting.
    type: int
    default: 15
  log_dir:
    description:
      - Keep eksctl's whole log (stderr of every command) in a new file in this folder, returned as
        RV(progress_log); its latest line is the task's progress (the C(biomage.iac.progress) callback).
      - Unset, eksctl's output is captured as before.
    type: path
notes:
  - eksctl reads AWS credentials from the environment (E(AWS_PROFILE), SSO, instance roles); expired credentials
    fail with a message saying so.
  - Add-ons not listed in the configuration are left alone; node groups and Fargate profiles not listed are
    deleted.
seealso:
  - name: eksctl config file schema
    description: The ClusterConfig fields.
    link: https://eksctl.io/usage/schema/
"""

EXAMPLES = r"""
- name: Converge the staging cluster
  biomage.iac.eksctl_cluster:
    name: biomage-staging
    region: eu-west-1
    config_file: "{{ playbook_dir }}/../infra/cluster.yaml"
    cluster_admins_file: "{{ playbook_dir }}/../infra/cluster_admins"
    cluster_users_file: "{{ playbook_dir }}/../infra/cluster_users"
    account_id: "123456789012"
    kubeconfig: ~/.kube/biomage/biomage-staging.yaml
  register: cluster

- name: Replace node groups whose instance type changed, without losing capacity
  biomage.iac.eksctl_cluster:
    name: biomage-staging
    region: eu-west-1
    config_file: infra/cluster.yaml
    nodegroup_changes: roll

- name: Delete a cluster (LoadBalancer Services first)
  biomage.iac.eksctl_cluster:
    name: biomage-sandbox
    region: eu-west-1
    state: absent
"""

RETURN = r"""
plan:
  description: What the run does (or, in check mode, would do), in the order it is applied.
  returned: always
  type: dict
  sample:
    state: present
    cluster: upgrade
    changed: true
    version_steps: ["1.33"]
    authentication_mode_steps: []
    oidc_provider: unchanged
    addons: {create: [], update: [{name: kube-proxy, from: v1.32.0-eksbuild.2, to: v1.33.0}]}
    nodegroups:
      create: []
      scale: []
      upgrade: [{name: workers, from: "1.32", to: "1.33"}]
      roll: []
      delete: []
    fargate_profiles: {create: [], delete: []}
    access_entries: {add: ["arn:aws:iam::123456789012:user/alice"], update: [], remove: []}
    kubeconfig: {path: /home/ops/.kube/biomage/biomage-staging.yaml, action: refresh}
progress_log:
  description: The file holding eksctl's whole log of this run (when O(log_dir) is set).
  returned: when O(log_dir) is set
  type: str
  sample: /home/ops/.cache/biomage-iac/eksctl/biomage-staging-20261202T101500.log
plan_entries:
  description: The plan in the collection's shape (kind, name, action, reason) for the C(biomage.iac.plan) callback.
  returned: always
  type: list
  elements: dict
  sample: [{kind: EKS node group, name: workers, action: update, reason: "Kubernetes 1.32 -> 1.33"}]
endpoint:
  description: The API server endpoint (null while the cluster does not exist yet).
  returned: always
  type: str
  sample: https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.eu-west-1.eks.amazonaws.com
oidc_issuer:
  description: The cluster's OIDC issuer URL, for IRSA trust policies.
  returned: always
  type: str
  sample: https://oidc.eks.eu-west-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9
version:
  description: The Kubernetes version of the control plane.
  returned: always
  type: str
  sample: "1.33"
nodegroups:
  description: The managed node groups (as reported after the run, or as planned in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{name: workers, status: ACTIVE, instance_types: [m5.xlarge], version: "1.33", minSize: 1, maxSize: 4,
            desiredCapacity: 2}]
kubeconfig:
  description: The kubeconfig path for the roles that follow (not written in check mode).
  returned: when O(state=present)
  type: str
  sample: /home/ops/.kube/biomage/biomage-staging.yaml
commands:
  description: The mutating eksctl commands that were run (without the binary path).
  returned: always
  type: list
  elements: str
  sample: ["upgrade cluster --name biomage-staging --region eu-west-1 --version 1.33 --approve"]
deleted_load_balancer_services:
  description: The LoadBalancer Services deleted before the cluster (namespace/name).
  returned: when O(state=absent) deleted a cluster
  type: list
  elements: str
  sample: [ingress-nginx/ingress-nginx-controller]
"""

import os
import time
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.biomage.iac.plugins.module_utils import progress
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import (
    HAS_YAML,
    apply_overrides,
    load_config,
    read_principals,
    render,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks.eksctl import MIN_EKSCTL_VERSION, EksctlRunner
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.reconcile import Reconciler
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import validate
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import HAS_KUBERNETES, KUBERNETES_IMPORT_ERROR
from ansible_collections.biomage.iac.plugins.module_utils.kube.discovery import delete_load_balancer_services
from ansible_collections.biomage.iac.plugins.module_utils.plan_entries import eksctl_entries

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "region": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "config_file": {"type": "path"},
    "kubernetes_version": {"type": "str"},
    "addon_versions": {"type": "dict", "default": {}},
    "cluster_admins_file": {"type": "path"},
    "cluster_users_file": {"type": "path"},
    "account_id": {"type": "str"},
    "keep_principals": {"type": "list", "elements": "str", "default": []},
    "nodegroup_changes": {"type": "str", "choices": ["fail", "roll"], "default": "fail"},
    "max_version_steps": {"type": "int", "default": 1},
    "kubeconfig": {"type": "path"},
    "eksctl_path": {"type": "path"},
    "work_dir": {"type": "path"},
    "wait_timeout": {"type": "int", "default": 1800},
    "poll_interval": {"type": "int", "default": 15},
    "log_dir": {"type": "path"},
}


def desired_config(params):
    """Load, validate and render the ClusterConfig; every problem is raised before eksctl runs."""
    source = params["config_file"]
    config = apply_overrides(load_config(source), source, params["kubernetes_version"], params["addon_versions"])
    validate(config, source, name=params["name"], region=params["region"])
    admins = read_principals(params["cluster_admins_file"]) if params["cluster_admins_file"] else []
    users = read_principals(params["cluster_users_file"]) if params["cluster_users_file"] else []
    desired = render(
        config,
        params["name"],
        params["region"],
        admins=admins,
        users=users,
        account_id=params["account_id"],
        sources={"admins": params["cluster_admins_file"], "users": params["cluster_users_file"]},
    )
    # the rendered config (with the access entries) is checked again as a whole
    return validate(desired, source, name=params["name"], region=params["region"])


def run(module, runner_factory=EksctlRunner, lb_cleaner=None):
    """Everything but argument parsing; returns the result dict (raises EksError, or KubeError for the clean-up)."""
    params = module.params
    config = desired_config(params) if params["state"] == "present" else None
    if params["eksctl_path"] and not os.access(params["eksctl_path"], os.X_OK):
        raise EksError(
            f"eksctl_path {params['eksctl_path']} is not an executable file. Fix: install eksctl "
            f"{MIN_EKSCTL_VERSION} or newer there, or unset eksctl_path (role variable eks_cluster_eksctl_path) "
            "to use the eksctl on PATH.",
            kind="eksctl",
        )
    binary = params["eksctl_path"] or module.get_bin_path("eksctl")
    log_file = None
    if params["log_dir"]:
        # eksctl's whole log in a file (named in the result and, by biomage.iac.progress, in the output); its last
        # line is the task's progress line every 30 s
        log_file = os.path.join(params["log_dir"], f"{params['name']}-{time.strftime('%Y%m%dT%H%M%S')}.log")

    def run_command(argv):
        if log_file is None:
            return module.run_command(argv, check_rc=False)
        return progress.run_logged(module, argv, log_file, secrets=runner.secrets)

    runner = runner_factory(
        run_command,
        binary,
        params["region"],
        check_mode=module.check_mode,
    )
    kubeconfig = params["kubeconfig"] or str(Path.home() / ".kube" / "eksctl" / "clusters" / params["name"])
    reconciler = Reconciler(
        runner,
        params["name"],
        kubeconfig,
        work_dir=params["work_dir"],
        source=params["config_file"] or "the cluster configuration",
        nodegroup_changes=params["nodegroup_changes"],
        keep_principals=params["keep_principals"],
        max_version_steps=params["max_version_steps"],
        wait_timeout=params["wait_timeout"],
        poll_interval=params["poll_interval"],
        lb_cleaner=lb_cleaner
        or (lambda path: delete_load_balancer_services(path, params["wait_timeout"], params["poll_interval"])),
    )
    try:
        result = reconciler.present(config) if params["state"] == "present" else reconciler.absent()
    finally:
        reconciler.cleanup()
    diff = result.pop("diff")
    if log_file and os.path.exists(log_file):
        result["progress_log"] = log_file
    # the plan-shape entries (docs/plan.md): ``plan`` was this module's own summary before the shape existed
    result["plan_entries"] = eksctl_entries(params["name"], result.get("plan") or {})
    if module._diff:
        result["diff"] = diff
    return result


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ("config_file",))],
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    if module.params["state"] == "absent" and not HAS_KUBERNETES and not module.check_mode:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    try:
        result = run(module)
    except BiomageError as exc:
        fail(module, exc, error_kind=getattr(exc, "kind", "failed"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
