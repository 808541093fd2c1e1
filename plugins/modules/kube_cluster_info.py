#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kube_cluster_info
short_description: Check that a Kubernetes API server answers and read its endpoint, version and OIDC issuer
version_added: 0.1.0
description:
  - Loads a kubeconfig, calls the API server's C(/version) and, when published, reads the service account
    issuer from C(/.well-known/openid-configuration).
  - Used by the C(biomage.iac.eks_cluster) role in the development environment, where the local Kubernetes API
    server stands in for EKS.
extends_documentation_fragment:
  - biomage.iac.kubeconfig
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
author:
  - Biomage platform team (@biomage-org)
options:
  timeout:
    description: Seconds to wait for each request.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Check the local API server
  biomage.iac.kube_cluster_info:
    kubeconfig: "{{ biomage_devstack.KUBECONFIG }}"
  register: local_cluster
"""

RETURN = r"""
endpoint:
  description: The API server URL.
  returned: always
  type: str
  sample: https://127.0.0.1:36443
version:
  description: The API server's git version.
  returned: always
  type: str
  sample: v1.36.3
oidc_issuer:
  description: The service account issuer, or null when the server does not publish its discovery document.
  returned: always
  type: str
  sample: https://kubernetes.default.svc.cluster.local
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import (
    HAS_KUBERNETES,
    KUBECONFIG_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
)
from ansible_collections.biomage.iac.plugins.module_utils.kube.discovery import cluster_info


def main():
    module = AnsibleModule(
        argument_spec={**KUBECONFIG_ARGUMENT_SPEC, "timeout": {"type": "int", "default": 10}},
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    try:
        info = cluster_info(module.params["kubeconfig"], module.params["context"], module.params["timeout"])
    except BiomageError as exc:
        fail(module, exc, error_kind=getattr(exc, "kind", "failed"))
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
