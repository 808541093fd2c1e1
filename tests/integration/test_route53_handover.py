"""route53_dns on the local stack: one deployment bound to the domain.

Records held by another deployment's load balancer are left alone without route53_dns_takeover (clear
message, nothing changed) and switched with it; the bounded read-back wait (route53_dns_verify=api) sees
the new records; afterwards the records are this deployment's (no takeover needed, nothing changed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lib import aws
from tests.lib.ansible_run import playbook_in_checkout, run_playbook

pytestmark = pytest.mark.slow
DOMAIN = "handover.biomage.test"
STACK = "biomage-route53-handover-itest"
PLAY = """---
- name: DNS handover
  hosts: platform
  gather_facts: false
  environment: "{{ biomage_task_environment }}"
  module_defaults:
    group/biomage.iac.aws:
      region: "{{ biomage_region }}"
  roles:
    - role: biomage.iac.route53_dns
"""


@pytest.fixture(scope="module")
def playbook() -> Iterator[Path]:
    with playbook_in_checkout("handover", PLAY) as path:
        yield path


def new_load_balancer(devstack: dict[str, str]) -> dict:
    ec2 = aws.client(devstack, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    name = "itest-" + uuid.uuid4().hex[:20]
    elbv2 = aws.client(devstack, "elbv2")
    return elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="network", Scheme="internet-facing")[
        "LoadBalancers"
    ][0]


def zone_id(devstack: dict[str, str]) -> str:
    zones = aws.client(devstack, "route53").list_hosted_zones()["HostedZones"]
    return next(z["Id"] for z in zones if z["Name"] == "biomage.test.")


def aliases(devstack: dict[str, str]) -> dict[str, str]:
    records = aws.client(devstack, "route53").list_resource_record_sets(HostedZoneId=zone_id(devstack))
    return {
        r["Name"].rstrip("."): r["AliasTarget"]["DNSName"].rstrip(".").lower()
        for r in records["ResourceRecordSets"]
        if r["Type"] == "A" and "AliasTarget" in r and r["Name"].rstrip(".").endswith(DOMAIN)
    }


def hand_made_records(devstack: dict[str, str], lb: dict) -> None:
    """Another deployment's records (made outside this deployment's stack)."""
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": name,
                "Type": "A",
                "AliasTarget": {
                    "DNSName": lb["DNSName"],
                    "HostedZoneId": lb["CanonicalHostedZoneId"],
                    "EvaluateTargetHealth": True,
                },
            },
        }
        for name in (DOMAIN, f"*.{DOMAIN}")
    ]
    aws.client(devstack, "route53").change_resource_record_sets(
        HostedZoneId=zone_id(devstack), ChangeBatch={"Changes": changes}
    )


def converge(playbook: Path, env: dict[str, str], lb: dict, **extra: object):
    extra_vars = {
        "route53_dns_domain_name": DOMAIN,
        "route53_dns_stack_name": STACK,
        "route53_dns_load_balancer_hostname": lb["DNSName"],
        **extra,
    }
    return run_playbook(playbook, env=env, extra_vars=extra_vars)


def test_records_of_another_load_balancer_move_only_with_takeover(
    playbook: Path, devstack: dict[str, str], stack_ansible_env: dict[str, str]
) -> None:
    # the zone exists (the local stack gives the emulator the account's zone); first a run that owns nothing yet
    other, ours = new_load_balancer(devstack), new_load_balancer(devstack)
    converge(playbook, stack_ansible_env, other, route53_dns_stack_name=STACK + "-other").assert_ok()
    aws.client(devstack, "cloudformation").delete_stack(StackName=STACK + "-other")
    hand_made_records(devstack, other)
    held = {DOMAIN: other["DNSName"].lower(), f"*.{DOMAIN}": other["DNSName"].lower()}
    assert aliases(devstack) == held

    refused = converge(playbook, stack_ansible_env, ours)
    assert refused.returncode != 0, refused.stdout[-5000:]
    message = " ".join(refused.output.split())
    assert f"the records {DOMAIN} and *.{DOMAIN} are held by load balancer {other['DNSName'].lower()}" in message
    assert f"load balancer {other['LoadBalancerName']} in " in message and "Nothing was changed." in message
    assert "set route53_dns_takeover: true" in message
    assert aliases(devstack) == held
    stacks = aws.client(devstack, "cloudformation").list_stacks()["StackSummaries"]
    assert not [s for s in stacks if s["StackName"] == STACK and s["StackStatus"] != "DELETE_COMPLETE"]

    taken = converge(
        playbook,
        stack_ansible_env,
        ours,
        route53_dns_takeover=True,
        route53_dns_verify="api",
        route53_dns_verify_timeout=30,
    )
    taken.assert_ok()
    assert "move from load balancer " + other["DNSName"].lower() in " ".join(taken.output.split())
    assert "Wait until Route53 returns the new alias" in taken.stdout
    assert set(aliases(devstack).values()) == {ours["DNSName"].lower()}

    # now this deployment's: a second run needs no takeover and changes nothing. (A load balancer change
    # inside the deployment, the controller migration, updates the stack: the emulator answers that
    # UpdateStack of Route53 record sets with an internal error, so it is not rehearsed here.)
    again = converge(playbook, stack_ansible_env, ours)
    again.assert_ok()
    assert again.total("changed") == 0, again.stdout[-4000:]
    assert set(aliases(devstack).values()) == {ours["DNSName"].lower()}
