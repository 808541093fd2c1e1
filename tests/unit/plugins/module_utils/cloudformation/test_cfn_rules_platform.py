"""Templates as platform teams write them (tests/fixtures/cf-platform, issue 11): the set passes with
its two reasoned exemptions and its allow-list, removing either gives exactly the right finding, and
each false positive the rules used to report has its test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[5]
PLATFORM = REPO_ROOT / "tests/fixtures/cf-platform"
TEMPLATES = sorted(PLATFORM.glob("*.template"))
ALLOW_LIST = PLATFORM / "third-party-accounts.yaml"
ENV_PARAMETER = {"Type": "String", "AllowedValues": ["development", "staging", "production"]}


def review(name: str, allow_list: cfn_rules.AllowList | None = None) -> cfn_rules.Review:
    path = PLATFORM / name
    if allow_list is None:
        allow_list = cfn_rules.AllowLists().for_template(str(path))
    return cfn_rules.review_file(str(path), name, allow_list)


def parsed(name: str) -> dict:
    return load_template((PLATFORM / name).read_text(), name)


def template(resources: dict, **extra: object) -> dict:
    return {"Parameters": {"Environment": dict(ENV_PARAMETER)}, "Resources": resources, **extra}


# -- the set --------------------------------------------------------------------------------------
def test_the_set_is_what_the_issue_describes() -> None:
    assert {p.name for p in TEMPLATES} == {
        "access-logs.template",
        "backup-plan.template",
        "downloads.template",
        "irsa-exporter-role.template",
        "monitoring-role.template",
        "shared-key.template",
    }
    texts = {p.name: p.read_text() for p in TEMPLATES}
    assert all("!Sub" in text for text in texts.values())  # short form throughout
    assert all("Default" in parsed(name)["Parameters"]["Environment"] for name in texts)
    assert set(parsed("access-logs.template")["Mappings"]["LogDelivery"]) == {"eu-west-1", "eu-central-1", "us-east-1"}
    assert '"Service": "ec2.amazonaws.com"' in texts["irsa-exporter-role.template"]
    assert "aws:PrincipalOrgID" in texts["shared-key.template"] and 'Principal: "*"' in texts["shared-key.template"]
    assert "464622532012" in texts["monitoring-role.template"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_template_of_the_set_passes(path: Path) -> None:
    result = review(path.name)
    assert result.findings == [], "\n".join(map(str, result.findings))


def test_the_set_passes_with_two_reasoned_exemptions_and_lists_every_allowed_account() -> None:
    exemptions = [e.to_dict() for path in TEMPLATES for e in review(path.name).exemptions]
    reasoned = [e for e in exemptions if e["source"].endswith("Metadata.biomage.exemptions[0]")]
    assert [(e["template"], e["rule"], e["path"], e["source"]) for e in reasoned] == [
        (
            "backup-plan.template",
            "BIO003",
            "Resources.BackupPlan.Properties.BackupPlan.BackupPlanRule[0].CopyActions[0]."
            "DestinationBackupVaultArn.Fn::Sub",
            "Metadata.biomage.exemptions[0]",
        ),
        (
            "downloads.template",
            "BIO008",
            "Resources.DownloadsBucketPolicy.Properties.PolicyDocument.Statement[0].Principal",
            "Resources.DownloadsBucketPolicy.Metadata.biomage.exemptions[0]",
        ),
    ]
    assert reasoned[0]["reason"].startswith("The disaster-recovery copy must stay in eu-central-1")
    allowed = [e for e in exemptions if e not in reasoned]
    assert {(e["template"], e["rule"], e["source"]) for e in allowed} == {
        ("access-logs.template", "BIO002", "tests/fixtures/cf-platform/third-party-accounts.yaml"),
        ("monitoring-role.template", "BIO002", "tests/fixtures/cf-platform/third-party-accounts.yaml"),
    }
    assert len(allowed) == 4
    assert any("464622532012: Datadog AWS integration" in e["reason"] for e in allowed)


# -- removing an exemption ------------------------------------------------------------------------
def _drop_template_exemption(data: dict) -> None:
    del data["Metadata"]


def _drop_resource_exemption(data: dict) -> None:
    del data["Resources"]["DownloadsBucketPolicy"]["Metadata"]


@pytest.mark.parametrize(
    ("name", "drop", "rule", "location", "fix"),
    [
        (
            "backup-plan.template",
            _drop_template_exemption,
            "BIO003",
            "Resources.BackupPlan.Properties.BackupPlan.BackupPlanRule[0].CopyActions[0]."
            "DestinationBackupVaultArn.Fn::Sub",
            "${AWS::Region}",
        ),
        (
            "downloads.template",
            _drop_resource_exemption,
            "BIO008",
            "Resources.DownloadsBucketPolicy.Properties.PolicyDocument.Statement[0].Principal",
            "aws:PrincipalOrgID",
        ),
    ],
)
def test_without_its_exemption_a_template_gives_exactly_the_one_right_finding(
    name: str, drop: object, rule: str, location: str, fix: str
) -> None:
    data = parsed(name)
    drop(data)
    result = cfn_rules.review_template(data, name, cfn_rules.AllowList.load(str(ALLOW_LIST)))
    assert [(f.rule, f.location) for f in result.findings] == [(rule, location)]
    text = str(result.findings[0])
    assert text.startswith(f"{name}: {location}: [{rule} ") and fix in text.split("Fix: ", 1)[1]
    assert result.exemptions == []


def test_without_the_allow_list_a_third_party_account_is_told_to_use_the_allow_list() -> None:
    result = review("monitoring-role.template", cfn_rules.AllowList())
    (finding,) = result.findings
    assert finding.rule == "BIO002" and "464622532012" in finding.message
    assert (
        finding.location
        == "Resources.MonitoringRole.Properties.AssumeRolePolicyDocument.Statement[0].Principal.AWS.Fn::Sub"
    )
    assert "allow-list" in finding.fix and "third-party-accounts.yaml" in finding.fix
    assert "AWS::AccountId" not in finding.fix  # that would make the role trust our own account


def test_without_the_allow_list_each_per_region_account_is_one_finding() -> None:
    result = review("access-logs.template", cfn_rules.AllowList())
    assert [(f.rule, f.location) for f in result.findings] == [
        ("BIO002", f"Mappings.LogDelivery.{region}.AccountId") for region in ("eu-west-1", "eu-central-1", "us-east-1")
    ]
    assert all("AWS::AccountId" not in f.fix for f in result.findings)


# -- the false positives of issue 11, one by one --------------------------------------------------
SHORT_FORMS = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Environment: {Type: String, AllowedValues: [development, staging, production], Default: staging}
  Cidr: {Type: String, Default: 10.0.0.0/16}
  Names: {Type: CommaDelimitedList, Default: "a,b"}
Mappings:
  Sizes: {staging: {Count: 1}, production: {Count: 2}, development: {Count: 1}}
Conditions:
  IsProduction: !Equals [!Ref Environment, production]
  IsStaging: !Equals [!Ref Environment, staging]
  IsShared: !Or [!Condition IsProduction, !Condition IsStaging]
  IsSmall: !And [!Not [!Condition IsProduction], !Condition IsShared]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join
        - "-"
        - [!Sub "jobs-${Environment}", !Select [0, !Split [",", !Join [",", !Ref Names]]], !Ref Environment]
      DelaySeconds: !FindInMap [Sizes, !Ref Environment, Count]
      Tags:
        - Key: zone
          Value: !Select [0, !GetAZs ""]
        - Key: subnet
          Value: !Select [0, !Cidr [!Ref Cidr, 2, 8]]
        - Key: note
          Value: !Base64 {"Fn::Sub": "${Environment}-${AWS::Region}"}
        - Key: peer
          Value: !If [IsSmall, !ImportValue shared-QueueArn, !GetAtt Dead.Arn]
  Dead:
    Type: AWS::SQS::Queue
"""


