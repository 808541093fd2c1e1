#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flux_manifest
short_description: Read Flux's install manifest, check it, and return its objects with the multi-tenancy lockdown
version_added: 0.3.0
description:
  - Reads the install manifest of a Flux release from O(url) and refuses it, before anything of it is applied,
    unless it has the pinned SHA-256 (O(sha256)), its Deployments run images of O(image_repository) only, it
    runs every controller of O(required_controllers), and it creates and fills the namespace O(namespace) and no
    other. Each refusal names what the manifest holds and the fix.
  - Returns the manifest's objects with the multi-tenancy lockdown set on kustomize-controller and
    helm-controller (C(--default-service-account=)O(default_service_account), and C(--no-cross-namespace-refs=true)
    on kustomize-controller, see C(docs/tenants.md)), ready for M(kubernetes.core.k8s) to apply.
  - One step on the control node for what took six tasks and a filter, each templating the whole manifest again (a plan
    waits on them; C(docs/plan.md)). The objects are parsed within the limits of C(safe_yaml) (the
    C(biomage.iac.yaml_documents) filter's).
  - Runs on the control node (an action plugin, C(plugins/action/flux_manifest.py)); nothing reaches the host.
    No module of C(kubernetes.core) checks a manifest's images or controllers.
extends_documentation_fragment:
  - biomage.iac.attributes
  - ansible.builtin.action_common_attributes.flow
  - biomage.iac.attributes.controller_action
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details: It only reads the manifest, in check mode too (a plan is made with the same objects).
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  url:
    description: Where the manifest is (https, http or file), such as a release's C(install.yaml).
    type: str
    required: true
  sha256:
    description: The manifest's pinned SHA-256, in hexadecimal.
    type: str
    required: true
  image_repository:
    description:
      - The registry and namespace every image must come from, such as C(ghcr.io/fluxcd) or a mirror of it.
      - Any controller of it passes; its name and tag are whatever the pinned release ships.
    type: str
    required: true
  required_controllers:
    description: The controllers (Deployment names) the manifest must run.
    type: list
    elements: str
    default: []
  namespace:
    description: The one namespace the manifest must create and put its namespaced objects in.
    type: str
    required: true
  default_service_account:
    description: The service account the lockdown makes kustomize-controller and helm-controller act as by default.
    type: str
    default: release-deployer
  timeout:
    description: Seconds to wait for O(url).
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Read and check the install manifest of Flux v2.9.6
  biomage.iac.flux_manifest:
    url: https://github.com/fluxcd/flux2/releases/download/v2.9.6/install.yaml
    sha256: "{{ flux_install_manifest_sha256 }}"
    image_repository: ghcr.io/fluxcd
    required_controllers: [source-controller, kustomize-controller, helm-controller]
    namespace: flux-system
  register: flux_manifest

- name: Apply it
  kubernetes.core.k8s:
    state: present
    apply: true
    definition: "{{ flux_manifest.objects }}"
"""

RETURN = r"""
objects:
  description: The manifest's objects, with the lockdown set on kustomize-controller and helm-controller.
  returned: success
  type: list
  elements: dict
controllers:
  description: The names of the manifest's Deployments, in its order.
  returned: success
  type: list
  elements: str
  sample: [helm-controller, kustomize-controller, notification-controller, source-controller, source-watcher]
images:
  description: Every image the Deployments run, sorted.
  returned: success
  type: list
  elements: str
  sample: [ghcr.io/fluxcd/helm-controller:v1.4.0, ghcr.io/fluxcd/source-controller:v1.7.0]
"""
