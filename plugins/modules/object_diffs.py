#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: object_diffs
short_description: Show the changes of objects applied in one kubernetes.core.k8s call as --diff shows one object's
version_added: 0.2.0
description:
  - M(kubernetes.core.k8s) given a list of definitions applies them in one module run (one start-up instead of
    one per object) and returns one result per object in C(result.results), each with its C(diff) in diff mode.
    Ansible's C(--diff) output shows a task's own C(diff) only, so those changes would not be shown.
    This plugin takes those results and returns their changes as its C(diff), one entry per changed object,
    headed by the object's kind, namespace and name, so C(--diff) shows them line by line as it shows a
    single object's.
  - Reports C(changed) when an object changed (Ansible shows a diff only then) and an empty C(plan), so the
    C(biomage.iac.plan) callback counts the objects once, from the C(kubernetes.core.k8s) task itself.
  - Runs on the control node (an action plugin, C(plugins/action/object_diffs.py)); nothing reaches the host.
  - No module of C(kubernetes.core) or C(ansible.utils) does this. C(ansible.utils.fact_diff) compares two
    values and reports text, not C(diff) entries, and only for one pair.
extends_documentation_fragment:
  - biomage.iac.attributes
  - ansible.builtin.action_common_attributes.flow
  - biomage.iac.attributes.controller_action
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details: It only reads the results it is given.
  diff_mode:
    support: full
    details: Its purpose; without C(--diff) the objects' results carry no C(diff) and it returns none.
  idempotent:
    support: full
options:
  results:
    description:
      - The per-object results of M(kubernetes.core.k8s) (C(registered.result.results)), lists of several calls
        added together, or one call's registered result for a single object.
      - Results that did not change, or carry no C(diff), are skipped.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Apply the namespaced objects in one call
  kubernetes.core.k8s:
    state: present
    definition: "{{ lookup('ansible.builtin.file', 'objects.yaml') | biomage.iac.yaml_documents('objects.yaml') }}"
  register: applied

- name: Show the objects' changes (--diff)
  biomage.iac.object_diffs:
    results: "{{ applied.result.results | default([]) }}"
  when: ansible_diff_mode
"""

RETURN = r"""
objects:
  description: The changed objects, as C(Kind namespace/name) (C(Kind name) for a cluster-scoped object).
  returned: always
  type: list
  elements: str
  sample: [ClusterIssuer letsencrypt-prod, Deployment traefik/traefik]
diff:
  description: One entry per changed object with a diff (C(before), C(after) and their headers).
  returned: always
  type: list
  elements: dict
plan:
  description: Always empty; the objects' plan entries come from the task that applied them.
  returned: always
  type: list
  elements: dict
  sample: []
"""
