#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flux_release
short_description: The release step of a service's CI (fill .flux.ci, check it, write releases/ as the GitHub App)
version_added: 0.1.0
description:
  - Reads a service's C(.flux.ci) template, fills in every CI field (the C(<app>-<ref>) names, the
    environment, ref, commit, image registry and tag, the IRSA role ARN read from the C(RoleArn)
    output of stack C(biomage-irsa-<app>-role-<environment>), the domain and subdomain, the sandbox),
    checks the result offline against Flux's CRD schemas and the conventions
    (C(plugins/module_utils/flux/releases.py), as C(tools/check_releases.py) does), and writes
    C(releases/<environment>/<app>.yaml) (a sandbox's C(releases/staging/<app>-<sandbox>.yaml)) into
    the IaC repository through GitHub's contents API.
  - Writes carry the file's blob sha; a write that raced another release is refused by GitHub and
    retried on the new head (bounded, with jittered backoff), so no release is lost or overwritten
    unseen. Content that is already there makes no commit.
  - The identity is the release GitHub App (an installation token); a personal token is not accepted.
  - C(tools/release.py) runs the same step without Ansible (the service kit's workflow uses it).
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Fills and checks the release, reads the repository's file and returns the diff; pushes nothing.
  diff_mode:
    support: full
    details:
      - The release file in the repository before and after.
  idempotent:
    support: full
notes:
  - The App needs C(contents:write) on the IaC repository and is the only actor the releases ruleset
    lets past the releases guard (M(biomage.iac.github_ruleset)).
  - Environment-wide checks (an object or host in two files of one environment) are made by the
    IaC repository's own CI on each push (C(tools/check_releases.py)).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.github.app
  - biomage.iac.attributes
options:
  app:
    description: The service (a DNS label), e.g. C(ui).
    type: str
    required: true
  environment:
    description: The environment released to (the folder under C(releases/)).
    type: str
    required: true
    choices: [development, staging, production]
  ref:
    description: The branch released (C(GITHUB_REF_NAME)); names the release C(<app>-<ref>).
    type: str
    required: true
  commit:
    description: The commit released (C(GITHUB_SHA)).
    type: str
    required: true
  ci_repo:
    description: The service repository, C(owner/name) (C(GITHUB_REPOSITORY)).
    type: str
    required: true
  sandbox:
    description: A staging sandbox; the release is then C(releases/staging/<app>-<sandbox>.yaml).
    type: str
  state:
    description: C(present) writes the release; C(absent) removes a sandbox's release (O(sandbox) required).
    type: str
    choices: [present, absent]
    default: present
  template:
    description: The service's C(.flux.ci) template. Required with O(state=present).
    type: path
  checkout:
    description: A checkout of the IaC repository (its C(charts/) and C(tools/crds/generated)) to check against.
    type: path
    required: true
  image_tag:
    description: The image tag; default C(<ref>-<commit[:7]>).
    type: str
  image_registry:
    description: The ECR registry; default C(<account>.dkr.ecr.<region>.amazonaws.com) of the caller.
    type: str
  role_arn:
    description: The IRSA role ARN; default the C(RoleArn) output of stack C(biomage-irsa-<app>-role-<environment>).
    type: str
  domain:
    description: The environment's domain (C(ingress.domainName)).
    type: str
  owner:
    description: The owner of the IaC repository.
    type: str
    default: biomage-org
  repo:
    description: The IaC repository (the one holding C(releases/)).
    type: str
    default: iac
  attempts:
    description: How many times a write that raced another release is tried on the new head.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Release ui's master to staging
  biomage.iac.flux_release:
    app: ui
    environment: staging
    ref: master
    commit: "{{ lookup('ansible.builtin.env', 'GITHUB_SHA') }}"
    ci_repo: biomage-org/ui
    template: "{{ service_checkout }}/.flux.ci"
    checkout: "{{ playbook_dir }}/.."
    domain: scp-staging.biomage.net
    app_id: "{{ lookup('ansible.builtin.env', 'GITHUB_APP_ID') }}"
    app_installation_id: "{{ lookup('ansible.builtin.env', 'GITHUB_APP_INSTALLATION_ID') }}"
    app_private_key_path: "{{ lookup('ansible.builtin.env', 'GITHUB_APP_PRIVATE_KEY_FILE') }}"

- name: Remove a sandbox's release
  biomage.iac.flux_release:
    app: ui
    environment: staging
    ref: my-feature
    commit: "{{ lookup('ansible.builtin.env', 'GITHUB_SHA') }}"
    ci_repo: biomage-org/ui
    sandbox: my-feature
    state: absent
    checkout: "{{ playbook_dir }}/.."
"""

RETURN = r"""
action:
  description: C(create), C(update), C(delete) or C(unchanged) (done, or in check mode to be done).
  returned: always
  type: str
  sample: update
path:
  description: The release file in the IaC repository.
  returned: always
  type: str
  sample: releases/staging/ui.yaml
name:
  description: The release's Namespace and HelmRelease name.
  returned: always
  type: str
  sample: ui-master
image_tag:
  description: The image tag released (null when removing).
  returned: always
  type: str
role_arn:
  description: The IRSA role ARN filled in.
  returned: always
  type: str
commit:
  description: The commit the step made (null when none was made).
  returned: always
  type: str
conflicts:
  description: How many writes raced another release and were retried on the new head.
  returned: always
  type: int
filled:
  description: The template's fields the step filled in.
  returned: always
  type: list
  elements: str
release:
  description: The release file's content (null when removing).
  returned: always
  type: str
plan:
  description: Plan entries (biomage.iac.plan callback); empty when nothing changes.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.flux import release_step
from ansible_collections.biomage.iac.plugins.module_utils.github.client import (
    DEFAULT_API_URL,
    GITHUB_APP_ARGUMENT_SPEC,
    GitHubClient,
    app_auth_from_params,
)


def read_template(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise release_step.ReleaseStepError(
            f"cannot read the template {path}: {exc}.", fix="give template: the service's .flux.ci"
        ) from exc


def main():
    spec = dict(
        app=dict(type="str", required=True),
        environment=dict(type="str", required=True, choices=list(release_step.ENVIRONMENTS)),
        ref=dict(type="str", required=True),
        commit=dict(type="str", required=True),
        ci_repo=dict(type="str", required=True),
        sandbox=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        template=dict(type="path"),
        checkout=dict(type="path", required=True),
        image_tag=dict(type="str"),
        image_registry=dict(type="str"),
        role_arn=dict(type="str"),
        domain=dict(type="str"),
        owner=dict(type="str", default="biomage-org"),
        repo=dict(type="str", default="iac"),
        attempts=dict(type="int", default=release_step.DEFAULT_ATTEMPTS),
        api_url=dict(type="str", default=DEFAULT_API_URL),
        github_validate_certs=dict(type="bool", default=True),
        api_timeout=dict(type="float", default=20.0),
        **GITHUB_APP_ARGUMENT_SPEC,
    )
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(
        argument_spec=spec,
        required_if=[("state", "present", ["template"]), ("state", "absent", ["sandbox"])],
        supports_check_mode=True,
    )
    params = module.params
    release = release_step.Release(
        app=params["app"],
        environment=params["environment"],
        ref=params["ref"],
        commit=params["commit"],
        ci_repo=params["ci_repo"],
        image_tag=params["image_tag"],
        image_registry=params["image_registry"],
        role_arn=params["role_arn"],
        domain=params["domain"],
        sandbox=params["sandbox"],
    )
    try:
        release.check()
        app = app_auth_from_params(params)
        if app is None:
            raise release_step.ReleaseStepError(
                "no GitHub App credentials: the release step writes as the release GitHub App only.",
                fix="give app_id, app_installation_id and app_private_key_path (GITHUB_APP_ID, "
                "GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY_FILE)",
            )
        template = ""
        if params["state"] == "present":
            template = read_template(params["template"])
            if release.role_arn is None:
                release.role_arn = release_step.role_arn_from_stack(
                    module_client(module, "cloudformation"), module_settings(module), release.app, release.environment
                )
            if release.image_registry is None:
                release.image_registry = release_step.registry_of_account(
                    module_client(module, "sts"), module_settings(module)
                )
        client = GitHubClient(
            params["api_url"], validate_certs=params["github_validate_certs"], timeout=params["api_timeout"], app=app
        )
        result = release_step.run(
            client.for_repo(params["owner"], params["repo"]),
            params["owner"],
            params["repo"],
            release,
            template,
            params["checkout"],
            state=params["state"],
            check_mode=module.check_mode,
            attempts=params["attempts"],
        )
    except BiomageError as exc:
        fail(module, exc)
    diff = result.pop("diff")
    result.pop("unified_diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
