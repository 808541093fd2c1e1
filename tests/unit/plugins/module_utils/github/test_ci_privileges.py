"""CI privileges: a repository's .ci.yaml (CloudFormation syntax) is validated with messages naming the
repository, the field and the fix, and becomes one role trusted only by that repository's GitHub Actions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules
from ansible_collections.biomage.iac.plugins.module_utils.github import actions as github_actions
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_privileges
from ansible_collections.biomage.iac.plugins.module_utils.github import oidc_provider as github_oidc
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[5]
SEED = json.loads((REPO_ROOT / "tools/devstack/github_seed.json").read_text())
UI_CI = next(r for r in SEED if r["name"] == "ui")["files"][".ci.yaml"]
OWNER = "biomage-org"


def ci_yaml(statement: str, extra_policy: str = "") -> str:
    return (
        "ci-policies:\n"
        "  - PolicyName: first\n"
        "    PolicyDocument:\n"
        "      Version: '2012-10-17'\n"
        "      Statement:\n"
        f"        - {statement}\n" + extra_policy
    )


def problems(text: str, repo: str = "ui") -> list[str]:
    with pytest.raises(ci_privileges.CiConfigError) as caught:
        ci_privileges.build(text, OWNER, repo, ["main"])
    return caught.value.problems


def test_seed_file_parses_with_short_form_sub() -> None:
    policies = ci_privileges.parse(UI_CI, OWNER, "ui")
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
    (policy,) = ci_privileges.parse(text, OWNER, "ui")
    assert policy["PolicyDocument"]["Statement"][0]["Resource"][0] == {"Ref": "AWS::NoValue"}


def test_rendered_trust_is_github_oidc_for_exactly_this_repository() -> None:
    built = ci_privileges.build(UI_CI, OWNER, "ui", ["main", "release/1.0"], ["production"])
    role = built["template"]["Resources"]["Role"]
    props = role["Properties"]
    assert role["Type"] == "AWS::IAM::Role"
    assert props["MaxSessionDuration"] == 3600
    assert props["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubActions",
                "Effect": "Allow",
                "Principal": {
                    "Federated": {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/"
                        "token.actions.githubusercontent.com"
                    }
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": [
                            "repo:biomage-org/ui:environment:production",
                            "repo:biomage-org/ui:ref:refs/heads/main",
                            "repo:biomage-org/ui:ref:refs/heads/release/1.0",
                        ],
                    }
                },
            }
        ],
    }
    assert "StringLike" not in json.dumps(props["AssumeRolePolicyDocument"])
    assert props["Policies"] == ci_privileges.parse(UI_CI, OWNER, "ui")
    assert {"Key": "biomage:github-repository", "Value": "biomage-org/ui"} in props["Tags"]
    assert built["template"]["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["Role", "Arn"]}


def test_rendered_template_passes_the_repository_rules_unchanged_and_cfn_lint(tmp_path: Path) -> None:
    built = ci_privileges.build(UI_CI, OWNER, "ui", ["main"], ["production"])
    label = ci_privileges.template_label(OWNER, "ui")
    assert cfn_rules.check_text(built["template_body"], label) == []
    assert load_template(built["template_body"], label) == built["template"]
    assert "!Sub" not in built["template_body"]
    rendered = tmp_path / "ci-ui.json"
    rendered.write_text(built["template_body"])
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools/lint_cf.py"), str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("branch", ["*", "feature/*", "main:x", ""])
def test_wildcard_or_odd_branches_are_refused(branch: str) -> None:
    with pytest.raises(ci_privileges.CiConfigError, match="branch"):
        ci_privileges.build(UI_CI, OWNER, "ui", [branch])


def test_wildcard_owner_or_repository_is_impossible() -> None:
    with pytest.raises(ci_privileges.CiConfigError, match="not a GitHub owner/repository name"):
        ci_privileges.subjects("*", "ui", ["main"])
    with pytest.raises(ci_privileges.CiConfigError, match="not a GitHub owner/repository name"):
        ci_privileges.subjects(OWNER, "u*", ["main"])


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


class FakeGitHub:
    """The two GitHubClient calls collect() makes (the client itself is tested against the stand-in)."""

    def __init__(self, files: dict[str, str | None]) -> None:
        self.files = files

    def paginate(self, path: str) -> list[dict]:
        assert path == "/orgs/biomage-org/repos"
        return [{"name": n, "full_name": f"{OWNER}/{n}", "default_branch": "trunk"} for n in self.files]

    def get_file(self, owner: str, repo: str, path: str) -> str | None:
        return self.files[repo]


def test_collect_reports_every_invalid_repository_at_once() -> None:
    bad = ci_yaml("{Effect: Allow, Action: '*', Resource: '*'}")
    client = FakeGitHub({"ui": bad, "api": bad.replace("first", "x y"), "iac": None})
    with pytest.raises(ci_privileges.CiConfigError) as caught:
        ci_privileges.collect(client, OWNER)
    repos = {p.split(":", 1)[0] for p in caught.value.problems}
    assert repos == {"biomage-org/ui", "biomage-org/api"}


def test_collect_uses_the_default_branch_and_skips_repositories_without_the_file() -> None:
    repos = ci_privileges.collect(FakeGitHub({"ui": UI_CI, "iac": None}), OWNER)
    by_name = {r["name"]: r for r in repos}
    assert by_name["iac"]["has_ci"] is False and "template_body" not in by_name["iac"]
    assert by_name["ui"]["subjects"] == ["repo:biomage-org/ui:ref:refs/heads/trunk"]


def test_variable_and_secret_plans() -> None:
    assert github_actions.plan_variable(None, "a", "present") == "create"
    assert github_actions.plan_variable({"value": "a"}, "a", "present") == "unchanged"
    assert github_actions.plan_variable({"value": "a"}, "b", "present") == "update"
    assert github_actions.plan_variable({"value": "a"}, None, "absent") == "delete"
    assert github_actions.plan_variable(None, None, "absent") == "unchanged"
    assert github_actions.plan_secret(None, "present", False) == "create"
    assert github_actions.plan_secret({"name": "X"}, "present", False) == "unchanged"
    assert github_actions.plan_secret({"name": "X"}, "present", True) == "update"
    assert github_actions.plan_secret({"name": "X"}, "absent", False) == "delete"
    assert github_actions.normalise_name("aws_role_arn", "variable") == "AWS_ROLE_ARN"
    for name in ("GITHUB_TOKEN", "1X", "A-B", ""):
        with pytest.raises(github_actions.ActionsSettingError, match="Fix:"):
            github_actions.normalise_name(name, "variable")


def test_oidc_provider_plan() -> None:
    assert github_oidc.plan(None, ["sts.amazonaws.com"], []) == [
        ("create", {"client_ids": ["sts.amazonaws.com"], "thumbprints": []})
    ]
    current = {"url": "token.actions.githubusercontent.com", "client_ids": ["sts.amazonaws.com"], "thumbprints": []}
    assert github_oidc.plan(current, ["sts.amazonaws.com"], []) == []
    assert github_oidc.plan(current, ["other"], []) == [
        ("add_client_id", "other"),
        ("remove_client_id", "sts.amazonaws.com"),
    ]


def test_a_container_repository_is_declared_kept_and_pushable_by_the_role_only() -> None:
    built = ci_privileges.build("container-repository: true\n", OWNER, "Pipeline", ["main"])
    assert built["container_repository"] == "pipeline"
    resources = built["template"]["Resources"]
    repository = resources["ContainerRepository"]
    assert repository["Type"] == "AWS::ECR::Repository"
    assert repository["DeletionPolicy"] == repository["UpdateReplacePolicy"] == "Retain"
    props = repository["Properties"]
    assert props["RepositoryName"] == "pipeline"
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    (rule,) = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rule["selection"]["tagStatus"] == "untagged" and rule["action"] == {"type": "expire"}
    (policy,) = resources["Role"]["Properties"]["Policies"]
    assert policy["PolicyName"] == "container-repository-push"
    push, login = policy["PolicyDocument"]["Statement"]
    assert push["Resource"] == {"Fn::GetAtt": ["ContainerRepository", "Arn"]}
    assert "ecr:PutImage" in push["Action"] and not any(a.endswith("*") for a in push["Action"])
    assert login == {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
    assert built["template"]["Outputs"]["RepositoryUri"]["Value"] == {
        "Fn::GetAtt": ["ContainerRepository", "RepositoryUri"]
    }
    # the repository's own policies come first; the rendered template passes the rules
    both = ci_privileges.build(UI_CI + "container-repository: true\n", OWNER, "ui", ["main"])
    names = [p["PolicyName"] for p in both["template"]["Resources"]["Role"]["Properties"]["Policies"]]
    assert names == ["ecr-push", "container-repository-push"]
    assert cfn_rules.check_template(both["template"], "ui:.ci.yaml") == []


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
