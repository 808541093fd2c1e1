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


def test_a_missing_stack_has_no_parameters(aws) -> None:
    zone = make_zone(aws, "biomage.test")
    found = alias_target.read(aws, SETTINGS, zone, "", DOMAIN, "lb.example", STACK)
    assert found["stack_parameters"] == {}
    assert not [r for r in found["resource_record_sets"] if r["type"] == "A" and r["name"] == f"{DOMAIN}."]


def test_no_zone_id_and_no_zone_name_is_refused_with_the_fix(aws) -> None:
    with pytest.raises(BiomageError, match="Fix: set route53_dns_hosted_zone_id or route53_dns_hosted_zone_name"):
        alias_target.read(aws, SETTINGS, "", "", DOMAIN, "", STACK)
