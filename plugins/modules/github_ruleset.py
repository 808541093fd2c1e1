#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: github_ruleset
short_description: Require status checks on a repository's default branch through a GitHub ruleset
version_added: 0.1.0
description:
  - Converges one repository ruleset (C(/repos/{owner}/{repo}/rulesets)) of target C(branch) on the
    default branch (or O(branches)) that requires the status checks O(required_checks), with the
    GitHub Apps O(bypass_app_ids) as the only actors allowed past it.
  - The collection uses it for the releases guard (role C(biomage.iac.releases_guard)), so a pull request
    changing C(releases/) cannot merge, while the release GitHub App writes releases directly.
  - Target, enforcement, branches, rules and bypass actors are compared in a normal form; a ruleset
    loosened by hand shows the parts that differ and is put back.
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Reads the ruleset and reports what would be created or put back; makes no mutating call.
  diff_mode:
    support: full
    details:
      - The managed parts of the ruleset before and after.
  idempotent:
    support: full
notes:
  - The token (or App) needs the repository's administration permission.
extends_documentation_fragment:
  - biomage.iac.github
  - biomage.iac.github.repository
  - biomage.iac.attributes
options:
  name:
    description: The ruleset's name (unique in the repository).
    type: str
    default: releases guard
  required_checks:
    description: The status checks (job names) a change must pass.
    type: list
    elements: str
    default: [releases-guard]
  bypass_app_ids:
    description: GitHub App ids allowed past the ruleset (the release step's App); empty, nobody.
    type: list
    elements: int
    default: []
  branches:
    description: Branch patterns (C(refs/heads/...), C(~DEFAULT_BRANCH), C(~ALL)) the ruleset applies to.
    type: list
    elements: str
    default: ["~DEFAULT_BRANCH"]
  enforcement:
    description: C(active) enforces the ruleset; C(evaluate) and C(disabled) do not.
    type: str
    choices: [active, evaluate, disabled]
    default: active
  strict:
    description: Whether a branch must be up to date with the base before merging.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Require the releases guard on the default branch; only the release App bypasses it
  biomage.iac.github_ruleset:
    owner: biomage-org
    repo: iac
    bypass_app_ids: [123456]
"""

RETURN = r"""
action:
  description: C(create), C(update) or C(unchanged) (done, or in check mode to be done).
  returned: always
  type: str
  sample: update
id:
  description: The ruleset's id (null when it is still to be created).
  returned: always
  type: int
differences:
  description:
    - The managed parts that differed from the declaration
      (target, enforcement, conditions, rules, bypass_actors).
  returned: always
  type: list
  elements: str
plan:
  description: Plan entries (biomage.iac.plan callback); empty when nothing changes.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.github import rulesets
from ansible_collections.biomage.iac.plugins.module_utils.github.client import (
    GITHUB_ARGUMENT_SPEC,
    GITHUB_REPOSITORY_SPEC,
    module_client,
)


def main():
    argument_spec = dict(
        **GITHUB_REPOSITORY_SPEC,
        name=dict(type="str", default="releases guard"),
        required_checks=dict(type="list", elements="str", default=["releases-guard"]),
        bypass_app_ids=dict(type="list", elements="int", default=[], no_log=False),
        branches=dict(type="list", elements="str", default=[rulesets.DEFAULT_BRANCH]),
        enforcement=dict(type="str", choices=["active", "evaluate", "disabled"], default="active"),
        strict=dict(type="bool", default=False),
        **GITHUB_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not params["required_checks"]:
        module.fail_json(msg="required_checks is empty: a ruleset that requires nothing guards nothing.")
    wanted = rulesets.desired(
        params["name"],
        params["required_checks"],
        params["bypass_app_ids"],
        params["enforcement"],
        params["branches"],
        params["strict"],
    )
    try:
        result = rulesets.ensure(
            module_client(module), params["owner"], params["repo"], wanted, check_mode=module.check_mode
        )
    except BiomageError as exc:
        fail(module, exc)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
