#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_oidc_provider_info
short_description: The OIDC provider of an EKS cluster, as IRSA trust policies name it
version_added: 0.1.0
description:
  - Reads the cluster's OIDC issuer with eks:DescribeCluster and returns it without C(https://), the
    form IRSA templates take as their C(OIDCProvider) parameter.
  - Read-only; fails with the fix named when the cluster does not exist or has no OIDC issuer.
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
  cluster_name:
    description: The EKS cluster name.
    type: str
    required: true"""

EXAMPLES = r"""
- name: Find the OIDC provider of the staging cluster
  biomage.iac.eks_oidc_provider_info:
    cluster_name: biomage-staging
    region: eu-west-1
  register: oidc

- name: Use it
  ansible.builtin.debug:
    msg: "{{ oidc.provider }}"
"""

RETURN = r"""
issuer:
  description: The issuer URL as EKS reports it.
  returned: success
  type: str
  sample: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
provider:
  description: The issuer without C(https://) (the IRSA C(OIDCProvider) parameter).
  returned: success
  type: str
  sample: oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    aws_errors,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks.oidc import (
    OidcError,
    cluster_issuer,
    provider_from_issuer,
)
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail


def oidc_provider(module, name):
    """``(issuer, provider)`` of cluster ``name``; raises a BiomageError saying why there is none."""
    settings = module_settings(module)
    with aws_errors(settings, f"describe EKS cluster {name}", needs="EKS clusters (eks:DescribeCluster)"):
        client = module_client(module, "eks")
        found, issuer = cluster_issuer(client, name, settings)
    if not found:
        raise OidcError(
            f"EKS cluster {name} does not exist, so it has no OIDC issuer.",
            fix="create it first (playbooks/base.yml) or set irsa_oidc_provider in the inventory.",
        )
    if not issuer:
        raise OidcError(f"EKS cluster {name} has no OIDC issuer.", fix="enable it (eksctl iam.withOIDC: true).")
    return issuer, provider_from_issuer(issuer, source=f"cluster {name}")


def main():
    spec = {"cluster_name": {"type": "str", "required": True}}
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=spec, supports_check_mode=True)
    try:
        issuer, provider = oidc_provider(module, module.params["cluster_name"])
    except BiomageError as exc:
        fail(module, exc)
    module.exit_json(changed=False, issuer=issuer, provider=provider)


if __name__ == "__main__":
    main()
