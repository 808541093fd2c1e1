#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: support_check
short_description: Compare pinned and running versions with the end-of-support calendar
version_added: 0.2.0
description:
  - Reads the support calendar (C(meta/support-calendar.yml)) and, for each product and version given,
    returns a finding; warns when a version is within O(warn_days) of its end of support, and fails when
    it is past it, unless the product is listed in O(accept_expired).
  - An estimated date (C(estimated) in the calendar) only ever warns. A version the calendar does not know
    warns, as does a calendar not compared with its sources for six months.
  - Used by the C(biomage.iac.preflight) role. The C(biomage.iac.plan) callback shows the findings (C(support)).
extends_documentation_fragment:
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
author:
  - Biomage platform team (@biomage-org)
options:
  calendar:
    description: The calendar file on the control node.
    type: path
    required: true
  versions:
    description:
      - The versions to check, by calendar product (C(eks), C(helm), C(ansible-core), ...).
      - Empty values are skipped.
    type: dict
    required: true
  today:
    description: The day to compare with (YYYY-MM-DD); default today (UTC). For rehearsals and tests.
    type: str
  warn_days:
    description: Warn when the end of support is this many days away or fewer.
    type: int
    default: 90
  accept_expired:
    description: Products whose expired support is accepted for this run (reported, not fatal).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Check the pinned versions against the support calendar
  biomage.iac.support_check:
    calendar: "{{ playbook_dir }}/../meta/support-calendar.yml"
    versions:
      eks: "1.35"
      helm: 4.3.2
      ansible-core: "{{ ansible_version.full }}"
    accept_expired: [ingress-nginx]
"""

RETURN = r"""
support:
  description: One finding per product (and one for a stale calendar).
  returned: always
  type: list
  elements: dict
  sample:
    - product: helm
      version: 3.19.5
      line: "3"
      status: warning
      end: "2027-02-10"
      days_left: 70
      estimated: false
      accepted: false
      source: https://helm.sh/blog/helm-4-released/
      message: "Helm client 3.19.5: support ends 2027-02-10, in 70 days (plan the upgrade; ...)"
"""

import datetime
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils import support
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail


def _today(value):
    if not value:
        return datetime.date(*time.gmtime()[:3])
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise support.SupportCalendarError(f"today={value!r} is not a date", fix="write it as YYYY-MM-DD") from None


def main():
    module = AnsibleModule(
        argument_spec={
            "calendar": {"type": "path", "required": True},
            "versions": {"type": "dict", "required": True},
            "today": {"type": "str"},
            "warn_days": {"type": "int", "default": support.DEFAULT_WARN_DAYS},
            "accept_expired": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        try:
            with open(params["calendar"], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise support.SupportCalendarError(
                f"cannot read the support calendar {params['calendar']}: {exc.strerror}",
                fix="run from a checkout of the collection (meta/support-calendar.yml)",
            ) from None
        calendar = support.parse(text, params["calendar"])
        findings = support.assess(
            calendar,
            {str(k): str(v) if v is not None else "" for k, v in params["versions"].items()},
            _today(params["today"]),
            params["warn_days"],
            params["accept_expired"],
        )
    except BiomageError as exc:
        fail(module, exc, support=[])
    for item in findings:
        if item["status"] != "ok":
            module.warn(item["message"])
    blocked = support.blocking(findings)
    if blocked:
        names = ", ".join(item["product"] for item in blocked)
        module.fail_json(
            msg=f"past the end of support: {'; '.join(item['message'] for item in blocked)}. "
            f"Fix: upgrade {names} (docs/support.md), or set preflight_support_accept_expired: [{names}] "
            "to accept the risk for this environment.",
            support=findings,
        )
    module.exit_json(changed=False, support=findings)


if __name__ == "__main__":
    main()
