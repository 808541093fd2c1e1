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
  - biomage.iac.aws_connection
author:
  - Biomage platform team (@biomage-org)
options:
  cluster_name:
    description: The EKS cluster name.
    type: str
    required: true
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
"""

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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils.aws_connection import (
    AWS_CONNECTION_ARGUMENT_SPEC,
    HAS_BOTO3,
    AwsConnectionError,
    BotoCoreError,
    connection_settings,
    explain,
    make_client,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks_oidc import (
    OidcError,
    cluster_issuer,
    provider_from_issuer,
)


def main():
    spec = {"cluster_name": {"type": "str", "required": True}}
    spec.update(AWS_CONNECTION_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_BOTO3:
        module.fail_json(msg="eks_oidc_provider_info needs boto3 and botocore. Fix: run `make setup`.")
    name = module.params["cluster_name"]
    settings = connection_settings(module.params)
    try:
        client = make_client("eks", settings)
        found, issuer = cluster_issuer(client, name, settings)
    except AwsConnectionError as exc:
        module.fail_json(msg=str(exc))
    except BotoCoreError as exc:
        module.fail_json(msg=str(explain(exc, settings, f"describe EKS cluster {name}")))
    if not found:
        module.fail_json(
            msg=f"EKS cluster {name} does not exist, so it has no OIDC issuer. Fix: create it first "
            "(playbooks/base.yml) or set irsa_oidc_provider in the inventory."
        )
    if not issuer:
        module.fail_json(msg=f"EKS cluster {name} has no OIDC issuer. Fix: enable it (eksctl iam.withOIDC: true).")
    try:
        provider = provider_from_issuer(issuer)
    except OidcError as exc:
        module.fail_json(msg=f"cluster {name}: {exc}")
    module.exit_json(changed=False, issuer=issuer, provider=provider)


if __name__ == "__main__":
    main()
