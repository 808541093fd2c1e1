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
  - biomage.iac.aws_connection
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the provider and reports exactly the calls a real run would make, making none of them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - The provider's URL, client ids and thumbprints before and after.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
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

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils import github_oidc
from ansible_collections.biomage.iac.plugins.module_utils.aws_connection import (
    AWS_CONNECTION_ARGUMENT_SPEC,
    HAS_BOTO3,
    AwsConnectionError,
    BotoCoreError,
    ClientError,
    connection_settings,
    explain,
    make_client,
)

THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")


def main():
    spec = dict(
        url=dict(type="str", default=github_oidc.GITHUB_OIDC_URL),
        client_ids=dict(type="list", elements="str", default=list(github_oidc.DEFAULT_CLIENT_IDS)),
        thumbprints=dict(type="list", elements="str", default=[]),
        tags=dict(type="dict", default={}),
    )
    spec.update(AWS_CONNECTION_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    if not HAS_BOTO3:
        module.fail_json(msg="github_oidc_provider needs boto3 and botocore. Fix: run `make setup`.")
    if not params["url"].startswith("https://"):
        module.fail_json(msg=f"url {params['url']!r} must start with https://. Fix: give the issuer URL.")
    bad = [t for t in params["thumbprints"] if not THUMBPRINT.match(t)]
    if bad or not params["client_ids"]:
        module.fail_json(msg="thumbprints must be 40 hex characters and client_ids non-empty. Fix: check them.")
    settings = connection_settings(params)
    try:
        client = make_client("iam", settings)
        arn, current = github_oidc.find(client, params["url"])
        steps = github_oidc.plan(current, params["client_ids"], params["thumbprints"])
        if steps and not module.check_mode:
            arn = github_oidc.apply(client, arn, steps, params["url"], params["tags"])
    except AwsConnectionError as exc:
        module.fail_json(msg=str(exc))
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(msg=str(explain(exc, settings, "manage the GitHub Actions OIDC provider")))
    result = dict(changed=bool(steps), arn=arn, steps=[op for op, _arg in steps])
    if module._diff:
        after = dict(current or {"url": params["url"].split("://", 1)[1].rstrip("/")})
        after["client_ids"] = sorted(set(params["client_ids"]))
        if params["thumbprints"] or current is None:
            after["thumbprints"] = sorted({t.lower() for t in params["thumbprints"]})
        result["diff"] = dict(before=current or {}, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
