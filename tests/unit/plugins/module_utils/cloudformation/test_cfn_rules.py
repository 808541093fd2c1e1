"""The template rules: every rule has a failing fixture that breaks it (and only it), and the
repository's own templates pass every rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[5]
FIXTURES = REPO_ROOT / "tests/fixtures/cf"
FIXTURE_FILES = sorted([*FIXTURES.glob("*.yaml"), *FIXTURES.glob("*.template")])
TEMPLATES = sorted((REPO_ROOT / "cf").glob("*.yaml"))


def expected_rule(path: Path) -> str:
    """Fixture names carry the rule they break: bio006-..., irsa-bio006-..."""
    return path.name.removeprefix("irsa-").split("-")[0].upper()


def test_there_are_templates_and_fixtures() -> None:
    assert len(TEMPLATES) >= 9
    assert len(FIXTURE_FILES) >= len(cfn_rules.RULES)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_repository_templates_pass_every_rule(template: Path) -> None:
    findings = cfn_rules.check_file(str(template), f"cf/{template.name}")
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name)
def test_each_fixture_breaks_exactly_its_rule(fixture: Path) -> None:
    findings = cfn_rules.check_file(str(fixture), fixture.name)
    assert findings, f"{fixture.name} passed every rule"
    assert {f.rule for f in findings} == {expected_rule(fixture)}, "\n".join(map(str, findings))
    for finding in findings:
        text = str(finding)
        assert text.startswith(fixture.name) and "Fix: " in text and f"[{finding.rule} {finding.name}]" in text


def test_every_rule_has_a_failing_fixture() -> None:
    covered = {expected_rule(f) for f in FIXTURE_FILES}
    assert covered == set(cfn_rules.RULES), f"rules without a fixture: {sorted(set(cfn_rules.RULES) - covered)}"


def _irsa_role(condition: dict, principal: object = None) -> dict:
    statement = {
        "Effect": "Allow",
        "Principal": principal or {"Federated": cfn_rules.OIDC_FEDERATED},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }
    return {
        "Parameters": {
            "Environment": {"Type": "String", "AllowedValues": list(cfn_rules.ENVIRONMENTS)},
            "OIDCProvider": {"Type": "String"},
        },
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Fn::If": [
                            "HasSandboxes",
                            {"Fn::Sub": json.dumps({"Statement": [statement]})},
                            {"Fn::Sub": json.dumps({"Statement": [statement]})},
                        ]
                    }
                },
            }
        },
    }


GOOD_CONDITION = {
    "StringEquals": {
        cfn_rules.AUD_KEY: "sts.amazonaws.com",
        cfn_rules.SUB_KEY: "system:serviceaccount:api-x:deployment-runner",
    }
}


def test_trust_rules_look_into_both_branches_of_fn_if() -> None:
    assert cfn_rules.check_template(_irsa_role(GOOD_CONDITION), "irsa-x.yaml") == []
    wildcard_in_equals = {
        "StringEquals": {
            cfn_rules.AUD_KEY: "sts.amazonaws.com",
            cfn_rules.SUB_KEY: "system:serviceaccount:api-*:deployment-runner",
        }
    }
    findings = cfn_rules.check_template(_irsa_role(wildcard_in_equals), "irsa-x.yaml")
    assert [f.rule for f in findings] == ["BIO007", "BIO007"]
    assert "Fn::If[1]" in findings[0].location and "Fn::If[2]" in findings[1].location


@pytest.mark.parametrize(
    ("principal", "condition", "message"),
    [
        ({"Service": "ec2.amazonaws.com"}, GOOD_CONDITION, "does not trust the cluster's OIDC provider"),
        (
            None,
            {"StringLike": {cfn_rules.SUB_KEY: "system:serviceaccount:*"}, **GOOD_CONDITION},
            "is not one service account",
        ),
        (
            None,
            {
                "StringEquals": {
                    cfn_rules.AUD_KEY: "sts.amazonaws.com",
                    cfn_rules.SUB_KEY: "system:serviceaccount:api:*",
                }
            },
            "is not one service account",
        ),
    ],
)
def test_trust_statements_name_one_service_account_of_the_cluster(
    principal: object, condition: dict, message: str
) -> None:
    findings = cfn_rules.check_template(_irsa_role(condition, principal), "irsa-x.yaml")
    assert any(message in f.message for f in findings), findings


def test_a_deny_with_principal_star_is_allowed_and_an_allow_is_not() -> None:
    template = load_template((REPO_ROOT / "cf/s3.yaml").read_text(), "cf/s3.yaml")
    assert cfn_rules.check_template(template, "cf/s3.yaml") == []  # TLS-only Deny statements
    template["Resources"]["SourceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Effect"] = "Allow"
    assert [f.rule for f in cfn_rules.check_template(template, "cf/s3.yaml")] == ["BIO008"]


def test_prose_may_mention_regions_but_configuration_may_not() -> None:
    template = load_template((REPO_ROOT / "cf/sqs.yaml").read_text(), "cf/sqs.yaml")
    template["Description"] = "Queues (first deployed in eu-west-1 for account 123456789012)"
    assert cfn_rules.check_template(template, "cf/sqs.yaml") == []
    # issue 11: a Default among the environments is accepted (the roles always pass Environment);
    # one that is not an environment is still a finding
    template["Parameters"]["Environment"]["Default"] = "production"
    assert cfn_rules.check_template(template, "cf/sqs.yaml") == []
    template["Parameters"]["Environment"]["Default"] = "prod"
    assert [f.location for f in cfn_rules.check_template(template, "cf/sqs.yaml")] == ["Parameters.Environment.Default"]


def test_the_lint_entry_point_fails_on_a_bad_template_and_passes_the_repository(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "tools/lint_cf.py", "--no-cfn-lint"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "tools/lint_cf.py", "--no-cfn-lint", str(FIXTURES / "bio009-admin-statement.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "[BIO009 no-admin-statement]" in bad.stdout
