# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every biomage.iac module declares (check mode, diff mode, idempotency).

A module extends C(biomage.iac.attributes) for the descriptions and states only its own support
level (and details) under C(attributes); read-only modules extend C(biomage.iac.attributes.info_module)
as well, which states the support of all three. Those that run on the control node as action plugins
(plugins/action/) extend C(ansible.builtin.action_common_attributes.flow) for the descriptions and
C(biomage.iac.attributes.controller_action) for their support.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and returns what a real run would change, without changing anything.
  diff_mode:
    description: Returns, in diff mode, what changed (or would change in C(check_mode)) as C(before) and C(after).
  idempotent:
    description:
      - A second run with the same arguments and the same remote state reports no change.
      - A run in C(check_mode) after a real run reports no change either.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs unchanged in C(check_mode).
  diff_mode:
    support: N/A
    details: The module changes nothing, so there is nothing to compare.
  idempotent:
    support: full
"""

    CONTROLLER_ACTION = r"""
options: {}
attributes:
  action:
    support: full
    details: Runs on the control node; no module is sent to the host.
  async:
    support: none
  bypass_host_loop:
    support: none
"""
