"""GitHub Actions variables and secrets: exact plans for variables, honest ones for secrets."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github import actions as github_actions
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError


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


class FakeSettings:
    """The variable and secret calls of GitHubClient, on a dict; GitHub's refusals scripted by status."""

    def __init__(self, variables: dict | None = None, secrets: dict | None = None, refuse: int | None = None) -> None:
        self.variables, self.secrets, self.refuse = dict(variables or {}), dict(secrets or {}), refuse
        self.writes: list[tuple] = []

    def _read(self, store: dict, name: str) -> dict | None:
        if self.refuse:
            raise GitHubError(f"GitHub API GET .../{name} answered {self.refuse}: Forbidden.", self.refuse, fix="x.")
        return store.get(name)

    def get_variable(self, owner, repo, name):
        return self._read(self.variables, name)

    def get_secret(self, owner, repo, name):
        return self._read(self.secrets, name)

    def create_variable(self, owner, repo, name, value):
        self.writes.append(("create_variable", name, value))

    def update_variable(self, owner, repo, name, value):
        self.writes.append(("update_variable", name, value))

    def delete_variable(self, owner, repo, name):
        self.writes.append(("delete_variable", name))

    def put_secret(self, owner, repo, name, value, previous=None):
        self.writes.append(("put_secret", name))

    def delete_secret(self, owner, repo, name):
        self.writes.append(("delete_secret", name))


def test_ensure_variable_normalises_the_name_and_writes_only_outside_check_mode() -> None:
    client = FakeSettings({"AWS_REGION": {"name": "AWS_REGION", "value": "eu-west-1"}})
    assert github_actions.ensure_variable(client, "o", "r", "aws_region", "us-east-1", "present", check_mode=True) == (
        "AWS_REGION",
        {"name": "AWS_REGION", "value": "eu-west-1"},
        "update",
    )
    assert client.writes == []
    github_actions.ensure_variable(client, "o", "r", "aws_region", "us-east-1", "present")
    github_actions.ensure_variable(client, "o", "r", "new", "v", "present")
    github_actions.ensure_variable(client, "o", "r", "aws_region", None, "absent")
    assert client.writes == [
        ("update_variable", "AWS_REGION", "us-east-1"),
        ("create_variable", "NEW", "v"),
        ("delete_variable", "AWS_REGION"),
    ]


def test_ensure_secret_rewrites_an_existing_secret_only_when_forced() -> None:
    client = FakeSettings(secrets={"WEBHOOK": {"name": "WEBHOOK"}})
    assert github_actions.ensure_secret(client, "o", "r", "webhook", "v", "present")[2] == "unchanged"
    assert github_actions.ensure_secret(client, "o", "r", "webhook", "v", "present", force=True, check_mode=True)[
        2
    ] == ("update")
    assert client.writes == []
    github_actions.ensure_secret(client, "o", "r", "webhook", "v", "present", force=True)
    github_actions.ensure_secret(client, "o", "r", "webhook", None, "absent")
    assert client.writes == [("put_secret", "WEBHOOK"), ("delete_secret", "WEBHOOK")]


def test_errors_name_the_repository_and_setting_and_keep_status_and_fix() -> None:
    with pytest.raises(github_actions.ActionsSettingError) as caught:
        github_actions.ensure_secret(FakeSettings(refuse=403), "o", "r", "webhook", "v", "present")
    exc = caught.value
    assert str(exc) == "o/r secret webhook: GitHub API GET .../WEBHOOK answered 403: Forbidden. Fix: x."
    assert isinstance(exc, GitHubError) and isinstance(exc, BiomageError)
    assert exc.status == 403 and exc.details == {"http_status": 403} and exc.fix == "x."
    with pytest.raises(github_actions.ActionsSettingError) as caught:
        github_actions.ensure_variable(FakeSettings(), "o", "r", "GITHUB_X", "v", "present")
    assert str(caught.value).startswith("o/r variable GITHUB_X: variable name 'GITHUB_X' is invalid. Fix: use letters")
    assert caught.value.status is None and caught.value.details == {}


def test_diffs_show_variable_values_and_never_secret_values() -> None:
    current = {"name": "X", "value": "old"}
    assert github_actions.variable_diff("o", "r", "X", current, "new", "present") == {
        "before_header": "o/r vars.X",
        "after_header": "o/r vars.X",
        "before": "old\n",
        "after": "new\n",
    }
    assert github_actions.variable_diff("o", "r", "X", None, None, "absent")["before"] == ""
    assert github_actions.variable_diff("o", "r", "X", current, "new", "absent")["after"] == ""
    kept = github_actions.secret_diff("o", "r", "S", {"name": "S"}, "unchanged", "present")
    assert (kept["before_header"], kept["before"], kept["after"]) == (
        "o/r secrets.S",
        "present (value not readable)\n",
        "present (value not readable)\n",
    )
    assert github_actions.secret_diff("o", "r", "S", None, "create", "present")["after"] == "present (new value)\n"
    assert github_actions.secret_diff("o", "r", "S", {"name": "S"}, "delete", "absent")["after"] == ""
