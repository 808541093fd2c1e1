"""route53_alias_info in-process on moto: the module's result is what the route53_dns role reads."""

from __future__ import annotations

import boto3
import pytest
from ansible_collections.biomage.iac.plugins.modules import route53_alias_info
from moto import mock_aws

from tests.lib.module_run import run_module

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_the_zone_is_looked_up_by_name_and_nothing_more_without_a_hostname(aws) -> None:
    zone = boto3.client("route53", region_name=REGION).create_hosted_zone(Name="biomage.test", CallerReference="a")
    outcome = run_module(
        route53_alias_info.main,
        {"domain_name": "scp.biomage.test", "hosted_zone_name": "biomage.test", "region": REGION},
    )
    assert not outcome.failed, outcome.result
    assert outcome.result["changed"] is False
    assert outcome.result["hosted_zone_id"] == zone["HostedZone"]["Id"].split("/")[-1]
    assert outcome.result["read"] == ["hosted_zones"]


def test_neither_zone_id_nor_name_fails_with_the_fix(aws) -> None:
    outcome = run_module(route53_alias_info.main, {"domain_name": "scp.biomage.test", "region": REGION})
    assert outcome.failed
    assert "Fix: set route53_dns_hosted_zone_id or route53_dns_hosted_zone_name" in outcome.result["msg"]
