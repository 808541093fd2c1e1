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
  - Runs on the control node (an action plugin, C(plugins/action/support_check.py)). It reads a file of the
    control node and computes, so it needs no module run on the host, which cost a Python start-up and the
    payload's compilation (about 0.7 s) in every plan.
extends_documentation_fragment:
  - biomage.iac.attributes
  - biomage.iac.attributes.info_module
  - ansible.builtin.action_common_attributes.flow
  - biomage.iac.attributes.controller_action
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