def test_short_form_tags_are_ordinary_cloudformation() -> None:
    short_forms: list = []
    data = load_template(SHORT_FORMS, "cf/queues.yaml", short_forms)
    assert {tag for tag, _line in short_forms} == {
        "!Sub", "!Ref", "!GetAtt", "!If", "!Join", "!Select", "!ImportValue", "!FindInMap", "!Base64", "!Cidr",
        "!GetAZs", "!Split", "!Equals", "!And", "!Or", "!Not", "!Condition",
    }  # fmt: skip
    assert data["Resources"]["Queue"]["Properties"]["Tags"][3]["Value"]["Fn::If"][2] == {"Fn::GetAtt": ["Dead", "Arn"]}
    assert cfn_rules.check_text(SHORT_FORMS, "cf/queues.yaml") == []


def test_region_names_as_mappings_keys_and_values_are_not_hard_coded_regions() -> None:
    data = template(
        {
            "Topic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": {"Fn::FindInMap": ["Pair", {"Ref": "AWS::Region"}, "Peer"]}},
            }
        },
        Mappings={"Pair": {"eu-west-1": {"Peer": "eu-central-1"}, "us-east-1": {"Peer": "us-west-2"}}},
    )
    assert cfn_rules.check_template(data, "cf/topic.yaml") == []
    data["Resources"]["Topic"]["Properties"]["TopicName"] = {"Fn::FindInMap": ["Pair", "eu-west-1", "Peer"]}
    assert [f.rule for f in cfn_rules.check_template(data, "cf/topic.yaml")] == ["BIO003"]


def test_asking_which_region_this_is_is_not_a_hard_coded_region() -> None:
    data = template(
        {"Topic": {"Type": "AWS::SNS::Topic", "Condition": "InVirginia"}},
        Conditions={"InVirginia": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}},
    )
    assert cfn_rules.check_template(data, "cf/topic.yaml") == []


