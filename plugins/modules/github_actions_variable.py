#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: github_actions_variable
short_description: Ensure a GitHub Actions repository variable (not secret, so plans are exact)
version_added: 0.1.0
description:
  - Creates, updates or deletes a repository variable through the REST API
    (C(/repos/{owner}/{repo}/actions/variables)). Workflows read it as C(${{ vars.NAME }}).
  - Variables are not secret and can be read back, so check mode and diff are exact. Keep secrets
    out of variables; use M(biomage.iac.github_actions_secret) for those.
  - GitHub stores variable names in upper case; O(name) is compared and reported upper-cased.
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Reads the variable and reports exactly what would be created, updated or deleted; makes no mutating call.
  diff_mode:
    support: full
    details:
      - The variable's value before and after.
  idempotent:
    support: full
notes:
  - The token must be allowed to manage the repository's Actions variables.
extends_documentation_fragment:
  - biomage.iac.github
  - biomage.iac.github.repository
  - biomage.iac.attributes
options:
  name:
    description: The variable's name (letters, digits, underscores; not starting with a digit or C(GITHUB_)).
    type: str
    required: true
  value:
    description: The value (up to 48 KB). Required with O(state=present).
    type: str
  state:
    description: C(present) ensures the variable has O(value); C(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Tell the ui repository's workflows which role to assume
  biomage.iac.github_actions_variable:
    owner: biomage-org
    repo: ui
    name: AWS_ROLE_ARN
    value: "{{ role_arn }}"
    token: "{{ lookup('ansible.builtin.env', 'GITHUB_TOKEN') }}"

- name: Remove a variable
  biomage.iac.github_actions_variable:
    owner: biomage-org
    repo: ui
    name: OLD_SETTING
    state: absent
    token: "{{ lookup('ansible.builtin.env', 'GITHUB_TOKEN') }}"
"""

RETURN = r"""
plan:
  description: What was (in check mode, would be) changed, in the collection's plan shape; never a value.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: GitHub Actions variable
      name: biomage/ui AWS_REGION
      action: create
      reason: not set
name:
  description: The variable's name as GitHub stores it (upper case).
  returned: always
  type: str
  sample: AWS_ROLE_ARN
action:
  description: C(create), C(update), C(delete) or C(unchanged) (what was, or in check mode would be, done).
  returned: always
  type: str
  sample: create
value:
  description: The variable's value after the run (null when absent).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils import plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.github import actions as github_actions
from ansible_collections.biomage.iac.plugins.module_utils.github.client import (
    GITHUB_ARGUMENT_SPEC,
    GITHUB_REPOSITORY_SPEC,
    module_client,
)


def main():
    argument_spec = dict(
        **GITHUB_REPOSITORY_SPEC,
        name=dict(type="str", required=True),
        value=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        **GITHUB_ARGUMENT_SPEC,
    )
    module = AnsibleModule(
        argument_spec=argument_spec, required_if=[("state", "present", ["value"])], supports_check_mode=True
    )
    params = module.params
    owner, repo, value, state = params["owner"], params["repo"], params["value"], params["state"]
    client = None
    try:
        client = module_client(module)
        name, current, action = github_actions.ensure_variable(
            client, owner, repo, params["name"], value, state, check_mode=module.check_mode
        )
    except BiomageError as exc:
        fail(module, exc)
    for warning in client.recovered:
        module.warn(warning)
    result = dict(changed=action != "unchanged", name=name, action=action, value=value if state == "present" else None)
    result["plan"] = plan_entries.actions_setting_entry("GitHub Actions variable", owner, repo, name, action)
    if module._diff:
        result["diff"] = github_actions.variable_diff(owner, repo, name, current, value, state)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
