# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find an Elastic Load Balancing v2 load balancer (network or application) by its DNS name.

Route53 alias records to a load balancer need the load balancer's own canonical hosted zone id,
which only elbv2 DescribeLoadBalancers returns (amazon.aws.elb_application_lb_info covers ALBs only).
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.aws_connection import ClientError, explain


def normalise_dns_name(name):
    """Compare DNS names without case, surrounding blanks, a trailing dot or a ``dualstack.`` prefix."""
    value = (name or "").strip().rstrip(".").lower()
    if value.startswith("dualstack."):
        value = value[len("dualstack.") :]
    return value


def summarise(load_balancer):
    """The fields the roles use, in snake_case."""
    return {
        "dns_name": load_balancer.get("DNSName", ""),
        "canonical_hosted_zone_id": load_balancer.get("CanonicalHostedZoneId", ""),
        "load_balancer_arn": load_balancer.get("LoadBalancerArn", ""),
        "load_balancer_name": load_balancer.get("LoadBalancerName", ""),
        "type": load_balancer.get("Type", ""),
        "scheme": load_balancer.get("Scheme", ""),
        "ip_address_type": load_balancer.get("IpAddressType", "ipv4"),
        "state": (load_balancer.get("State") or {}).get("Code", ""),
    }


def find_by_dns_name(client, dns_name, settings):
    """``(summary or None, pages read)``: the load balancer whose DNS name is ``dns_name``."""
    wanted = normalise_dns_name(dns_name)
    pages = 0
    try:
        for page in client.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 400}):
            pages += 1
            for load_balancer in page.get("LoadBalancers", []):
                if normalise_dns_name(load_balancer.get("DNSName")) == wanted:
                    return summarise(load_balancer), pages
    except ClientError as exc:
        action = "describe the load balancers (elasticloadbalancing:DescribeLoadBalancers)"
        raise explain(exc, settings, action) from exc
    return None, pages
