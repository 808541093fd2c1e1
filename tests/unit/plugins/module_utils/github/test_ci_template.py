"""A repository's CI privileges become one role trusted only by that repository's GitHub Actions (and
its container repository, when it asks for one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import rules as cfn_rules
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import load_template
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_config, ci_privileges, ci_template

from tests.lib.ci_files import OWNER, REPO_ROOT, UI_CI


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
    assert props["Policies"] == ci_config.parse(UI_CI, OWNER, "ui")
    assert {"Key": "biomage:github-repository", "Value": "biomage-org/ui"} in props["Tags"]
    assert built["template"]["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["Role", "Arn"]}


def test_rendered_template_passes_the_repository_rules_unchanged_and_cfn_lint(tmp_path: Path) -> None:
    built = ci_privileges.build(UI_CI, OWNER, "ui", ["main"], ["production"])
    label = ci_template.template_label(OWNER, "ui")
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
    with pytest.raises(ci_config.CiConfigError, match="branch"):
        ci_privileges.build(UI_CI, OWNER, "ui", [branch])


def test_wildcard_owner_or_repository_is_impossible() -> None:
    with pytest.raises(ci_config.CiConfigError, match="not a GitHub owner/repository name"):
        ci_template.subjects("*", "ui", ["main"])
    with pytest.raises(ci_config.CiConfigError, match="not a GitHub owner/repository name"):
        ci_template.subjects(OWNER, "u*", ["main"])


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
