#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flux_reconcile
short_description: Wait until Flux has fetched its source and applied it, failing with the controllers' message
version_added: 0.1.0
description:
  - Proves that Flux syncs, as C(flux reconcile kustomization <name> --with-source) would. Reads a Flux source
    (a C(GitRepository) by default) and the C(Kustomization) that applies it. When the source is not Ready, or with
    O(force=true), requests its reconciliation (the annotation C(reconcile.fluxcd.io/requestedAt) that the flux CLI
    sets) and waits until it has handled the request and is Ready with an artifact; then, unless the Kustomization
    has applied that artifact's revision already (and O(force) is false), requests the Kustomization's and waits
    until it has applied it.
  - Fails as soon as a controller answers such a request with a failure (C(Ready=False)), with the controller's own
    message and a fix (the deploy key refused, the branch or C(releases/<env>) missing, an unbuildable
    kustomization, an object the API server refuses, and so on). Fails at once on a missing or suspended object,
    and after O(timeout) seconds naming what was still missing (no status at all means that no controller runs).
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details: Reads both objects and reports whether a reconciliation would be requested; requests nothing and does
      not wait.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Requests (and reports a change) only when an object is not Ready for the latest revision, or with
        O(force=true).
extends_documentation_fragment:
  - biomage.iac.attributes
  - biomage.iac.kubeconfig
options:
  namespace:
    description: The namespace of both objects.
    type: str
    default: flux-system
  source_kind:
    description: The kind of the source the Kustomization applies.
    type: str
    choices: [GitRepository, Bucket, OCIRepository]
    default: GitRepository
  source_name:
    description: The source's name.
    type: str
    required: true
  kustomization_name:
    description: The Kustomization's name.
    type: str
    required: true
  force:
    description:
      - Request a reconciliation even when both objects are Ready, for example right after the deploy key or the
        objects changed, so that the new state is proven now rather than at the next interval.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for both objects together.
    type: int
    default: 300
  poll_interval:
    description: Seconds between two reads.
    type: float
    default: 1.0
  deploy_key_title:
    description: The deploy key's title, named in the fix when the Git host refuses the key.
    type: str
seealso:
  - module: biomage.iac.flux_deploy_key
"""

EXAMPLES = r"""
- name: Wait until Flux has synced releases/staging
  biomage.iac.flux_reconcile:
    kubeconfig: "{{ eks_cluster_kubeconfig }}"
    source_name: flux-system
    kustomization_name: releases
    deploy_key_title: flux-biomage-staging
    timeout: 300
"""

RETURN = r"""
source:
  description: The source's state at the end (C(kind), C(namespace), C(name), C(ready), C(reason), C(message),
    and C(revision), its artifact's).
  returned: always
  type: dict
  sample:
    kind: GitRepository
    name: flux-system
    ready: true
    reason: Succeeded
    revision: main@sha1:4e5f00c1d8a6f1e3b0f8d1e5c7a9b2d4e6f80a1c
kustomization:
  description: The Kustomization's state at the end (as for RV(source); C(revision) is the last applied one).
  returned: always
  type: dict
requested:
  description: The objects whose reconciliation was requested (or would be, in check mode).
  returned: always
  type: list
  elements: str
ready:
  description: Whether both are Ready for the latest revision (always true after a successful wait).
  returned: always
  type: bool
waited:
  description: Seconds waited.
  returned: always
  type: float
plan:
  description:
    - One plan entry (module_utils/plan.py) per object whose reconciliation was requested, with action
      C(unchanged). A request annotates the object but changes nothing it declares, so the plan's counts leave it
      out.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: GitRepository
      name: flux-system/flux-system
      action: unchanged
      reason: reconciliation requested
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.module_utils.errors import fail
from ansible_collections.biomage.iac.plugins.module_utils.flux import sync as fs
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KUBECONFIG_ARGUMENT_SPEC


def main():
    module = AnsibleModule(
        argument_spec={
            **KUBECONFIG_ARGUMENT_SPEC,
            "namespace": {"type": "str", "default": "flux-system"},
            "source_kind": {"type": "str", "choices": list(fs.SOURCE_KINDS), "default": "GitRepository"},
            "source_name": {"type": "str", "required": True},
            "kustomization_name": {"type": "str", "required": True},
            "force": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 300},
            "poll_interval": {"type": "float", "default": 1.0},
            "deploy_key_title": {"type": "str", "no_log": False},  # a title, not a key
        },
        supports_check_mode=True,
    )
    if not fs.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=fs.KUBERNETES_IMPORT_ERROR)
    p = module.params
    try:
        outcome = fs.sync(
            fs.FluxObjects(p["kubeconfig"], p["context"]), p["namespace"], p["source_kind"], p["source_name"],
            p["kustomization_name"], force=p["force"], timeout=p["timeout"], wait=not module.check_mode,
            deploy_key_title=p["deploy_key_title"], poll=p["poll_interval"],
        )  # fmt: skip
    except fs.FluxSyncError as exc:
        fail(module, exc)
    requested = outcome.requested  # "<kind> <namespace>/<name>"
    module.exit_json(
        changed=bool(requested),
        source=outcome.source.describe(),
        kustomization=outcome.kustomization.describe(),
        requested=outcome.requested,
        ready=outcome.ready,
        waited=round(outcome.waited, 1),
        plan=[plan_shape.entry(*ref.split(" ", 1), "unchanged", "reconciliation requested") for ref in requested],
    )


if __name__ == "__main__":
    main()
