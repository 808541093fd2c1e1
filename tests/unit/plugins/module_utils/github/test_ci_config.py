"""A repository's .ci.yaml (CloudFormation syntax) is validated with messages naming the repository, the
field and the fix, every problem at once."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_config, ci_privileges

from tests.lib.ci_files import OWNER, REPO_ROOT, UI_CI, ci_yaml, problems


def test_seed_file_parses_with_short_form_sub() -> None:
    policies = ci_config.parse(UI_CI, OWNER, "ui")
    assert [p["PolicyName"] for p in policies] == ["ecr-push"]
    (statement,) = policies[0]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/ui"
    }
    assert "ecr:PutImage" in statement["Action"]


def test_ref_and_getatt_short_forms_parse() -> None:
    text = ci_yaml(
        "{Effect: Allow, Action: s3:PutObject, Resource: [!Ref AWS::NoValue, !Sub 'arn:${AWS::Partition}:s3:::b/*']}"
    )
    (policy,) = ci_config.parse(text, OWNER, "ui")
    assert policy["PolicyDocument"]["Statement"][0]["Resource"][0] == {"Ref": "AWS::NoValue"}


ERROR_CASES = [
    ("{Effect: Allow, Action: '*:*', Resource: !Sub 'arn:${AWS::Partition}:s3:::b'}",
     "ci-policies[0].PolicyDocument.Statement[0].Action", 'Action "*:*"', "list the actions"),
    ("{Effect: Allow, Action: '*', Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0].Action", 'Action "*"', "list the actions"),
    ("{Effect: Allow, Action: 's3:*', Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0]", 'service-wide wildcard action', "scope Resource"),
    ("{Effect: Allow, NotAction: s3:GetObject, Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0].NotAction", "grants everything except", "with Action instead"),
    ("{Effect: Allow, Action: s3:GetObject, NotResource: 'arn:${AWS::Partition}:s3:::b'}",
     "ci-policies[0].PolicyDocument.Statement[0].NotResource", "grants everything except", "with Resource instead"),
    ("{Effect: Allow, Action: iam:PassRole, Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0]", "iam:passrole", "exact role ARNs"),
    ("{Effect: Allow, Action: 'iam:*', Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0]", "iam:*", "exact role ARNs"),
    ("{Effect: Allow, Action: 'sts:AssumeRole*', Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0]", "sts:assumerole*", "exact role ARNs"),
    ("{Effect: Allow, Action: ecr:PutImage, Resource: '*', Principal: {AWS: x}}",
     "ci-policies[0].PolicyDocument.Statement[0].Principal", "identity policy", "remove Principal"),
    ("{Effect: Maybe, Action: ecr:PutImage, Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0].Effect", "'Maybe'", "Effect: Allow"),
    ("{Effect: Allow, Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0].Action", "missing", "list the actions"),
    ("{Effect: Allow, Action: ecr:PutImage}",
     "ci-policies[0].PolicyDocument.Statement[0].Resource", "missing", "name the ARNs"),
    ("{Effect: Allow, Action: PutImage, Resource: '*'}",
     "ci-policies[0].PolicyDocument.Statement[0].Action", "not <service>:<action>", "ecr:PutImage"),
    ("{Effect: Allow, Action: ecr:PutImage, Resource: '*', Sids: x}",
     "ci-policies[0].PolicyDocument.Statement[0].Sids", "unknown key", "a statement has"),
    ("{Effect: Allow, Action: s3:PutObject, Resource: 'arn:aws:s3:::b'}",
     "ci-policies[0].PolicyDocument.Statement[0].Resource", "BIO004", "arn:${AWS::Partition}"),
    ("{Effect: Allow, Action: s3:PutObject, Resource: !Sub 'arn:${AWS::Partition}:sqs:eu-west-1:123456789012:q'}",
     "ci-policies[0].PolicyDocument.Statement[0].Resource", "BIO002", "${AWS::AccountId}"),
]  # fmt: skip


@pytest.mark.parametrize(("statement", "field", "message", "fix"), ERROR_CASES, ids=[c[1] + c[2] for c in ERROR_CASES])
def test_each_error_names_repository_field_and_fix(statement: str, field: str, message: str, fix: str) -> None:
    found = problems(ci_yaml(statement))
    matching = [p for p in found if p.startswith(f"biomage-org/ui:.ci.yaml: {field}") and message in p]
    assert matching, found
    assert all("Fix: " in p for p in found)
    assert fix in matching[0].split("Fix: ", 1)[1]


def test_read_only_identity_and_auth_token_actions_on_any_resource_are_allowed() -> None:
    statement = "{Effect: Allow, Action: [ecr:GetAuthorizationToken, sts:GetCallerIdentity], Resource: '*'}"
    built = ci_privileges.build(ci_yaml(statement), OWNER, "ui", ["main"])
    assert built["policies"][0]["PolicyDocument"]["Statement"][0]["Resource"] == "*"
    found = problems(ci_yaml("{Effect: Allow, Action: sts:AssumeRoleWithWebIdentity, Resource: '*'}"))
    assert any("sts:assumerolewithwebidentity" in p and "privilege escalation" in p for p in found), found


def test_the_documented_example_is_valid() -> None:
    doc = (REPO_ROOT / "docs/ci-privileges.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    built = ci_privileges.build(example, OWNER, "ui", ["main"])
    assert [p["PolicyName"] for p in built["policies"]] == ["ecr-push", "ecr-login"]


def test_the_aggregate_inline_policy_size_is_limited() -> None:
    actions = ", ".join(f"ecr:Action{i:04d}" for i in range(800))
    found = problems(ci_yaml(f"{{Effect: Allow, Action: [{actions}], Resource: x}}"))
    assert any(p.startswith("biomage-org/ui:.ci.yaml: ci-policies: the policies take about") for p in found)


def test_policy_names_must_be_valid_and_unique() -> None:
    second = (
        "  - PolicyName: first\n"
        "    PolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: ecr:PutImage, Resource: x}]}\n"
        "  - PolicyName: 'has space'\n"
        "    PolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Action: ecr:PutImage, Resource: x}]}\n"
    )
    found = problems(ci_yaml("{Effect: Allow, Action: ecr:PutImage, Resource: x}", second))
    assert any(p.startswith("biomage-org/ui:.ci.yaml: ci-policies[1].PolicyName: 'first' is already") for p in found)
    assert any(p.startswith("biomage-org/ui:.ci.yaml: ci-policies[2].PolicyName: 'has space'") for p in found)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("ci-policies: []\n", "ci-policies", "non-empty list"),
        ("policies: []\n", "", "must be a mapping with a 'ci-policies' list"),
        ("ci-policies:\n  - PolicyName: a\n", "ci-policies[0].PolicyDocument", "missing or not a mapping"),
        (
            "ci-policies:\n  - PolicyName: a\n    PolicyDocument: {Version: '2008-10-17', Statement: []}\n",
            "ci-policies[0].PolicyDocument.Version",
            "'2008-10-17'",
        ),
        ("ci-policies: [\n", "", "not valid YAML"),
        ("ci-policies:\n  - a: 1\n    a: 2\n", "", "duplicate key"),
    ],
)
def test_structure_errors(text: str, field: str, message: str) -> None:
    found = problems(text)
    prefix = f"biomage-org/ui:.ci.yaml: {field}" if field else "biomage-org/ui:.ci.yaml"
    assert any(p.startswith(prefix) and message in p and "Fix: " in p for p in found), found


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    found = problems(ci_yaml("{Effect: Allow, Action: '*', Resource: '*', NotAction: x, Principal: '*'}"))
    assert len(found) >= 3


@pytest.mark.parametrize(
    ("text", "repo", "expected"),
    [
        ("container-repository: yes please\n", "ui", "container-repository: is 'yes please'. Fix: write true"),
        ("container-repository: true\n", "Bad..Name", "is not a valid ECR repository name ('bad..name')"),
        ("container-repository: false\n", "ui", "must be a non-empty list (found nothing)"),
        (
            ci_yaml("{Effect: Allow, Action: s3:GetObject, Resource: !Sub 'arn:${AWS::Partition}:s3:::b/*'}").replace(
                "PolicyName: first", "PolicyName: container-repository-push"
            )
            + "container-repository: true\n",
            "ui",
            "'container-repository-push' is already the name of container-repository",
        ),
    ],
)
def test_container_repository_mistakes_are_named(text: str, repo: str, expected: str) -> None:
    found = problems(text, repo)
    assert any(expected in p for p in found), found
    assert all(p.startswith(f"{OWNER}/{repo}:.ci.yaml") for p in found), found
