# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the route53_dns role reads before it converges the alias records of a domain, in one process:
the hosted zone (by name), the region's elbv2 load balancers, the domain's current A records and the
parameters of the deployment's own DNS stack.

The shapes are those of amazon.aws's info modules (keys in snake_case: ``hosted_zones``,
``load_balancers``, ``resource_record_sets``, a stack's ``stack_parameters``), so that the role's checks
read them as they read those modules' results.
"""

from __future__ import annotations

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.biomage.iac.plugins.module_utils.aws import ClientError, aws_errors, is_error_code
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

ZONES_PER_PAGE = "100"
RECORDS_READ = "10"


class DnsError(BiomageError):
    """The DNS settings cannot be read as given; the message says why and the fix."""


def absolute(name):
    """``example.org`` and ``example.org.`` -> ``example.org.``."""
    return name.rstrip(".") + "."


def zones_named(route53, settings, name):
    """The hosted zones ListHostedZonesByName returns from ``name`` on (one page of 100), snake_cased."""
    needs = "Route53 hosted zones (ListHostedZonesByName)"
    with aws_errors(settings, f"list the hosted zones named {name}", needs=needs):
        found = route53.list_hosted_zones_by_name(DNSName=absolute(name), MaxItems=ZONES_PER_PAGE)
    return [camel_dict_to_snake_dict(zone) for zone in found.get("HostedZones", [])]


def public_zone_id(zones, name):
    """The id (without ``/hostedzone/``) of the one public zone named ``name``; "" when none or several."""
    matches = [z for z in zones if z.get("name") == absolute(name) and not (z.get("config") or {}).get("private_zone")]
    if len(matches) != 1:
        return ""
    return matches[0]["id"].split("/hostedzone/", 1)[-1]


def load_balancers(elbv2, settings, region):
    """Every elbv2 load balancer of the region (network and application ones), snake_cased."""
    found = []
    with aws_errors(
        settings, f"list the load balancers of {region}", needs="load balancers (elasticloadbalancing:Describe*)"
    ):
        for page in elbv2.get_paginator("describe_load_balancers").paginate():
            found += [camel_dict_to_snake_dict(lb) for lb in page.get("LoadBalancers", [])]
    return found


def a_records(route53, settings, zone_id, domain):
    """The A record sets from ``domain`` on (the first ten, as the role's ownership check reads them)."""
    needs = "Route53 records (ListResourceRecordSets)"
    with aws_errors(settings, f"read the records {domain} of hosted zone {zone_id}", needs=needs):
        found = route53.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=absolute(domain), StartRecordType="A", MaxItems=RECORDS_READ
        )
    return [camel_dict_to_snake_dict(record) for record in found.get("ResourceRecordSets", [])]


def stack_parameters(cloudformation, settings, stack_name):
    """``{key: value}`` of the stack's parameters; {} when the stack does not exist."""
    with aws_errors(
        settings, f"describe stack {stack_name}", needs="CloudFormation stacks (cloudformation:DescribeStacks)"
    ):
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name).get("Stacks", [])
        except ClientError as exc:
            if is_error_code(exc, "ValidationError") and "does not exist" in str(exc):
                return {}
            raise
    if not stacks:
        return {}
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}


def lb_name(dns_name):
    """A load balancer's DNS name as Route53 and elbv2 compare it: no case, no trailing dot, no ``dualstack.``."""
    name = str(dns_name or "").lower().rstrip(".")
    return name.removeprefix("dualstack.")


def ownership(found, domain, hostname):
    """Which load balancer is wanted and which holds the domain's alias record now, from what :func:`read`
    read: ``load_balancer`` (the region's load balancer named ``hostname``, or ``{}``), ``holder`` (the DNS
    name the domain's alias record points at, compared as :func:`lb_name` does; ``""`` when there is none),
    ``holder_load_balancer`` (the region's load balancer of that name, or ``{}``) and ``ours`` (the names that
    are this deployment's: the wanted load balancer's and the one its DNS stack points at)."""
    by_name = {lb_name(lb["dns_name"]): lb for lb in found["load_balancers"] if lb.get("dns_name")}
    names = {domain.rstrip("."), absolute(domain)}
    record = next(
        (r for r in found["resource_record_sets"] if r.get("name") in names and r.get("alias_target")),
        {},
    )
    holder = lb_name(record["alias_target"].get("dns_name")) if record else ""
    wanted = by_name.get(lb_name(hostname), {}) if hostname else {}
    ours = [
        lb_name(name) for name in (wanted.get("dns_name"), found["stack_parameters"].get("LoadBalancerDnsName")) if name
    ]
    return {
        "load_balancer": wanted,
        "holder": holder,
        "holder_load_balancer": by_name.get(holder, {}) if holder else {},
        "ours": ours,
    }


def read(clients, settings, zone_id, zone_name, domain, hostname, stack_name):
    """Everything the role's checks need, as one dict.

    ``clients``: a callable service name -> boto3 client. The zone is looked up by name when no id is
    given; the load balancers, records and stack are read only once both a load balancer hostname and
    a zone are known (before that the role plans, it does not converge)."""
    out = {
        "hosted_zones": [],
        "hosted_zone_id": zone_id,
        "load_balancers": [],
        "resource_record_sets": [],
        "stack_parameters": {},
        "read": [],
    }
    if not (zone_id or zone_name):
        raise DnsError(
            f"no hosted zone for {domain}: neither its id nor its name was given.",
            fix="set route53_dns_hosted_zone_id or route53_dns_hosted_zone_name.",
        )
    if not zone_id:
        out["hosted_zones"] = zones_named(clients("route53"), settings, zone_name)
        out["hosted_zone_id"] = public_zone_id(out["hosted_zones"], zone_name)
        out["read"].append("hosted_zones")
    if not (hostname and out["hosted_zone_id"]):
        return {**out, **ownership(out, domain, hostname)}
    out["load_balancers"] = load_balancers(clients("elbv2"), settings, settings.get("region"))
    out["resource_record_sets"] = a_records(clients("route53"), settings, out["hosted_zone_id"], domain)
    out["read"] += ["load_balancers", "resource_record_sets"]
    if stack_name:
        out["stack_parameters"] = stack_parameters(clients("cloudformation"), settings, stack_name)
        out["read"].append("stack_parameters")
    return {**out, **ownership(out, domain, hostname)}
