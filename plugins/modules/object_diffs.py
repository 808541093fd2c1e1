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
  - Reports C(changed) when an object changed (Ansible shows a diff only then). The C(biomage.iac.plan) callback
    counts the applied objects once, from the C(kubernetes.core.k8s) task itself, so C(plan) lists only the
    objects this plugin planned (see O(definitions)).
  - With O(definitions), a check run's dry run of a first run is completed. The call is made with
    C(continue_on_error) in check mode, and the API server cannot dry-run an object whose namespace, or whose
    CustomResourceDefinition, the same call only plans. Such an object's error is replaced by a planned
    creation (a C(plan) entry, and a diff from nothing to its definition). Any other error fails the task,
    naming the object and the API server's message.
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
  definitions:
    description:
      - The definitions given to the M(kubernetes.core.k8s) call, in the same order as its O(results).
      - Given, an object's error is planned as a creation when an earlier object of the call creates its
        namespace or its CustomResourceDefinition, and fails the task otherwise.
    type: list
    elements: dict
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

- name: Apply a namespace and its objects in one call (a first check run dry-runs the namespace only)
  kubernetes.core.k8s:
    state: present
    definition: "{{ objects }}"
    continue_on_error: "{{ ansible_check_mode }}"
  register: applied_with_namespace

- name: Show the changes, and plan the objects of the namespace still to be created
  biomage.iac.object_diffs:
    results: "{{ applied_with_namespace.result.results | default([]) }}"
    definitions: "{{ objects }}"
  when: ansible_check_mode or ansible_diff_mode
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
  description:
    - The objects planned from O(definitions) (action C(create)); empty otherwise, as the applied objects' entries
      come from the task that applied them.
  returned: always
  type: list
  elements: dict
  sample: [{kind: Service, name: traefik/traefik, action: create, reason: "in namespace traefik, still to be created"}]
"""
