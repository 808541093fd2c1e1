#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flux_deploy_key
short_description: Converge Flux's SSH key Secret and its GitHub deploy key, rotating safely
version_added: 0.1.0
description:
  - Reads Flux's SSH authentication Secret (keys C(identity), C(identity.pub), C(known_hosts)) with the
    kubernetes Python client and the repository's deploy keys with the GitHub REST API, then converges both in
    one idempotent call.
  - When the Secret does not exist, or with O(regenerate=always), an ed25519 key pair is generated in memory, its
    public key is added as a deploy key titled O(title), B(then) the Secret is written, B(then) the older keys
    with that title are deleted. Flux never loses access, whichever step fails.
  - When the Secret exists and its key is a deploy key, nothing changes (stale keys with the same title, left by
    an interrupted rotation, are deleted). When its key was deleted on GitHub, it is added again.
  - A re-run after any failure converges, also with O(regenerate=never); see the role's C(docs/flux.md).
  - Keys with other titles (other environments, other tools) are never touched.
  - The private key is never returned, never shown in a diff (fingerprints only) and never written to disk.
author:
  - Biomage platform team (@biomage-org)
requirements:
  - the cryptography Python library
attributes:
  check_mode:
    support: full
    details: Reads the Secret and the deploy keys and plans; makes no call that changes GitHub or Kubernetes.
  diff_mode:
    support: full
    details: Shows the Secret's key and host key fingerprints and the repository's deploy keys, before and after.
  idempotent:
    support: partial
    details:
      - Full with O(regenerate=never), the default. O(regenerate=always) rotates the key at every run, on purpose.
notes:
  - The token must be allowed to administer the repository's deploy keys.
extends_documentation_fragment:
  - biomage.iac.kubeconfig
  - biomage.iac.github
  - biomage.iac.github.repository
  - biomage.iac.attributes
