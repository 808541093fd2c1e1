"""IAM analysis (docs/iam-analysis.md): what every deployed policy grants, judged by cloudsplaining and
parliament after !Sub and pseudo parameters are resolved; findings refuse the run before any API call."""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import iam_analysis
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import ValidationFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_config, ci_privileges

from tests.lib.cfn_scenarios import ENV, GROUP, converge, item
from tests.lib.ci_files import OWNER, REPO_ROOT, UI_CI, ci_yaml
from tests.lib.fake_cfn import FakeCfn

IRSA = (REPO_ROOT / "cf/irsa-ui-role.yaml").read_text()
OIDC = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"


def irsa_item(body: str) -> dict:
    return {**item("irsa-ui-role", body), "parameters": {"Environment": ENV, "OIDCProvider": OIDC}}


def irsa_with(
    extra_properties: dict | None = None, statements: list | None = None, metadata: dict | None = None
) -> str:
    template = yaml.safe_load(IRSA)
    props = template["Resources"]["Role"]["Properties"]
    props.update(extra_properties or {})
    if statements is not None:
        props["Policies"][0]["PolicyDocument"]["Statement"].extend(statements)
    if metadata is not None:
        template["Metadata"] = metadata
    return json.dumps(template)


def refused(body: str) -> list[str]:
    fake = FakeCfn()
    with pytest.raises(ValidationFailed) as failure:
        converge(fake, [irsa_item(body)])
    assert fake.calls == [], "the analysis runs before any CloudFormation call"
    return failure.value.problems


def test_repository_templates_pass_for_every_environment() -> None:
    for path in sorted((REPO_ROOT / "cf").glob("*.yaml")):
        template = yaml.safe_load(path.read_text())
        for env in ("development", "staging", "production"):
            found = iam_analysis.analyse_template(template, str(path), {"Environment": env}, threshold="low")
            assert found == [], [str(f) for f in found]


@pytest.mark.parametrize(
    "arn",
    [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/IAMFullAccess"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/PowerUserAccess"},
    ],
)
def test_managed_admin_policies_are_judged_by_what_they_grant(arn: object) -> None:
    problems = refused(irsa_with({"ManagedPolicyArns": [arn]}))
    text = "\n".join(problems)
    assert "cf/irsa-ui-role.yaml: Resources.Role.Properties.ManagedPolicyArns[0]" in text
    assert "[BIO108 managed-policy, high]" in text
    assert "Fix: do not attach" in text


def test_unknown_aws_managed_policy_cannot_be_judged_so_it_is_refused() -> None:
    problems = refused(
        irsa_with({"ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/SomethingNew"}]})
    )
    assert any("SomethingNew is not one the analysis knows" in p for p in problems), problems


@pytest.mark.parametrize(
    ("statement", "rule", "action"),
    [
        ({"Effect": "Allow", "Action": ["iam:*", "sts:*"], "Resource": {"Fn::Sub": "*"}}, "BIO106", "iam:*"),
        ({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"}, "BIO101", "iam:putrolepolicy"),
        ({"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*"}, "BIO102", "iam:AttachRolePolicy"),
        ({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": {"Fn::Sub": "*"}}, "BIO103", ""),
        ({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}, "BIO104", ""),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "BIO107", ""),
        (
            {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}},
            "BIO109",
            "s3:GetObjekt",
        ),
    ],
)
def test_inline_statements_are_refused_with_file_statement_actions_and_fix(statement, rule, action) -> None:
    problems = refused(irsa_with(statements=[statement]))
    hits = [p for p in problems if f"[{rule} " in p]
    assert hits, problems
    assert hits[0].startswith("cf/irsa-ui-role.yaml: Resources.Role.Properties.Policies[0] (ui).Statement[")
    assert "Fix: " in hits[0]
    assert action in hits[0]


def test_sub_resolves_parameters_so_a_star_parameter_is_star() -> None:
    template = {
        "Parameters": {"Environment": {"Type": "String"}, "Scope": {"Type": "String", "Default": "*"}},
        "Resources": {
            "P": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Ref": "Scope"}}],
                    }
                },
            }
        },
    }
    found = iam_analysis.analyse_template(template, "t.yaml", {"Environment": ENV})
    assert "BIO104" in {f.rule for f in found}, [str(f) for f in found]
    assert found[0].location == "Resources.P.Properties.PolicyDocument.Statement[0]"
    scoped = iam_analysis.analyse_template(template, "t.yaml", {"Environment": ENV, "Scope": "arn:aws:s3:::b/*"})
    assert scoped == []


