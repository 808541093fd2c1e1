"""CI privileges of an organisation: every repository's .ci.yaml read through GitHub, every problem of
every repository reported before anything changes."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.errors import fail
from ansible_collections.biomage.iac.plugins.module_utils.github import ci_config, ci_privileges
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError

from tests.lib.ci_files import OWNER, UI_CI, ci_yaml


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
    with pytest.raises(ci_config.CiConfigError) as caught:
        ci_privileges.collect(client, OWNER)
    repos = {p.split(":", 1)[0] for p in caught.value.problems}
    assert repos == {"biomage-org/ui", "biomage-org/api"}


def test_collect_uses_the_default_branch_and_skips_repositories_without_the_file() -> None:
    repos = ci_privileges.collect(FakeGitHub({"ui": UI_CI, "iac": None}), OWNER)
    by_name = {r["name"]: r for r in repos}
    assert by_name["iac"]["has_ci"] is False and "template_body" not in by_name["iac"]
    assert by_name["ui"]["subjects"] == ["repo:biomage-org/ui:ref:refs/heads/trunk"]


def test_collect_names_each_rendered_template_and_skips_archived_repositories() -> None:
    class WithArchived(FakeGitHub):
        def paginate(self, path: str) -> list[dict]:
            return [*super().paginate(path), {"name": "old", "default_branch": "main", "archived": True}]

    repos = {r["name"]: r for r in ci_privileges.collect(WithArchived({"ui": UI_CI, "iac": None}), OWNER)}
    assert repos["ui"]["template_label"] == "github.com/biomage-org/ui/.ci.yaml"
    assert "template_label" not in repos["iac"]
    assert repos["old"] == {
        "name": "old",
        "full_name": "biomage-org/old",
        "default_branch": "main",
        "archived": True,
        "has_ci": False,
        "skipped": "archived",
    }


def test_a_modules_failure_lists_every_problem() -> None:
    class Module:
        def fail_json(self, **result):
            raise SystemExit(result)

    with pytest.raises(SystemExit) as caught:
        fail(Module(), ci_config.CiConfigError(["a: x. Fix: y.", "b: x. Fix: y."]))
    assert caught.value.args[0] == {
        "msg": "2 problem(s) in CI privileges:\na: x. Fix: y.\nb: x. Fix: y.",
        "problems": ["a: x. Fix: y.", "b: x. Fix: y."],
    }


def test_collect_reads_the_named_variables_of_repositories_without_the_file() -> None:
    class WithVariables(FakeGitHub):
        def get_variable(self, owner: str, repo: str, name: str) -> dict | None:
            assert name == "AWS_ROLE_ARN", "names are read as GitHub stores them (upper case)"
            return {"name": name, "value": "arn:aws:iam::123456789012:role/biomage/ci/x"} if repo == "worker" else None

    repos = ci_privileges.collect(
        WithVariables({"ui": UI_CI, "worker": None, "iac": None}), OWNER, variables=["aws_role_arn"]
    )
    by_name = {r["name"]: r for r in repos}
    assert by_name["worker"]["variables"] == {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/biomage/ci/x"}
    assert by_name["iac"]["variables"] == {"AWS_ROLE_ARN": None}
    assert "variables" not in by_name["ui"], "a repository with CI privileges gets its variables set anyway"


def test_collect_refuses_an_invalid_variable_name_before_any_call() -> None:
    with pytest.raises(GitHubError) as caught:
        ci_privileges.collect(FakeGitHub({}), OWNER, variables=["GITHUB_NOT_ALLOWED"])
    assert "variable name 'GITHUB_NOT_ALLOWED' is invalid" in str(caught.value)