def _key_policy(condition: dict | None) -> dict:
    statement = {"Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt"], "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    return template(
        {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": [statement]}},
            }
        }
    )


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        {"ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:sns:*:${AWS::AccountId}:*"}}},
        {"StringEquals": {"aws:PrincipalAccount": [{"Ref": "AWS::AccountId"}]}},
        {"ForAnyValue:StringLike": {"AWS:PrincipalOrgPaths": "o-abcdefghij/r-ab12/ou-ab12-11111111/*"}},
    ],
    ids=["PrincipalOrgID", "SourceAccount", "SourceArn", "PrincipalAccount", "PrincipalOrgPaths"],
)
def test_conditions_that_narrow_a_star_principal_are_understood(condition: dict) -> None:
    assert cfn_rules.check_template(_key_policy(condition), "cf/key.yaml") == []


@pytest.mark.parametrize(
    "condition",
    [
        None,
        {"Bool": {"aws:SecureTransport": "true"}},
        {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        {"StringNotEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
        {"StringLike": {"aws:SourceAccount": "*"}},
    ],
    ids=["none", "unrelated-key", "if-exists", "negated", "for-all-values", "wildcard-only"],
)
def test_conditions_that_do_not_narrow_a_star_principal_leave_the_finding(condition: dict | None) -> None:
    findings = cfn_rules.check_template(_key_policy(condition), "cf/key.yaml")
    assert [f.rule for f in findings] == ["BIO008"]


def _irsa(statements: list[dict]) -> dict:
    data = template(
        {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Fn::Sub": json.dumps({"Version": "2012-10-17", "Statement": statements})
                    }
                },
            }
        }
    )
    data["Parameters"]["OIDCProvider"] = {"Type": "String"}
    return data


WEB_IDENTITY = {
    "Effect": "Allow",
    "Principal": {"Federated": cfn_rules.OIDC_FEDERATED},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
        "StringEquals": {
            cfn_rules.AUD_KEY: "sts.amazonaws.com",
            cfn_rules.SUB_KEY: "system:serviceaccount:exporter-staging:metrics-exporter",
        }
    },
}
EC2 = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}


def test_irsa_checks_judge_only_web_identity_statements() -> None:
    assert cfn_rules.check_template(_irsa([WEB_IDENTITY, EC2]), "irsa-exporter-role.yaml") == []
    deny = {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRoleWithWebIdentity"}
    assert cfn_rules.check_template(_irsa([WEB_IDENTITY, deny]), "irsa-exporter-role.yaml") == []
    (finding,) = cfn_rules.check_template(_irsa([EC2]), "irsa-exporter-role.yaml")
    assert finding.rule == "BIO006" and "no web-identity statement" in finding.message
    assert finding.location == "Resources.Role.Properties.AssumeRolePolicyDocument.Fn::Sub"


@pytest.mark.parametrize(
    ("federated", "rule", "literal"),
    [
        ("arn:aws:iam::${AWS::AccountId}:oidc-provider/${OIDCProvider}", "BIO004", "arn:aws:"),
        ("arn:${AWS::Partition}:iam::210987654321:oidc-provider/${OIDCProvider}", "BIO002", "210987654321"),
    ],
)
def test_a_literal_in_the_oidc_principal_is_one_finding_not_also_a_wrong_trust(
    federated: str, rule: str, literal: str
) -> None:
    statement = {**WEB_IDENTITY, "Principal": {"Federated": federated}}
    findings = cfn_rules.check_template(_irsa([statement]), "irsa-exporter-role.yaml")
    assert [(f.rule, f.location) for f in findings] == [
        (rule, "Resources.Role.Properties.AssumeRolePolicyDocument.Fn::Sub.Statement[0].Principal.Federated")
    ]
    assert literal in findings[0].message


def test_a_hard_coded_issuer_is_still_a_wrong_trust() -> None:
    statement = {
        **WEB_IDENTITY,
        "Principal": {"Federated": "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/x"},
    }
    findings = cfn_rules.check_template(_irsa([statement]), "irsa-exporter-role.yaml")
    assert [f.rule for f in findings] == ["BIO006"] and "does not trust the cluster's OIDC provider" in findings[
        0
    ].message


def test_an_account_id_that_is_not_a_principal_is_told_to_use_the_pseudo_parameter() -> None:
    data = template({"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs-123456789012"}}})
    (finding,) = cfn_rules.check_template(data, "cf/sqs.yaml")
    assert finding.rule == "BIO002" and finding.fix.startswith("use ${AWS::AccountId}")


def test_a_template_that_does_not_parse_is_reported_with_line_and_column_and_the_others_are_checked(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: [x\n")
    (finding,) = cfn_rules.check_file(str(broken), "cf/broken.yaml")
    assert finding.rule == "BIO000" and finding.location == "line 5, column 1"
    assert str(finding).startswith("cf/broken.yaml: line 5, column 1: [BIO000 template-parses] not valid YAML/JSON: ")
    duplicate = cfn_rules.check_file(str(REPO_ROOT / "tests/fixtures/cf/bio000-duplicate-key.template"), "dup.yaml")
    assert [f.location for f in duplicate] == ["line 11, column 3"] and "duplicate key 'Queue'" in duplicate[0].message
