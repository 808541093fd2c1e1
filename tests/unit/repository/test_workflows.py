"""The GitHub workflows of this repository: pinned actions, least privilege, and the runs the README
promises (make test on every change, a --check --diff plan of every pull request, automatic
resources on main, manual deploys)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lib.ansible_run import REPO_ROOT

GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow(name: str) -> dict[str, Any]:
    return load(GITHUB / "workflows" / f"{name}.yml")


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def uses_of(document: dict[str, Any]) -> list[str]:
    jobs = document.get("jobs", {}).values()
    return [s["uses"] for s in steps_of(document) if "uses" in s] + [j["uses"] for j in jobs if "uses" in j]


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_remote_actions_are_pinned_by_commit_with_their_version(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for uses in uses_of(load(path)):
        if uses.startswith("./"):
            assert (REPO_ROOT / uses).exists(), f"{path.name}: {uses} does not exist"
            continue
        assert PINNED.match(uses), f"{path.name}: {uses} is not pinned to a full commit SHA"
        assert re.search(re.escape(uses) + r" # v\d+\.\d+\.\d+$", text, re.M), f"{path.name}: {uses} lacks '# vX.Y.Z'"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_declares_least_privilege(path: Path) -> None:
    document = load(path)
    permissions = document["permissions"]
    assert isinstance(permissions, dict), f"{path.name}: permissions must be a mapping, not {permissions!r}"
    assert permissions.get("contents") == "read"
    assert set(permissions) <= {"contents", "id-token"}, f"{path.name}: {permissions}"
    assert all(value in ("read", "write") for value in permissions.values())
    if permissions.get("id-token") == "write":
        # only workflows that assume an AWS role get an OIDC token
        assert "playbook.yml" in " ".join(uses_of(document)) or path.name == "playbook.yml", path.name
    for step in steps_of(document):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            allowed = path.name == "releases-guard.yml"  # fetches the pull request's objects (documented there)
            assert step.get("with", {}).get("persist-credentials") is False or allowed, path.name


def test_only_the_releases_guard_runs_on_pull_request_target() -> None:
    triggers = {path.name: load(path)[True] if True in load(path) else load(path)["on"] for path in WORKFLOWS}
    assert [name for name, on in triggers.items() if "pull_request_target" in on] == ["releases-guard.yml"]


def test_every_change_runs_the_readme_test_command() -> None:
    test = workflow("test")
    assert set(test["on"]) == {"push", "pull_request"}
    runs = [s.get("run") for s in steps_of(test)]
    assert "bash .ci/run" in runs
    assert "make test" in (REPO_ROOT / ".ci/run").read_text()


def test_every_pull_request_is_planned_on_every_cloud_environment() -> None:
    plan = workflow("plan")
    job = plan["jobs"]["plan"]
    cloud = sorted(p.name for p in (REPO_ROOT / "inventories").iterdir() if p.name != "development")
    assert sorted(job["strategy"]["matrix"]["environment"]) == cloud
    assert job["uses"] == "./.github/workflows/playbook.yml"
    assert job["with"] == {"environment": "${{ matrix.environment }}", "playbook": "site", "check": True}
    assert plan["on"]["pull_request"]["paths-ignore"], "documentation-only changes need no plan"


def test_the_reusable_playbook_workflow_plans_with_the_read_only_role_and_never_cancels_an_apply() -> None:
    playbook = workflow("playbook")
    (job,) = playbook["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "inputs.environment" in job["concurrency"]["group"]
    aws = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert aws["with"]["role-to-assume"] == "${{ inputs.check && vars.IAC_PLAN_ROLE_ARN || vars.IAC_APPLY_ROLE_ARN }}"
    assert "aws-access-key-id" not in aws["with"], "no stored AWS keys: OIDC only"
    run = next(s for s in job["steps"] if s.get("name") == "ansible-playbook")
    assert run["run"] == "tools/run-playbook.sh"
    assert run["env"]["CHECK"] == "${{ inputs.check }}"
    # the plan uses a separate GitHub environment, so production's reviewers gate applies, not plans
    assert job["environment"] == "${{ inputs.check && format('{0}-plan', inputs.environment) || inputs.environment }}"


def test_resources_are_applied_to_staging_then_production_on_main() -> None:
    resources = workflow("resources")
    assert resources["on"]["push"]["branches"] == ["main"]
    assert "cf/**" in resources["on"]["push"]["paths"]
    jobs = resources["jobs"]
    assert jobs["staging"]["with"] == {"environment": "staging", "playbook": "resources", "check": False}
    assert jobs["production"]["with"] == {"environment": "production", "playbook": "resources", "check": False}
    assert jobs["production"]["needs"] == "staging"


def test_manual_deploys_offer_only_existing_playbooks_and_plan_by_default() -> None:
    inputs = workflow("deploy")["on"]["workflow_dispatch"]["inputs"]
    for playbook in inputs["playbook"]["options"]:
        assert (REPO_ROOT / "playbooks" / f"{playbook}.yml").is_file()
    assert "ci" not in inputs["playbook"]["options"], "CI privileges are converged by an operator (README)"
    assert inputs["check"]["default"] is True
    for environment in inputs["environment"]["options"]:
        assert (REPO_ROOT / "inventories" / environment / "hosts.yml").is_file()
