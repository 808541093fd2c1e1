#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_apply
short_description: Apply a list of Kubernetes objects in one kubernetes.core.k8s run and report each change
version_added: 0.3.0
description:
  - Runs M(kubernetes.core.k8s) once, with C(state=present) and O(definitions) in order, and returns what it did
    to each object in the shape the rest of the collection reads. The changed objects' labels (C(objects)), one
    C(diff) entry per changed object (so C(--diff) shows each object's changes line by line, as it shows a single
    object's), and one C(plan) entry per changed object for the C(biomage.iac.plan) callback.
  - The result does not carry the definitions or the objects as the API server returned them, except those of
    O(return_kinds). A role's whole manifest (Flux's install manifest is 340 KB, Traefik's CRDs 250 KB) would
    otherwise be copied into the task's result twice, as M(kubernetes.core.k8s) returns its arguments and
    every object. Ansible then converts, registers and hands that result to every callback, work a plan waits on
    (C(docs/plan.md)).
  - In check mode the call is the API server's dry run, made with C(continue_on_error). The API server cannot
    dry-run an object whose namespace, or whose CustomResourceDefinition, the same call only plans (a first run).
    Such an object is planned as a creation, with a diff from nothing to its definition. Any other error fails the
    task, naming the object and the API server's message. A real run stops at the first error, as
    M(kubernetes.core.k8s) does.
  - Written because M(kubernetes.core.k8s) has no option to leave the objects out of its result, and
    C(biomage.iac.object_diffs) after it would still receive them. The Kubernetes work itself (client, apply,
    dry run, diff) is M(kubernetes.core.k8s)'s own, run on the host as that module.
extends_documentation_fragment:
  - biomage.iac.attributes
  - ansible.builtin.action_common_attributes.flow
author:
  - Biomage platform team (@biomage-org)
attributes:
  action:
    support: full
    details: An action plugin (C(plugins/action/k8s_apply.py)) that runs M(kubernetes.core.k8s) on the host.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The API server's dry run of every object, as M(kubernetes.core.k8s) makes it.
  diff_mode:
    support: full
    details: One C(diff) entry per changed object, headed by its kind, namespace and name.
  idempotent:
    support: full
notes:
  - The kubeconfig is read where the module runs. Unlike M(kubernetes.core.k8s), a relative O(kubeconfig) is not
    looked up in the role's files and a vault-encrypted one is not decrypted. Other connection settings come from
    the C(K8S_AUTH_*) environment variables, as for M(kubernetes.core.k8s).
options:
  definitions:
    description:
      - The objects to apply, in order (a namespace before the objects in it, a CRD before its custom resources),
        after those of O(sources).
      - Without objects (both lists empty) nothing changes and no module runs.
    type: list
    elements: dict
    default: []
  sources:
    description:
      - Files and templates whose YAML documents are applied, in order, before O(definitions), each entry naming
        one O(sources[].file) or one O(sources[].template). The action reads,
        renders and parses them itself, so that a large manifest (Traefik's CRDs are 250 KB) does not pass
        through the task's templating, which copies and marks every value of a structure it returns.
      - Each is parsed within the limits of the collection's YAML loader (size, depth, aliases); empty documents
        are left out, and a document that is not a mapping is refused, naming the file and its number.
      - An unreadable file, a template error or invalid YAML fails the task before anything is applied.
    type: list
    elements: dict
    default: []
    suboptions:
      file:
        description:
          - A file of the role's (or the playbook's) C(files/) folder, found as M(ansible.builtin.copy) finds its
            O(ansible.builtin.copy#module:src). Not decrypted when vault-encrypted.
        type: str
      template:
        description:
          - A template of the C(templates/) folder, rendered with the task's variables as the
            C(ansible.builtin.template) lookup renders it.
        type: str
      kinds:
        description:
          - Keep only the objects of these kinds (an upstream file's ClusterRoles without its bindings). An empty
            list keeps none. Without it every object is kept.
        type: list
        elements: str
  kubeconfig:
    description: The kubeconfig file; without it, C(K8S_AUTH_KUBECONFIG) or C(~/.kube/config).
    type: path
  field_manager:
    description:
      - Apply server-side as this field manager. Without it, M(kubernetes.core.k8s)'s default applies
        (create, or patch an existing object).
    type: str
  force_conflicts:
    description: With O(field_manager), take over the fields another manager owns.
    type: bool
    default: false
  return_kinds:
    description:
      - Kinds whose objects are returned in C(resources) as the API server returned them (in check mode, its
        dry run's answer), such as C(Service) to read a load balancer's hostname.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Apply an upstream release's CRDs and ClusterRoles, then the role's own objects (the namespace first)
  biomage.iac.k8s_apply:
    kubeconfig: "{{ kubeconfig }}"
    sources:
      - file: upstream/crds.yaml
      - file: upstream/rbac.yaml
        kinds: [ClusterRole]
      - template: objects.yaml.j2
    return_kinds: [Service]
  register: applied

- name: Apply Flux's objects server-side as the platform's field manager
  biomage.iac.k8s_apply:
    definitions: "{{ objects }}"
    field_manager: biomage-iac
    force_conflicts: true
"""

RETURN = r"""
objects:
  description:
    - The changed objects, as C(Kind namespace/name) (C(Kind name) for a cluster-scoped object), in the order
      applied; in check mode also the objects planned as creations.
  returned: success
  type: list
  elements: str
  sample: [Namespace traefik, Deployment traefik/traefik]
diff:
  description: One entry per changed object with a diff (C(before), C(after) and their headers).
  returned: success
  type: list
  elements: dict
plan:
  description: One entry per changed or planned object (kind, name, action, reason), for C(biomage.iac.plan).
  returned: success
  type: list
  elements: dict
  sample: [{kind: Deployment, name: traefik/traefik, action: update, reason: kubernetes.core.k8s patch}]
resources:
  description: The objects of O(return_kinds), as the API server returned them, in the order applied.
  returned: success
  type: list
  elements: dict
"""
