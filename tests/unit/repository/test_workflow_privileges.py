"""CI that cannot escalate (docs/ci.md): a lint of the workflows' token permissions and secrets, and the
resources workflow's guard against the release identity, run as GitHub would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lib.ansible_run import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PULL_REQUEST_EVENTS = {"pull_request", "pull_request_target"}
# what code from a pull request may hold: a read-only GitHub token for the roles (Administration: read)
READ_ONLY_SECRETS = {"IAC_GITHUB_READ_TOKEN"}
# GITHUB_TOKEN scopes that are not a write to GitHub: id-token mints the OIDC token for the plan role
NOT_A_GITHUB_WRITE = {"id-token"}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(document: dict[str, Any]) -> dict[str, Any]:
    on = document.get(True, document.get("on"))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def write_scopes(permissions: object) -> list[str]:
    """The GitHub scopes a ``permissions:`` value can write (``write-all`` and a missing block count as all)."""
    if permissions in (None, "write-all"):
        return ["<all>"]
    if permissions in ("read-all", {}):
        return []
    assert isinstance(permissions, dict), permissions
    return sorted(k for k, v in permissions.items() if v == "write" and k not in NOT_A_GITHUB_WRITE)


def privilege_problems(name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Every way a pull request's code could reach a write-capable token through workflow ``name``."""
    document = load(name)
    problems = [f"{name}: permissions can write {s}" for s in write_scopes(document.get("permissions"))]
    for job_name, job in document["jobs"].items():
        if "permissions" in job:
            problems += [f"{name}/{job_name}: job permissions can write {s}" for s in write_scopes(job["permissions"])]
        secrets = job.get("secrets")
        if secrets == "inherit":
            problems.append(f"{name}/{job_name}: secrets: inherit hands every secret to the called workflow")
        elif isinstance(secrets, dict):
            problems += [
                f"{name}/{job_name}: passes secret {s} to pull-request code"
                for s in sorted(set(secrets) - READ_ONLY_SECRETS)
            ]
        for step in job.get("steps", []):
            for key, value in (step.get("env") or {}).items():
                if "secrets." in str(value) and not any(f"secrets.{s}" in str(value) for s in READ_ONLY_SECRETS):
                    problems.append(f"{name}/{job_name}: step env {key} holds {value}")
        uses = job.get("uses", "")
        if uses.startswith("./.github/workflows/") and uses not in seen:
            called = uses.rsplit("/", 1)[1]
            if job.get("with", {}).get("check") is not True:
                problems.append(f"{name}/{job_name}: calls {called} without check: true (an apply)")
            problems += [p for p in privilege_problems(called, seen | {uses}) if "IAC_GITHUB_TOKEN" not in p]
    return problems


def pull_request_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml") if PULL_REQUEST_EVENTS & set(triggers(load(p.name))))


@pytest.mark.parametrize("name", pull_request_workflows())
def test_pull_request_code_gets_no_write_capable_token(name: str) -> None:
    assert privilege_problems(name) == []


def test_the_lint_catches_a_write_token_handed_to_a_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule itself: the workflows as they were before issue 13 fail it."""
    for path in WORKFLOWS.glob("*.yml"):
        (tmp_path / path.name).write_text(path.read_text())
    plan = load("plan.yml")
    plan["jobs"]["plan"]["secrets"] = {"IAC_GITHUB_TOKEN": "${{ secrets.IAC_GITHUB_TOKEN }}"}
    plan["permissions"] = {"contents": "write", "id-token": "write"}
    (tmp_path / "plan.yml").write_text(yaml.safe_dump(plan))
    monkeypatch.setattr(sys.modules[__name__], "WORKFLOWS", tmp_path)
    problems = privilege_problems("plan.yml")
    assert "plan.yml: permissions can write contents" in problems
    assert "plan.yml/plan: passes secret IAC_GITHUB_TOKEN to pull-request code" in problems


def test_the_plan_calls_the_playbook_workflow_in_check_mode_only() -> None:
    job = load("plan.yml")["jobs"]["plan"]
    assert job["with"]["check"] is True
    assert set(job["secrets"]) == READ_ONLY_SECRETS


def test_the_write_token_exists_only_in_an_apply_from_main() -> None:
    (job,) = load("playbook.yml")["jobs"].values()
    assert job["if"] == "inputs.check || github.ref == 'refs/heads/main'"
    # plans run in <env>-plan (no write secret there), applies in the protected <env> environment
    assert job["environment"] == "${{ inputs.check && format('{0}-plan', inputs.environment) || inputs.environment }}"
    holders = [s for s in job["steps"] if "secrets.IAC_GITHUB_TOKEN" in str(s.get("env", {}))]
    assert [s["if"] for s in holders] == ["${{ !inputs.check }}"]
    readers = [s for s in job["steps"] if "secrets.IAC_GITHUB_READ_TOKEN" in str(s.get("env", {}))]
    assert [s["if"] for s in readers] == ["inputs.check"]


def test_every_apply_of_resources_waits_for_the_origin_guard() -> None:
    document = load("resources.yml")
    assert "releases/**" not in document["on"]["push"]["paths"]
    jobs = document["jobs"]
    assert jobs["staging"]["needs"] == "origin"
    assert jobs["production"]["needs"] == "staging"


def run_guard(tmp_path: Path, actor: str, triggering: str, identity: str) -> subprocess.CompletedProcess:
    (step,) = load("resources.yml")["jobs"]["origin"]["steps"]
    script = tmp_path / "guard.sh"
    script.write_text(step["run"])
    env = {"PATH": "/usr/bin:/bin", "ACTOR": actor, "TRIGGERING_ACTOR": triggering, "RELEASE_IDENTITY": identity}
    return subprocess.run(["bash", "-e", str(script)], env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("actor", "triggering", "identity", "ok", "message"),
    [
        ("alice", "alice", "biomage-releases[bot]", True, "not the release identity"),
        ("biomage-releases[bot]", "biomage-releases[bot]", "biomage-releases[bot]", False, "is the release identity"),
        ("alice", "biomage-releases[bot]", "biomage-releases[bot]", False, "is the release identity"),
        ("alice", "alice", "", False, "IAC_RELEASE_IDENTITY is not set"),
    ],
)
def test_the_origin_guard_refuses_the_release_identity(tmp_path, actor, triggering, identity, ok, message) -> None:
    result = run_guard(tmp_path, actor, triggering, identity)
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    assert message in result.stdout
