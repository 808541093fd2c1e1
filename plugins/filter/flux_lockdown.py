# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``biomage.iac.flux_lockdown`` filter: Flux's install manifest with the multi-tenancy lockdown set on
its kustomize-controller and helm-controller (docs in flux_lockdown.yml; the logic is
plugins/module_utils/flux/lockdown.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown


def flux_lockdown(objects, service_account=lockdown.DEFAULT_SERVICE_ACCOUNT):
    try:
        return lockdown.lock_down(objects, service_account)
    except lockdown.LockdownError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"flux_lockdown": flux_lockdown}
