#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: github_actions_secret
short_description: Ensure or remove a GitHub Actions repository secret (stored as a sealed box)
version_added: 0.1.0
description:
  - Writes a repository secret encrypted as a libsodium sealed box for the repository's public key,
    or deletes it (C(/repos/{owner}/{repo}/actions/secrets)).
  - B(GitHub never returns a secret's value), so this module cannot compare values. With
    O(state=present) a missing secret is created; an existing one is left as it is (reported
    C(unchanged), meaning "present, value not compared") unless O(force=true), which writes it again
    and always reports a change. Pass O(force=true) when you know the value changed (for example after a
    rotation).
  - O(state=absent) deletes the secret if it exists (exact, since presence can be read).
  - Prefer M(biomage.iac.github_actions_variable) for anything that is not secret (role ARNs, regions).
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Reports C(create) for a missing secret, C(delete) for a secret to remove, C(update) with O(force=true),
        and C(unchanged) for an existing secret otherwise (its value is not compared, as it cannot be read).
  diff_mode:
    support: partial
    details:
      - Shows whether the secret exists before and after, never a value.
  idempotent:
    support: partial
    details:
      - Idempotent unless O(force=true), which rewrites the secret on every run.
notes:
  - The token must be allowed to manage the repository's Actions secrets.
extends_documentation_fragment:
  - biomage.iac.github
  - biomage.iac.github.repository
  - biomage.iac.attributes
options:
  name:
    description: The secret's name (letters, digits, underscores; not starting with a digit or C(GITHUB_)).
    type: str
    required: true
  value:
    description: The secret's value. Required with O(state=present). Never logged or returned.
    type: str
  state:
    description: C(present) ensures the secret exists; C(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  force:
    description: With O(state=present), write the value even if the secret exists (it cannot be compared).
    type: bool
    default: false
requirements:
  - PyNaCl (with O(state=present))
"""

EXAMPLES = r"""
- name: Remove the old long-lived CI keys once the role variable is in place
  biomage.iac.github_actions_secret:
    owner: biomage-org
    repo: ui
    name: "{{ item }}"
    state: absent
    token: "{{ lookup('ansible.builtin.env', 'GITHUB_TOKEN') }}"
  loop: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]

- name: Store a secret, rewriting it because it was rotated
  biomage.iac.github_actions_secret:
    owner: biomage-org
    repo: api
    name: SLACK_WEBHOOK
    value: "{{ new_webhook }}"
    force: true
    token: "{{ lookup('ansible.builtin.env', 'GITHUB_TOKEN') }}"
"""

RETURN = r"""
plan:
  description: What was (in check mode, would be) changed, in the collection's plan shape; never a value.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: GitHub Actions secret
      name: biomage/ui DEPLOY_TOKEN
      action: update
      reason: value written (never read back)
name:
  description: The secret's name as GitHub stores it (upper case).
  returned: always
  type: str
  sample: AWS_SECRET_ACCESS_KEY
action:
  description:
    - C(create), C(update), C(delete) or C(unchanged) (what was, or in check mode would be, done).
      C(unchanged) for an existing secret means its value was not compared.
  returned: always
  type: str
  sample: delete
existed:
  description: Whether the secret existed before the run.
  returned: always
  type: bool
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
        value=dict(type="str", no_log=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
        **GITHUB_ARGUMENT_SPEC,
    )
    module = AnsibleModule(
        argument_spec=argument_spec, required_if=[("state", "present", ["value"])], supports_check_mode=True
    )
    params = module.params
    owner, repo, state = params["owner"], params["repo"], params["state"]
    client = None
    try:
        client = module_client(module)
        name, current, action = github_actions.ensure_secret(
            client,
            owner,
            repo,
            params["name"],
            params["value"],
            state,
            force=params["force"],
            check_mode=module.check_mode,
        )
    except BiomageError as exc:
        fail(module, exc)
    for warning in client.recovered:
        module.warn(warning)
    result = dict(changed=action != "unchanged", name=name, action=action, existed=current is not None)
    result["plan"] = plan_entries.actions_setting_entry("GitHub Actions secret", owner, repo, name, action)
    if module._diff:
        result["diff"] = github_actions.secret_diff(owner, repo, name, current, action, state)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
