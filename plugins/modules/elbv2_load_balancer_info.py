#!/usr/bin/python
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: elbv2_load_balancer_info
short_description: Find a network or application load balancer by DNS name (for Route53 alias records)
version_added: 0.1.0
description:
  - Pages through elbv2 DescribeLoadBalancers and returns the load balancer whose DNS name is
    O(dns_name) (case, a trailing dot and a C(dualstack.) prefix do not count), with its
    C(canonical_hosted_zone_id), which a Route53 alias record to it needs.
  - Covers network load balancers (such as the one the AWS cloud provider creates for a Kubernetes
    Service of type LoadBalancer), which M(amazon.aws.elb_application_lb_info) does not.
  - Read-only. Fails with the fix named when no load balancer has that name, unless O(missing_ok).
extends_documentation_fragment:
  - biomage.iac.aws_connection
author:
  - Biomage platform team (@biomage-org)
options:
  dns_name:
    description: The load balancer's DNS name, for example a Service's C(status.loadBalancer.ingress[0].hostname).
    type: str
    required: true
  missing_ok:
    description: Return RV(found=false) instead of failing when no load balancer has that DNS name.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
"""

EXAMPLES = r"""
- name: Find the ingress load balancer's canonical hosted zone
  biomage.iac.elbv2_load_balancer_info:
    dns_name: "{{ ingress_nginx_load_balancer_hostname }}"
    region: eu-west-1
  register: ingress_lb

- name: Use it
  ansible.builtin.debug:
    msg: "{{ ingress_lb.load_balancer.canonical_hosted_zone_id }}"
"""

RETURN = r"""
found:
  description: Whether a load balancer has that DNS name.
  returned: success
  type: bool
  sample: true
load_balancer:
  description: The load balancer (empty when not found).
  returned: success
  type: dict
  contains:
    dns_name:
      description: Its DNS name.
      type: str
      sample: a1b2c3d4e5f6-0123456789abcdef.elb.eu-west-1.amazonaws.com
    canonical_hosted_zone_id:
      description: The Route53 hosted zone of its DNS name (the C(HostedZoneId) of an alias target).
      type: str
      sample: Z2IFOLAFXWLO4F
    load_balancer_arn:
      description: Its ARN.
      type: str
    load_balancer_name:
      description: Its name.
      type: str
    type:
      description: C(network), C(application) or C(gateway).
      type: str
      sample: network
    scheme:
      description: C(internet-facing) or C(internal).
      type: str
    ip_address_type:
      description: C(ipv4) or C(dualstack) (dualstack load balancers can take AAAA alias records too).
      type: str
      sample: ipv4
    state:
      description: C(active), C(provisioning), ...
      type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.biomage.iac.plugins.module_utils.aws_connection import (
    AWS_CONNECTION_ARGUMENT_SPEC,
    HAS_BOTO3,
    AwsConnectionError,
    BotoCoreError,
    connection_settings,
    explain,
    make_client,
)
from ansible_collections.biomage.iac.plugins.module_utils.elbv2_lookup import find_by_dns_name


def main():
    spec = {
        "dns_name": {"type": "str", "required": True},
        "missing_ok": {"type": "bool", "default": False},
    }
    spec.update(AWS_CONNECTION_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_BOTO3:
        module.fail_json(msg="elbv2_load_balancer_info needs boto3 and botocore. Fix: run `make setup`.")
    dns_name = module.params["dns_name"]
    if not dns_name.strip():
        module.fail_json(msg="dns_name is empty. Fix: pass the load balancer's hostname (ingress_nginx sets it).")
    settings = connection_settings(module.params)
    try:
        client = make_client("elbv2", settings)
        load_balancer, _pages = find_by_dns_name(client, dns_name, settings)
    except AwsConnectionError as exc:
        module.fail_json(msg=str(exc))
    except BotoCoreError as exc:
        module.fail_json(msg=str(explain(exc, settings, "describe the load balancers")))
    if load_balancer is None and not module.params["missing_ok"]:
        where = settings.get("endpoint_url") or settings.get("region")
        module.fail_json(
            msg=f"no network or application load balancer has the DNS name {dns_name} in {where}. Fix: check the "
            "region (the load balancer is in the cluster's), and that the hostname is an elbv2 load balancer's "
            "(a classic ELB has no elbv2 entry: use the NLB annotations of the ingress Service)."
        )
    module.exit_json(changed=False, found=load_balancer is not None, load_balancer=load_balancer or {})


if __name__ == "__main__":
    main()
