"""Exemptions (Metadata.biomage.exemptions) and the allow-list of third-party accounts: what they
lift, where, and every way they can be wrong (each wrong one is itself a BIO012 finding)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import ValidationFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

ENV = {"Type": "String", "AllowedValues": ["development", "staging", "production"]}
PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}


def bucket_policies(**metadata: object) -> dict:
    """Two bucket policies that grant to anyone (two BIO008 findings), with Metadata where given."""
    resources = {}
    for name in ("First", "Second"):
        resources[name] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": "b", "PolicyDocument": {"Version": "2012-10-17", "Statement": [dict(PUBLIC)]}},
        }
        if name in metadata:
            resources[name]["Metadata"] = metadata[name]
    template = {"Parameters": {"Environment": ENV}, "Resources": resources}
    if "Template" in metadata:
        template["Metadata"] = metadata["Template"]
    return template


def exempt(*entries: object) -> dict:
    return {"biomage": {"exemptions": list(entries)}}


REASON = "the bucket serves public downloads"


def test_a_resource_exemption_lifts_the_rule_for_that_resource_only() -> None:
    result = cfn_rules.review_template(
        bucket_policies(First=exempt({"rule": "BIO008", "reason": REASON})), "cf/s3.yaml"
    )
    assert [(f.rule, f.location) for f in result.findings] == [
        ("BIO008", "Resources.Second.Properties.PolicyDocument.Statement[0].Principal")
    ]
    assert [e.to_dict() for e in result.exemptions] == [
        {
            "template": "cf/s3.yaml",
            "rule": "BIO008",
            "path": "Resources.First.Properties.PolicyDocument.Statement[0].Principal",
            "reason": REASON,
            "source": "Resources.First.Metadata.biomage.exemptions[0]",
        }
    ]


def test_a_template_exemption_lifts_the_rule_everywhere_in_the_template() -> None:
    result = cfn_rules.review_template(bucket_policies(Template=exempt({"rule": "BIO008", "reason": REASON})), "x")
    assert result.findings == [] and len(result.exemptions) == 2
    assert {e.source for e in result.exemptions} == {"Metadata.biomage.exemptions[0]"}


def test_the_resource_exemption_wins_over_the_template_one_and_both_must_be_used() -> None:
    result = cfn_rules.review_template(
        bucket_policies(
            Template=exempt({"rule": "BIO008", "reason": "template-wide"}),
            First=exempt({"rule": "BIO008", "reason": "this one"}),
        ),
        "x",
    )
    assert result.findings == []
    assert sorted((e.path.split(".")[1], e.reason) for e in result.exemptions) == [
        ("First", "this one"),
        ("Second", "template-wide"),
    ]


@pytest.mark.parametrize(
    ("metadata", "location", "message", "fix"),
    [
        (
            {"First": exempt({"rule": "BIO008"})},
            "Resources.First.Metadata.biomage.exemptions[0]",
            "the exemption from BIO008 gives no reason",
            'add reason: "<why this template may break BIO008>"',
        ),
        (
            {"First": exempt({"rule": "BIO008", "reason": "  "})},
            "Resources.First.Metadata.biomage.exemptions[0]",
            "gives no reason",
            "add reason",
        ),
        (
            {"Template": exempt({"rule": "BIO099", "reason": REASON})},
            "Metadata.biomage.exemptions[0]",
            "unknown rule 'BIO099'",
            "name one of BIO001, BIO002",
        ),
        (
            {"Template": exempt({"rule": "no-public-principal", "reason": REASON})},
            "Metadata.biomage.exemptions[0]",
            "unknown rule 'no-public-principal'",
            "BIO008",
        ),
        (
            {"Template": exempt({"rule": "BIO011", "reason": REASON})},
            "Metadata.biomage.exemptions[0]",
            "BIO011 is no longer a rule",
            "remove the exemption",
        ),
        (
            {"Template": exempt({"rule": "BIO000", "reason": REASON})},
            "Metadata.biomage.exemptions[0]",
            "BIO000 cannot be exempted",
            "fix the template",
        ),
        (
            {"Template": exempt({"rule": "BIO008", "reasons": REASON})},
            "Metadata.biomage.exemptions[0]",
            "unknown key(s) reasons",
            "exemptions: [{rule: BIO0nn",
        ),
        (
            {"Template": {"biomage": {"exemptions": {"rule": "BIO008", "reason": REASON}}}},
            "Metadata.biomage",
            "is not a list",
            "exemptions: [{rule: BIO0nn",
        ),
        (
            {"Template": exempt({"rule": "BIO009", "reason": "no admin statement here"})},
            "Metadata.biomage.exemptions[0]",
            "the exemption from BIO009 exempts nothing",
            "remove the exemption",
        ),
        (
            {"Template": {"cfn-lint": {"config": {"ignore_checks": ["W3005", "E9008"]}}}},
            "Metadata.cfn-lint.config.ignore_checks[1]",
            "hides E9008 (BIO008) in the editor only",
            "Metadata.biomage.exemptions",
        ),
    ],
    ids=[
        "no-reason",
        "blank-reason",
        "unknown-rule",
        "rule-by-name",
        "retired-rule",
        "not-exemptable",
        "unknown-key",
        "not-a-list",
        "unused",
        "cfn-lint-ignore",
    ],
)
def test_a_wrong_exemption_is_itself_an_error(metadata: dict, location: str, message: str, fix: str) -> None:
    wrong = [
        f
        for f in cfn_rules.check_template(bucket_policies(**metadata), "cf/s3.yaml")
        if f.rule == "BIO012" and f.location == location
    ]
    assert len(wrong) == 1, cfn_rules.check_template(bucket_policies(**metadata), "cf/s3.yaml")
    assert message in wrong[0].message and fix in wrong[0].fix
    assert str(wrong[0]).startswith(f"cf/s3.yaml: {location}: [BIO012 exemption-valid] ")


def test_an_exemption_of_one_resource_does_not_cover_another_and_then_exempts_nothing() -> None:
    data = bucket_policies()
    data["Resources"]["Other"] = {"Type": "AWS::S3::Bucket", "Metadata": exempt({"rule": "BIO008", "reason": REASON})}
    findings = cfn_rules.check_template(data, "cf/s3.yaml")
    assert [(f.rule, f.location.split(".")[1]) for f in findings] == [
        ("BIO008", "First"),
        ("BIO008", "Second"),
        ("BIO012", "Other"),
    ]


def test_a_duplicate_exemption_is_refused() -> None:
    twice = exempt({"rule": "BIO008", "reason": "one"}, {"rule": "BIO008", "reason": "two"})
    findings = cfn_rules.check_template(bucket_policies(First=twice, Second=exempt()), "x")
    assert [(f.rule, f.location) for f in findings] == [
        ("BIO008", "Resources.Second.Properties.PolicyDocument.Statement[0].Principal"),
        ("BIO012", "Resources.First.Metadata.biomage.exemptions[1]"),
    ]


# -- the allow-list -------------------------------------------------------------------------------
GOOD = 'accounts:\n  - account_id: "464622532012"\n    service: a vendor\n'


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("accounts:\n  - account_id: 464622532012\n    service: a vendor\n", "accounts[0]", "not a quoted 12-digit"),
        ('accounts:\n  - account_id: "46462253201"\n    service: a vendor\n', "accounts[0]", "not a quoted 12-digit"),
        ('accounts:\n  - account_id: "464622532012"\n', "accounts[0]", "names no service"),
        (GOOD + '  - account_id: "464622532012"\n    service: again\n', "accounts[1]", "listed twice"),
        ('accounts:\n  - account_id: "464622532012"\n    service: x\n    owner: y\n', "accounts[0]", "unknown key(s)"),
        ("- 464622532012\n", "", "not a mapping with a list 'accounts'"),
        ("accounts: [\n", "", "not valid YAML/JSON"),
    ],
    ids=["unquoted", "eleven-digits", "no-service", "twice", "unknown-key", "a-list", "unparsable"],
)
def test_a_wrong_allow_list_entry_is_an_error_naming_the_file(text: str, location: str, message: str) -> None:
    allow_list = cfn_rules.AllowList.from_text(text, "third-party-accounts.yaml")
    (finding,) = allow_list.findings
    assert finding.rule == "BIO012" and finding.path == "third-party-accounts.yaml"
    assert finding.location == location and message in finding.message


def test_the_nearest_allow_list_applies_up_to_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "cf" / "team").mkdir(parents=True)
    assert cfn_rules.find_allow_list(str(tmp_path / "cf" / "team" / "a.yaml")) is None
    (tmp_path / cfn_rules.ALLOW_LIST_NAME).write_text(GOOD)
    assert cfn_rules.find_allow_list(str(tmp_path / "cf" / "team" / "a.yaml")) == str(
        tmp_path / cfn_rules.ALLOW_LIST_NAME
    )
    (tmp_path / "cf" / cfn_rules.ALLOW_LIST_NAME).write_text("accounts: []\n")
    assert cfn_rules.find_allow_list(str(tmp_path / "cf" / "team" / "a.yaml")) == str(
        tmp_path / "cf" / cfn_rules.ALLOW_LIST_NAME
    )


def test_the_repository_allow_list_is_valid() -> None:
    repo_root = Path(__file__).resolve().parents[5]
    allow_list = cfn_rules.AllowList.load(str(repo_root / cfn_rules.ALLOW_LIST_NAME))
    assert allow_list.findings == []
    assert cfn_rules.find_allow_list(str(repo_root / "cf" / "sqs.yaml")) == str(repo_root / cfn_rules.ALLOW_LIST_NAME)


# -- the deploy-time check ------------------------------------------------------------------------
MONITORING = Path(__file__).resolve().parents[5] / "tests/fixtures/cf-platform/monitoring-role.template"


def _item(name: str, path: Path) -> dict:
    return {"name": name, "template": str(path), "template_label": f"cf/{name}.yaml", "parameters": {"ExternalId": "x"}}


def test_prepare_applies_the_nearest_allow_list_and_keeps_the_exemptions_on_the_spec() -> None:
    (spec,) = prepare([_item("monitoring", MONITORING)], "staging", "g", "eu-west-1")
    assert [(e.rule, e.template) for e in spec.exemptions] == [("BIO002", "cf/monitoring.yaml")]
    assert spec.exemptions[0].source.endswith("tests/fixtures/cf-platform/third-party-accounts.yaml")


def test_prepare_reports_a_wrong_allow_list_once_and_blocks(tmp_path: Path) -> None:
    wrong = tmp_path / "accounts.yaml"
    wrong.write_text("accounts:\n  - account_id: 464622532012\n    service: a vendor\n")
    items = [_item("monitoring", MONITORING), _item("again", MONITORING)]
    with pytest.raises(ValidationFailed) as failure:
        prepare(items, "staging", "g", "eu-west-1", third_party_accounts=str(wrong))
    problems = failure.value.problems
    assert sum("[BIO012" in p and "accounts[0]" in p for p in problems) == 1
    # with the broken entry dropped the vendor's account is unlisted: each template says so, with the allow-list fix
    unlisted = [p for p in problems if "[BIO002" in p]
    assert len(unlisted) == 2 and all(str(wrong) in p.split("Fix: ")[1] for p in unlisted)