def test_reasoned_exemption_in_metadata_is_honoured_and_a_reasonless_one_is_not() -> None:
    statement = {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": "*"}
    assert any("[BIO105 " in p for p in refused(irsa_with(statements=[statement])))
    reason = "the log shipper creates one log group per namespace, named at run time"
    exempt = irsa_with(
        statements=[statement], metadata={"biomage": {"exemptions": [{"rule": "BIO105", "reason": reason}]}}
    )
    specs = prepare([irsa_item(exempt)], ENV, GROUP, "eu-west-1")
    assert [s.name for s in specs] == ["irsa-ui-role"]
    bare = irsa_with(statements=[statement], metadata={"biomage": {"exemptions": [{"rule": "BIO105"}]}})
    problems = refused(bare)
    assert any("[BIO111 exemption-reason" in p and "Metadata.biomage.exemptions[0]" in p for p in problems)


def test_rules_false_skips_the_analysis_like_the_template_rules() -> None:
    body = irsa_with({"ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]})
    specs = prepare([irsa_item(body)], ENV, GROUP, "eu-west-1", apply_rules=False)
    assert len(specs) == 1


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        ("{Effect: Allow, Action: [iam:PutRolePolicy], Resource: !Sub '*'}", "BIO101"),
        ("{Effect: Allow, Action: [iam:AttachRolePolicy], Resource: '*'}", "BIO102"),
        ("{Effect: Allow, Action: [sts:AssumeRole], Resource: !Sub '*'}", "BIO103"),
    ],
)
def test_ci_yaml_policies_are_analysed_and_cannot_exempt_themselves(statement: str, rule: str) -> None:
    with pytest.raises(ci_config.CiConfigError) as failure:
        ci_privileges.build(ci_yaml(statement), OWNER, "ui", ["main"])
    hits = [p for p in failure.value.problems if f"[{rule} " in p]
    assert hits, failure.value.problems
    assert hits[0].startswith(f"{OWNER}/ui:.ci.yaml: ci-policies[")


def test_ci_role_with_container_repository_passes() -> None:
    built = ci_privileges.build(UI_CI, OWNER, "ui", ["main"])
    assert iam_analysis.analyse_template(built["template"], "ui", threshold="low") == []


def test_missing_analysers_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cloudsplaining.scan.policy_document", None)
    (finding,) = iam_analysis.analyse_template(yaml.safe_load(IRSA), "cf/irsa-ui-role.yaml")
    assert finding.rule == "BIO110"
    assert "make setup" in str(finding)


def test_a_template_without_identity_policies_needs_no_analyser(monkeypatch: pytest.MonkeyPatch) -> None:
    # a queue, a bucket policy (a resource policy) and a role trusting a third-party account: no identity policy
    template = load_template(
        """
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {AWS: !Sub "arn:aws:iam::${AWS::AccountId}:root"}
            Action: s3:GetObject
            Resource: !Sub "${Bucket.Arn}/*"
""",
        "cf/s3.yaml",
    )
    monkeypatch.setitem(sys.modules, "cloudsplaining.scan.policy_document", None)
    assert iam_analysis.analyse_template(template, "cf/s3.yaml", threshold="low") == []


@pytest.mark.parametrize(
    "pattern",
    ["system:serviceaccount:u*:deployment-runner", "system:serviceaccount:api-*:deployment-runner"],
)
def test_irsa_trust_names_only_the_owning_services_namespaces(pattern: str) -> None:
    body = IRSA.replace("system:serviceaccount:ui-*:deployment-runner", pattern)
    assert body != IRSA
    problems = refused(body)
    hits = [p for p in problems if "[BIO112 irsa-trust-owner" in p]
    assert hits, problems
    assert f"trusts '{pattern}', which is not a service account of ui's namespaces" in hits[0]
    assert "AssumeRolePolicyDocument.Statement[0].Condition.StringLike" in hits[0]


def test_service_names_are_prefix_free_so_app_star_matches_only_that_apps_namespaces() -> None:
    apps = [p.name[len("irsa-") : -len("-role.yaml")] for p in (REPO_ROOT / "cf").glob("irsa-*-role.yaml")]
    assert apps
    assert [(a, b) for a in apps for b in apps if a != b and b.startswith(a + "-")] == []