options:
  namespace:
    description: The namespace of the Secret.
    type: str
    default: flux-system
  secret_name:
    description: The Secret that the C(GitRepository)'s C(secretRef) names.
    type: str
    default: flux-system
  title:
    description:
      - The deploy key's title, naming the cluster (for example C(flux-biomage-staging)), so that the clusters of
        several environments can share the repository. Older keys with this title are deleted after a rotation.
    type: str
    required: true
  read_only:
    description:
      - Whether the deploy key may only read. A registered key with the other access mode is not changed in place
        (that would cut Flux's access); the module fails and asks for O(regenerate=always).
    type: bool
    default: true
  regenerate:
    description:
      - C(never) keeps a usable key of the Secret (a Secret without one fails, asking for C(always)); a key pair is
        generated only when the Secret does not exist.
      - C(always) replaces the key at every run (rotation on demand).
      - Modelled on the O(community.crypto.openssh_keypair#module:regenerate) option.
    type: str
    choices: [never, always]
    default: never
  known_hosts:
    description:
      - The Git host's SSH host keys, one C(known_hosts) entry (C(<host> <key type> <base64 key>)) each, written to
        the Secret's C(known_hosts).
    type: list
    elements: str
    required: true
  key_comment:
    description: The comment of a generated public key; defaults to O(title).
    type: str
  timeout:
    description: Seconds to wait for each Kubernetes API request.
    type: int
    default: 30
seealso:
  - module: biomage.iac.github_deploy_key
  - module: community.crypto.openssh_keypair
"""

EXAMPLES = r"""
- name: Flux's Git credentials for staging
  biomage.iac.flux_deploy_key:
    kubeconfig: "{{ eks_cluster_kubeconfig }}"
    owner: biomage-org
    repo: iac
    title: flux-biomage-staging
    known_hosts: "{{ flux_known_hosts }}"
    token: "{{ github_token }}"

- name: Rotate the key now
  biomage.iac.flux_deploy_key:
    kubeconfig: "{{ eks_cluster_kubeconfig }}"
    owner: biomage-org
    repo: iac
    title: flux-biomage-staging
    known_hosts: "{{ flux_known_hosts }}"
    regenerate: always
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
      action: rotate
      reason: regenerate=always
fingerprint:
  description: SHA256 fingerprint of the key the Secret holds afterwards (null for a key check mode would generate).
  returned: always
  type: str
  sample: SHA256:Hc0hZ6X4bq0DX4t+VRoBNwk9hLMj/kYH5mNXQ2TH8Xk
public_key:
  description: That key's OpenSSH public key (null for a key check mode would generate). Never the private key.
  returned: always
  type: str
deploy_key:
  description: The deploy key of the Secret's key (title, fingerprint, read_only, id).
  returned: always
  type: dict
added:
  description: The deploy key added by this run (or that would be), if any.
  returned: always
  type: dict
deleted:
  description: The deploy keys deleted by this run (or that would be).
  returned: always
  type: list
  elements: dict
secret:
  description: The Secret's C(namespace), C(name) and C(action) (C(created), C(replaced) or C(unchanged)).
  returned: always
  type: dict
namespace_exists:
  description:
    - Whether the namespace of the Secret existed when the module read it (before any change).
    - The flux role plans the objects of a namespace still to be created in words, since the API server cannot
      dry-run them; this saves it a read of its own.
  returned: always
  type: bool
reasons:
  description: Why something changes, in words.
  returned: always
  type: list
  elements: str
"""

import base64

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.biomage.iac.plugins.module_utils import plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.flux import credentials as fc
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from ansible_collections.biomage.iac.plugins.module_utils.github.client import (
    GITHUB_ARGUMENT_SPEC,
    GITHUB_REPOSITORY_SPEC,
    GitHubClient,
)
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import (
    HAS_KUBERNETES,
    KUBECONFIG_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
)
from ansible_collections.biomage.iac.plugins.module_utils.kube.secrets import KubernetesSecretStore


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBECONFIG_ARGUMENT_SPEC,
            namespace=dict(type="str", default="flux-system"),
            secret_name=dict(type="str", default="flux-system"),
            **GITHUB_REPOSITORY_SPEC,
            title=dict(type="str", required=True),
            read_only=dict(type="bool", default=True),
            regenerate=dict(type="str", choices=list(fc.REGENERATE_CHOICES), default="never"),
            known_hosts=dict(type="list", elements="str", required=True),
            key_comment=dict(type="str"),
            timeout=dict(type="int", default=30),
            **GITHUB_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    if not fc.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=fc.CRYPTOGRAPHY_IMPORT_ERROR)
    p = module.params
    known_hosts = "\n".join(p["known_hosts"])

    def protect(value):
        # whatever happens next, Ansible scrubs the private key (and its base64 form) from the output
        module.no_log_values.update([value, base64.b64encode(value.encode("utf-8")).decode("ascii")])

    github = GitHubClient(p["api_url"], p["token"], p["validate_certs"], timeout=p["api_timeout"])
    try:
        store = KubernetesSecretStore(p["namespace"], p["secret_name"], p["kubeconfig"], p["context"], p["timeout"])
        secret = store.read()
        namespace_exists = secret is not None or store.namespace_exists()
        for name, value in (secret.data if secret else {}).items():
            if value and name not in ("identity.pub", "known_hosts"):
                protect(value)  # identity, and whatever else a hand-made Secret holds (password, ...)
        keys = github.list_deploy_keys(p["owner"], p["repo"])
        steps = fc.plan(secret, keys, p["title"], p["read_only"], known_hosts, p["regenerate"])
        outcome = fc.apply(
            steps, secret, github, store, p["owner"], p["repo"], p["title"], p["read_only"], known_hosts,
            comment=p["key_comment"] or p["title"], check_mode=module.check_mode, protect=protect,
        )  # fmt: skip
    except BiomageError as exc:
        fail(module, exc)

    for warning in steps.warnings + github.recovered:
        module.warn(warning)
    keypair = outcome.keypair
    known_hosts = fc.normalize_known_hosts(known_hosts)
    result = dict(
        changed=steps.changed,
        fingerprint=keypair.fingerprint if keypair else None,
        public_key=keypair.public if keypair else None,
        deploy_key=_describe(outcome.added or steps.keep, p["title"], p["read_only"]),
        added=_describe(outcome.added, p["title"], p["read_only"]) if outcome.added else None,
        deleted=[deploy_keys.describe(k) for k in outcome.deleted],
        secret=dict(namespace=p["namespace"], name=p["secret_name"], action=outcome.secret_action),
        namespace_exists=namespace_exists,
        reasons=steps.reasons,
        plan=plan_entries.flux_key_entries(p["owner"], p["repo"], p["title"], p["namespace"], p["secret_name"], steps),
    )
    if module._diff:
        after_keys = [k for k in keys if k not in outcome.deleted] + ([outcome.added] if outcome.added else [])
        where = f"secret {p['namespace']}/{p['secret_name']}"
        before_hosts = secret.data.get("known_hosts", "") if secret else ""
        after_hosts = known_hosts if steps.write_secret else before_hosts
        result["diff"] = dict(
            before=_state(steps.current, secret is not None, before_hosts, keys, where),
            after=_state(keypair, True, after_hosts, after_keys, where),
        )
    module.exit_json(**result)


def _describe(key, title, read_only):
    """A deploy key as shown (a key check mode would generate has no material yet)."""
    if key is None:
        return None
    if not key.get("key"):
        return {"id": None, "title": title, "fingerprint": fc.NEW_KEY, "read_only": read_only}
    return deploy_keys.describe({"read_only": read_only, **key})


def _state(keypair, exists, known_hosts, keys, where):
    state = fc.describe_state(keypair, exists, known_hosts, [k for k in keys if k.get("key")], where)
    state["deploy_keys"] += [_describe(k, k["title"], k.get("read_only")) for k in keys if not k.get("key")]
    return state


if __name__ == "__main__":
    main()
