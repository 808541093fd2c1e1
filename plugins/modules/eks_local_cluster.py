#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_local_cluster
short_description: Register the local Kubernetes API server with the AWS emulator as an EKS cluster
version_added: 0.1.0
description:
  - Development only. Leaves the local AWS emulator (the moto server of C(make dev-up)) as eksctl leaves
    AWS after creating a cluster, so that later roles read the cluster with the calls they make in the
    cloud - for example C(biomage.iac.irsa) reads the OIDC issuer with C(biomage.iac.eks_oidc_provider_info)
    (eks:DescribeCluster).
  - B(The EKS cluster.) An EKS cluster O(name) with the given network (O(subnet_ids), O(security_group_ids)),
    service role and Kubernetes version; DescribeCluster reports the local API server's O(endpoint) and
    service-account O(issuer) (through the tags C(biomage.devstack/oidc-issuer) and
    C(biomage.devstack/endpoint), which the stack's moto patch C(eks-cluster-reports-its-issuer) reads).
    A changed network, role or version registers the cluster again (as on AWS, a cluster's network does
    not change in place).
  - B(The IAM OIDC provider) of the issuer, with client id C(sts.amazonaws.com) and the thumbprint of the
    API server's certificate authority (read from O(kubeconfig)), as eksctl's C(iam.withOIDC) creates it.
  - B(The API server.) Given O(kubeconfig), the module first checks that the API server answers and reads its
    endpoint, version and service-account issuer (as M(biomage.iac.kube_cluster_info) does, in the same module
    run), for the options left out. It fails, with the fix, when the server does not answer or publishes no
    issuer (the IAM roles for service accounts would have none to trust).
  - Refuses any endpoint that is not on this machine; in AWS the cluster is eksctl's.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.attributes
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Reads the cluster and the provider and plans; registers nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description: The EKS cluster name (the inventory's C(biomage_cluster_name)).
    type: str
    required: true
  issuer:
    description:
      - The API server's service-account issuer (C(https://...)).
      - Default, the one the API server of O(kubeconfig) publishes. Required without O(kubeconfig).
    type: str
  endpoint:
    description:
      - The API server URL.
      - Default, the server of O(kubeconfig). Required without O(kubeconfig).
    type: str
  kubernetes_version:
    description:
      - The cluster's Kubernetes version (C(major.minor)).
      - Default, the version the API server of O(kubeconfig) reports. Required without O(kubeconfig).
    type: str
  role_arn:
    description: The cluster's service role (eksctl's C(ServiceRoleARN)).
    type: str
    required: true
  subnet_ids:
    description: The cluster's subnets (private and public).
    type: list
    elements: str
    default: []
  security_group_ids:
    description: The control plane's security groups.
    type: list
    elements: str
    default: []
  kubeconfig:
    description:
      - The local API server's kubeconfig. The server is checked and read through it (see O(issuer)), and the
        IAM OIDC provider gets the thumbprint of its certificate authority.
      - Without it, the provider is created without a thumbprint.
    type: path
"""

EXAMPLES = r"""
- name: Register the local cluster with the emulator
  biomage.iac.eks_local_cluster:
    name: biomage-development
    role_arn: "{{ network.outputs['eksctl-biomage-development-cluster'].ServiceRoleARN }}"
    subnet_ids: "{{ subnets }}"
    kubeconfig: "{{ biomage_devstack.KUBECONFIG }}"
    endpoint_url: "{{ biomage_aws_endpoint_url }}"
"""

RETURN = r"""
plan:
  description: The EKS cluster and the IAM OIDC provider in the collection's plan shape.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: EKS cluster (emulator)
      name: biomage-development
      action: create
      reason: not registered with the emulator
cluster:
  description: The cluster as the emulator's DescribeCluster reports it after the run (the desired one in check mode).
  returned: always
  type: dict
  contains:
    arn:
      description: The cluster ARN (absent in check mode before the first registration).
      type: str
    issuer:
      description: The OIDC issuer DescribeCluster reports.
      type: str
      sample: https://kubernetes.default.svc.cluster.local
    endpoint:
      description: The API endpoint DescribeCluster reports.
      type: str
api_server:
  description: What the API server of O(kubeconfig) reported (null without O(kubeconfig)).
  returned: always
  type: dict
  contains:
    endpoint:
      description: The API server URL (the kubeconfig's server).
      type: str
      sample: https://127.0.0.1:6443
    version:
      description: The server's C(gitVersion).
      type: str
      sample: v1.36.3
    oidc_issuer:
      description: The service-account issuer of its OIDC discovery document.
      type: str
      sample: https://kubernetes.default.svc.cluster.local
oidc_provider_arn:
  description: The IAM OIDC provider's ARN (null in check mode before it exists).
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/kubernetes.default.svc.cluster.local
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks import local_cluster
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.kube.discovery import api_client, cluster_info


def read_thumbprint(kubeconfig):
    """The thumbprint of the certificate authority the kubeconfig trusts, or None."""
    if not kubeconfig:
        return None
    ca_file = api_client(kubeconfig).configuration.ssl_ca_cert
    if not ca_file:
        return None
    with open(ca_file, encoding="ascii") as handle:
        return local_cluster.ca_thumbprint(handle.read())


def main():
    spec = {
        "name": {"type": "str", "required": True},
        "issuer": {"type": "str"},
        "endpoint": {"type": "str"},
        "kubernetes_version": {"type": "str"},
        "role_arn": {"type": "str", "required": True},
        "subnet_ids": {"type": "list", "elements": "str", "default": []},
        "security_group_ids": {"type": "list", "elements": "str", "default": []},
        "kubeconfig": {"type": "path"},
    }
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    settings = module_settings(module)
    try:
        server = cluster_info(params["kubeconfig"]) if params["kubeconfig"] else None
        params.update(local_cluster.server_options(params, server))
        local_cluster.check_emulator(settings["endpoint_url"])
        desired = local_cluster.desired_cluster(
            params["name"],
            params["kubernetes_version"],
            params["role_arn"],
            params["subnet_ids"],
            params["security_group_ids"],
            params["issuer"],
            params["endpoint"],
        )
        thumbprint = read_thumbprint(params["kubeconfig"])
        eks, iam = module_client(module, "eks"), module_client(module, "iam")
        current = local_cluster.read_cluster(eks, settings, params["name"])
        cluster_step, cluster_reason = local_cluster.plan_cluster(current, desired)
        provider_arn, provider = local_cluster.read_provider(iam, settings, params["issuer"])
        provider_step, provider_reason = local_cluster.plan_provider(provider, thumbprint)
        reported = current or {"issuer": params["issuer"], "endpoint": params["endpoint"]}
        if not module.check_mode:
            if cluster_step:
                local_cluster.apply_cluster(eks, settings, cluster_step, current, desired)
            if provider_step:
                provider_arn = local_cluster.apply_provider(
                    iam, settings, provider_step, provider_arn, params["issuer"], thumbprint, provider
                )
            reported = local_cluster.read_cluster(eks, settings, params["name"])
            if reported["issuer"] != params["issuer"]:
                raise local_cluster.LocalClusterError(
                    f"the emulator reports issuer {reported['issuer']} for cluster {params['name']}, not the local "
                    f"API server's {params['issuer']}: its moto patch eks-cluster-reports-its-issuer is missing.",
                    fix="restart the local stack with this checkout (make dev-down && make dev-up)",
                )
    except BiomageError as exc:
        fail(module, exc, changed=False)
    module.exit_json(
        changed=bool(cluster_step or provider_step),
        plan=local_cluster.plan_entries(
            params["name"], cluster_step, cluster_reason, params["issuer"], provider_step, provider_reason
        ),
        cluster={k: reported.get(k) for k in ("arn", "issuer", "endpoint")},
        api_server=server,
        oidc_provider_arn=provider_arn,
    )


if __name__ == "__main__":
    main()
