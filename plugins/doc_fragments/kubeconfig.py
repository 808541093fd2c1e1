# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster a biomage.iac module talks to (KUBECONFIG_ARGUMENT_SPEC in module_utils/kube/client.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - The kubeconfig of the cluster. Falls back to E(K8S_AUTH_KUBECONFIG), then to the kubernetes client's
        default (E(KUBECONFIG), then C(~/.kube/config)).
    type: path
  context:
    description: The kubeconfig context; its current context when not set.
    type: str
requirements:
  - the kubernetes Python client
"""
