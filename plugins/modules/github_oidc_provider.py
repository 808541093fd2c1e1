#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: github_oidc_provider
short_description: Ensure the account's IAM OIDC provider for GitHub Actions
version_added: 0.1.0
description:
  - Ensures the IAM OIDC identity provider C(token.actions.githubusercontent.com) exists with the
    given client ids (audiences, default C(sts.amazonaws.com)), so that GitHub Actions runs can
    assume IAM roles with short-lived tokens instead of long-lived access keys.
  - The provider is one per account, shared by every CI role. It is managed with IAM calls
    (ListOpenIDConnectProviders, GetOpenIDConnectProvider, CreateOpenIDConnectProvider,
    Add/RemoveClientID, UpdateOpenIDConnectProviderThumbprint), not in a CloudFormation stack;
    an existing provider (for example created by hand) is adopted.
  - The provider is never deleted by this module (other roles of the account may trust it).
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
      - Reads the provider and reports exactly the calls a real run would make, making none of them.
  diff_mode:
    support: full
    details:
      - The provider's URL, client ids and thumbprints before and after.
  idempotent:
    support: full
options:
  url:
    description: The issuer URL.
    type: str
    default: https://token.actions.githubusercontent.com
  client_ids:
    description: The audiences the provider accepts (exactly these).
    type: list
    elements: str
    default: [sts.amazonaws.com]
  thumbprints:
    description:
      - Certificate thumbprints (40 hex characters). Empty leaves them to IAM, which verifies GitHub's
        certificate against its trusted certificate authorities; on an existing provider, empty leaves
        the thumbprints as they are.
    type: list
    elements: str
    default: []
  tags:
    description: Tags given when the provider is created (not compared afterwards).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: GitHub Actions may assume roles in this account
  biomage.iac.github_oidc_provider:
    region: eu-west-1
  register: github_oidc

- name: Its ARN
  ansible.builtin.debug:
    msg: "{{ github_oidc.arn }}"
"""

RETURN = r"""
plan:
  description: What was (in check mode, would be) changed, in the collection's plan shape; never a value.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: IAM OIDC provider
      name: https://token.actions.githubusercontent.com
      action: create
      reason: no provider for GitHub Actions
arn:
  description: The provider's ARN (null when it would be created in check mode).
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com
steps:
  description: The IAM changes made (or, in check mode, planned).
  returned: always
  type: list
  elements: str
  sample: ["create"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils import plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.github import oidc_provider as github_oidc


def main():
    spec = dict(
        url=dict(type="str", default=github_oidc.GITHUB_OIDC_URL),
        client_ids=dict(type="list", elements="str", default=list(github_oidc.DEFAULT_CLIENT_IDS)),
        thumbprints=dict(type="list", elements="str", default=[]),
        tags=dict(type="dict", default={}),
    )
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    url, client_ids, thumbprints = params["url"], params["client_ids"], params["thumbprints"]
    try:
        github_oidc.check_options(url, client_ids, thumbprints)
        client, settings = module_client(module, "iam"), module_settings(module)
        arn, current = github_oidc.find(client, settings, url)
        steps = github_oidc.plan(current, client_ids, thumbprints)
        if steps and not module.check_mode:
            arn = github_oidc.apply(client, settings, arn, steps, url, params["tags"])
    except BiomageError as exc:
        fail(module, exc)
    result = dict(changed=bool(steps), arn=arn, steps=[op for op, _arg in steps])
    result["plan"] = plan_entries.oidc_provider_entries(url, steps)
    if module._diff:
        result["diff"] = dict(before=current or {}, after=github_oidc.desired(current, url, client_ids, thumbprints))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
