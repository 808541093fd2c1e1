#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: github_deploy_key
short_description: Ensure a repository deploy key, rotating it safely (add, switch, then delete)
version_added: 0.1.0
description:
  - Ensures that a GitHub repository has a deploy key with the given public key, title and access
    mode, using the REST API (C(/repos/{owner}/{repo}/keys)).
  - Deploy keys are immutable. A rotation is done in two calls of this module around the switch of
    the key's consumer; first with the new key (it is added, the old one kept), then, once the
    consumer uses it, with O(exclusive=true) (the older keys with the same title are deleted).
    Keys with other titles, such as another environment's, are never touched.
  - Additions always happen before deletions, so the consumer never loses access.
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details: Plans the additions and deletions and makes no mutating call.
  diff_mode:
    support: full
    details: Shows the repository's keys (title, fingerprint, access) before and after.
  idempotent:
    support: full
    details: A key already present with the same material and access mode is left alone.
notes:
  - The token must be allowed to administer the repository's deploy keys.
extends_documentation_fragment:
  - biomage.iac.github
  - biomage.iac.github.repository
  - biomage.iac.attributes
options:
  title:
    description:
      - The key's title, naming its consumer and environment (for example C(flux-biomage-staging)), so
        that several clusters can share a repository without their keys colliding.
    type: str
    required: true
  public_key:
    description:
      - The OpenSSH public key (C(<type> <base64> [comment])). Required with O(state=present).
    type: str
  read_only:
    description: Whether the key may only read (Flux needs write access only for image automation).
    type: bool
    default: true
  state:
    description: C(present) ensures the key; C(absent) deletes every key with O(title).
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - With O(state=present), also delete the other keys that carry O(title) (the previous keys
        of this consumer), after the key is added.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Register Flux's new key next to the old one
  biomage.iac.github_deploy_key:
    owner: biomage-org
    repo: iac
    title: flux-biomage-staging
    public_key: "{{ flux_new_public_key }}"
    read_only: true
    token: "{{ github_token }}"

- name: After Flux's Secret holds the new key, delete its previous keys
  biomage.iac.github_deploy_key:
    owner: biomage-org
    repo: iac
    title: flux-biomage-staging
    public_key: "{{ flux_new_public_key }}"
    exclusive: true
    token: "{{ github_token }}"
"""

RETURN = r"""
plan:
  description: What was (in check mode, would be) changed, in the collection's plan shape; never a value.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: GitHub deploy key
      name: biomage/iac flux-biomage-staging
      action: create
      reason: the wanted key is not registered
key:
  description: The key that is (or, in check mode, would be) registered.
  returned: state=present
  type: dict
  contains:
    id:
      description: GitHub's id of the key (null when it would be added in check mode).
      type: int
    title:
      description: The key's title.
      type: str
    fingerprint:
      description: The key's SHA256 fingerprint.
      type: str
    read_only:
      description: Whether the key is read-only.
      type: bool
added:
  description: The key added by this run, if any.
  returned: always
  type: dict
deleted:
  description: The keys deleted (or to be deleted, in check mode).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils import plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from ansible_collections.biomage.iac.plugins.module_utils.github.client import (
    GITHUB_ARGUMENT_SPEC,
    GITHUB_REPOSITORY_SPEC,
    module_client,
)


def main():
    argument_spec = dict(
        **GITHUB_REPOSITORY_SPEC,
        title=dict(type="str", required=True),
        public_key=dict(type="str"),
        read_only=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        exclusive=dict(type="bool", default=False),
        **GITHUB_ARGUMENT_SPEC,
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["public_key"])],
        supports_check_mode=True,
    )
    params = module.params
    client = None
    try:
        client = module_client(module)
        existing, steps, added = deploy_keys.ensure(
            client,
            params["owner"],
            params["repo"],
            params["title"],
            params["public_key"],
            params["read_only"],
            params["state"],
            params["exclusive"],
            check_mode=module.check_mode,
        )
    except BiomageError as exc:
        for warning in client.recovered if client else []:
            module.warn(warning)
        fail(module, exc, changed=bool(exc.details.get("changed_before")))
    for warning in client.recovered:
        module.warn(warning)

    result = dict(
        changed=deploy_keys.changed(steps),
        added=deploy_keys.describe(added or steps["add"]) if steps["add"] else None,
        deleted=[deploy_keys.describe(k) for k in steps["delete"]],
        plan=plan_entries.deploy_key_entries(params["owner"], params["repo"], params["title"], steps),
    )
    if params["state"] == "present":
        result["key"] = deploy_keys.describe(added or steps["keep"] or steps["add"])
    if module._diff:
        result["diff"] = deploy_keys.diff(existing, steps, added)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
