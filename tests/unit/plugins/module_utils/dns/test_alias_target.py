"""The reads of route53_alias_info on moto's in-process Route53, ELBv2 and CloudFormation: the zone by name
(public, exact name), then the load balancers, the domain's A records and the DNS stack's parameters, in the
snake_case shapes the route53_dns role reads."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible_collections.biomage.iac.plugins.module_utils.dns import alias_target
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from moto import mock_aws

REGION = "eu-west-1"
SETTINGS = {"region": REGION}
DOMAIN = "scp.biomage.test"
STACK = "biomage-route53-development"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def make_zone(clients, name, private=False) -> str:
    args = {"Name": name, "CallerReference": f"{name}-{private}"}
    if private:
        args["HostedZoneConfig"] = {"PrivateZone": True}
        args["VPC"] = {"VPCRegion": REGION, "VPCId": clients("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]}
    return clients("route53").create_hosted_zone(**args)["HostedZone"]["Id"].split("/")[-1]


def make_load_balancer(clients) -> dict:
    ec2 = clients("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    created = clients("elbv2").create_load_balancer(Name="traefik", Subnets=[subnet], Type="network")
    return created["LoadBalancers"][0]


def test_the_public_zone_of_the_name_is_found_and_nothing_else_is_read_without_a_hostname(aws) -> None:
    make_zone(aws, "biomage.test", private=True)
    public = make_zone(aws, "biomage.test")
    make_zone(aws, "other.test")
    found = alias_target.read(aws, SETTINGS, "", "biomage.test", DOMAIN, "", STACK)
    assert found["hosted_zone_id"] == public
    assert {zone["name"] for zone in found["hosted_zones"]} >= {"biomage.test."}
    assert found["read"] == ["hosted_zones"] and found["load_balancers"] == []


def test_two_public_zones_of_the_name_give_no_id(aws) -> None:
    make_zone(aws, "biomage.test")
    make_zone(aws, "biomage.test")
    assert alias_target.read(aws, SETTINGS, "", "biomage.test.", DOMAIN, "lb.example", STACK)["hosted_zone_id"] == ""


def test_with_a_hostname_the_load_balancers_records_and_stack_are_read(aws) -> None:
    zone = make_zone(aws, "biomage.test")
    lb = make_load_balancer(aws)
    alias = {"HostedZoneId": lb["CanonicalHostedZoneId"], "DNSName": lb["DNSName"], "EvaluateTargetHealth": False}
    record = {"Name": f"{DOMAIN}.", "Type": "A", "AliasTarget": alias}
    aws("route53").change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]}
    )
    template = {"Parameters": {"LoadBalancerDnsName": {"Type": "String"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}  # fmt: skip
    aws("cloudformation").create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "LoadBalancerDnsName", "ParameterValue": lb["DNSName"]}],
    )

    found = alias_target.read(aws, SETTINGS, zone, "", DOMAIN, lb["DNSName"], STACK)
    assert found["read"] == ["load_balancers", "resource_record_sets", "stack_parameters"]
    balancers = [
        (b["dns_name"], b["canonical_hosted_zone_id"], b["load_balancer_name"]) for b in found["load_balancers"]
    ]
    assert balancers == [(lb["DNSName"], lb["CanonicalHostedZoneId"], "traefik")]
    record = next(r for r in found["resource_record_sets"] if r["type"] == "A")
    assert record["name"] == f"{DOMAIN}." and record["alias_target"]["dns_name"].rstrip(".") == lb["DNSName"]
    assert found["stack_parameters"] == {"LoadBalancerDnsName": lb["DNSName"]}
    assert found["load_balancer"]["load_balancer_name"] == "traefik"
    assert found["holder"] == lb["DNSName"].lower() and found["holder_load_balancer"]["load_balancer_name"] == "traefik"
    assert found["ours"] == [lb["DNSName"].lower(), lb["DNSName"].lower()]


def test_a_missing_stack_has_no_parameters(aws) -> None:
    zone = make_zone(aws, "biomage.test")
    found = alias_target.read(aws, SETTINGS, zone, "", DOMAIN, "lb.example", STACK)
    assert found["stack_parameters"] == {}
    assert not [r for r in found["resource_record_sets"] if r["type"] == "A" and r["name"] == f"{DOMAIN}."]


def test_no_zone_id_and_no_zone_name_is_refused_with_the_fix(aws) -> None:
    with pytest.raises(BiomageError, match="Fix: set route53_dns_hosted_zone_id or route53_dns_hosted_zone_name"):
        alias_target.read(aws, SETTINGS, "", "", DOMAIN, "", STACK)


# -- who holds the domain (what route53_dns decides with), on records and load balancers as read returns them --
TRAEFIK = {
    "load_balancer_name": "k8s-traefik-traefik-0a1b2c3d4e",
    "dns_name": "k8s-traefik-traefik-0a1b2c3d4e-0123456789abcdef.elb.eu-west-1.amazonaws.com",
    "canonical_hosted_zone_id": "Z2IFOLAFXWLO4F",
    "ip_address_type": "dualstack",
}
NGINX = {**TRAEFIK, "load_balancer_name": "a1b2c3nginx", "dns_name": "a1b2c3nginx-99.elb.eu-west-1.amazonaws.com"}


def alias(name: str, dns_name: str, kind: str = "A") -> dict:
    return {
        "name": name,
        "type": kind,
        "alias_target": {"hosted_zone_id": "Z2IFOLAFXWLO4F", "dns_name": dns_name, "evaluate_target_health": False},
    }


def found_with(records: list[dict], stack_lb: str = "") -> dict:
    return {
        "load_balancers": [TRAEFIK, NGINX, {"load_balancer_name": "provisioning"}],
        "resource_record_sets": [
            {"name": "biomage.test.", "type": "SOA", "ttl": 900, "resource_records": [{"value": "ns"}]},
            *records,
        ],
        "stack_parameters": {"LoadBalancerDnsName": stack_lb} if stack_lb else {},
    }


def test_the_holder_and_the_wanted_load_balancer_are_compared_as_route53_writes_them() -> None:
    # Route53 returns the alias target with a dualstack. prefix and a trailing dot; the ingress gives its own case
    records = [alias(f"{DOMAIN}.", "dualstack.A1B2C3NGINX-99.elb.eu-west-1.amazonaws.com."),
               alias(f"\\052.{DOMAIN}.", "dualstack.a1b2c3nginx-99.elb.eu-west-1.amazonaws.com.")]  # fmt: skip
    wanted = "K8S-Traefik-traefik-0a1b2c3d4e-0123456789abcdef.elb.eu-west-1.amazonaws.com."
    got = alias_target.ownership(found_with(records, stack_lb=NGINX["dns_name"]), DOMAIN, wanted)
    assert got == {
        "load_balancer": TRAEFIK,
        "holder": NGINX["dns_name"],
        "holder_load_balancer": NGINX,
        "ours": [TRAEFIK["dns_name"], NGINX["dns_name"]],
    }


def test_another_regions_holder_and_a_missing_load_balancer_are_told_apart() -> None:
    records = [alias(DOMAIN, "dualstack.k8s-other-1.elb.us-east-1.amazonaws.com.")]
    got = alias_target.ownership(found_with(records), f"{DOMAIN}.", "gone-1.elb.eu-west-1.amazonaws.com")
    assert got == {
        "load_balancer": {},
        "holder": "k8s-other-1.elb.us-east-1.amazonaws.com",
        "holder_load_balancer": {},
        "ours": [],
    }


def test_only_the_domains_own_alias_record_holds_it() -> None:
    plain_a = {"name": f"{DOMAIN}.", "type": "A", "ttl": 60, "resource_records": [{"value": "192.0.2.1"}]}
    records = [alias(f"\\052.{DOMAIN}.", NGINX["dns_name"]), alias(f"api.{DOMAIN}.", NGINX["dns_name"]), plain_a]
    got = alias_target.ownership(found_with(records), DOMAIN, TRAEFIK["dns_name"])
    assert got["holder"] == "" and got["holder_load_balancer"] == {} and got["ours"] == [TRAEFIK["dns_name"]]
    assert alias_target.ownership(found_with([]), DOMAIN, "")["load_balancer"] == {}
