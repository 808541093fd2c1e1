"""infra/cf-route53.yaml: the repository's template rules, cfn-lint, and the alias record shape."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.lib.ansible_run import REPO_ROOT

TEMPLATE = REPO_ROOT / "infra" / "cf-route53.yaml"


def test_lint_cf_checks_infra_templates_by_default() -> None:
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import lint_cf  # noqa: PLC0415 (tools/ is not a package)

    assert TEMPLATE in lint_cf.default_templates()


def test_passes_the_repository_rules_and_cfn_lint() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "lint_cf.py"), str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 finding(s)" in proc.stderr


def test_alias_records_for_the_domain_and_its_wildcard() -> None:
    template = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    assert set(template["Parameters"]) >= {
        "Environment",
        "DomainName",
        "HostedZoneId",
        "LoadBalancerDnsName",
        "LoadBalancerHostedZoneId",
    }
    records = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Route53::RecordSet"}
    names = {(str(r["Properties"]["Name"]), r["Properties"]["Type"]) for r in records.values()}
    assert names == {
        ("{'Ref': 'DomainName'}", "A"),
        ("{'Fn::Sub': '*.${DomainName}'}", "A"),
        ("{'Ref': 'DomainName'}", "AAAA"),
        ("{'Fn::Sub': '*.${DomainName}'}", "AAAA"),
    }
    for record in records.values():
        props = record["Properties"]
        assert "TTL" not in props and "ResourceRecords" not in props
        assert props["HostedZoneId"] == {"Ref": "HostedZoneId"}
        assert props["AliasTarget"]["HostedZoneId"] == {"Ref": "LoadBalancerHostedZoneId"}
        assert props["AliasTarget"]["DNSName"] == {"Ref": "LoadBalancerDnsName"}
        assert (props["Type"] == "AAAA") == (record.get("Condition") == "Dualstack")
