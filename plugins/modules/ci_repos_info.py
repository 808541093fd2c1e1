#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ci_repos_info
short_description: Read and validate the CI privileges (.ci.yaml) of every repository of a GitHub organisation
version_added: 0.1.0
description:
  - Lists the organisation's repositories (C(GET /orgs/{org}/repos), paginated) and reads each one's
    C(.ci.yaml) from its default branch. A repository without the file (404) has no CI privileges.
  - Each file is validated (C(ci-policies), a list of C({PolicyName, PolicyDocument}) in CloudFormation
    syntax, so C(!Sub) and C(!Ref) work) and rendered into the CloudFormation template of the repository's
    IAM role, which only GitHub Actions runs of that repository (on O(branches) or O(environments)) can assume
    through GitHub's OIDC provider. The rendered template must pass the repository's template rules.
  - If any file is invalid the task fails, listing every problem of every repository (naming
    C(<owner>/<repo>:.ci.yaml), the field and the fix), so nothing is changed on a bad input.
  - Read-only.
author:
  - Biomage platform team (@biomage-org)
notes:
  - The token must be able to list the organisation's repositories and read their contents.
extends_documentation_fragment:
  - biomage.iac.github
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
options:
  owner:
    description: The GitHub organisation.
    type: str
    required: true
  path:
    description: The file holding a repository's CI privileges.
    type: str
    default: .ci.yaml
  branches:
    description:
      - Branches whose workflow runs may assume the role (exact names, no wildcards). Empty means each
        repository's default branch.
    type: list
    elements: str
    default: []
  environments:
    description: GitHub environments whose jobs may assume the role too (exact names).
    type: list
    elements: str
    default: []
  include_archived:
    description: Also read archived repositories (their CI does not run, so by default they get no role).
    type: bool
    default: false
  variables:
    description:
      - Actions variables to read from every repository without the file (returned in RV(repos[].variables)),
        for example the C(AWS_ROLE_ARN) left behind when a repository's role was deleted.
    type: list
    elements: str
    default: []
seealso:
  - name: CI privileges
    description: docs/ci-privileges.md in the biomage.iac repository.
    link: https://github.com/biomage-org/iac/blob/main/docs/ci-privileges.md
"""

EXAMPLES = r"""
- name: Read every .ci.yaml of biomage-org
  biomage.iac.ci_repos_info:
    owner: biomage-org
    token: "{{ lookup('ansible.builtin.env', 'GITHUB_TOKEN') }}"
  register: ci_repos

- name: The repositories with CI privileges
  ansible.builtin.debug:
    msg: "{{ ci_repos.repos | selectattr('has_ci') | map(attribute='name') | list }}"
"""

RETURN = r"""
repos:
  description: Every repository of the organisation, sorted by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The repository's name.
      type: str
      sample: ui
    full_name:
      description: C(<owner>/<repo>).
      type: str
    default_branch:
      description: The repository's default branch.
      type: str
    archived:
      description: Whether the repository is archived.
      type: bool
    has_ci:
      description: Whether the repository has CI privileges (a C(.ci.yaml) was read).
      type: bool
    policies:
      description: The validated inline policies (intrinsic functions in long form).
      type: list
      elements: dict
      returned: when has_ci
    subjects:
      description: The exact GitHub OIDC C(sub) claims allowed to assume the role.
      type: list
      elements: str
      returned: when has_ci
      sample: ["repo:biomage-org/ui:ref:refs/heads/main"]
    template_body:
      description: The CloudFormation template of the repository's role (JSON).
      type: str
      returned: when has_ci
    template_label:
      description: How the template is named in messages and stack tags.
      type: str
      returned: when has_ci
      sample: github.com/biomage-org/ui/.ci.yaml
    variables:
      description: The values of the Actions variables named in O(variables) (null when unset).
      type: dict
      returned: when O(variables) is given and the repository has no CI privileges file (and is read)
      sample: {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/biomage/ci/biomage-ci-worker-Role-1AB2C3"}
problems:
  description: Every problem found (the task failed before any change).
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_privileges
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GITHUB_ARGUMENT_SPEC, module_client


def main():
    argument_spec = dict(
        owner=dict(type="str", required=True),
        path=dict(type="str", default=ci_privileges.CI_FILE),
        branches=dict(type="list", elements="str", default=[]),
        environments=dict(type="list", elements="str", default=[]),
        include_archived=dict(type="bool", default=False),
        variables=dict(type="list", elements="str", default=[]),
        **GITHUB_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        repos = ci_privileges.collect(
            module_client(module),
            params["owner"],
            branches=params["branches"],
            environments=params["environments"],
            path=params["path"],
            include_archived=params["include_archived"],
            variables=params["variables"],
        )
    except BiomageError as exc:
        fail(module, exc)  # a CiConfigError's problems become the result's `problems`
    for repo in repos:
        repo.pop("template", None)
    module.exit_json(changed=False, repos=repos)


if __name__ == "__main__":
    main()
