"""The biomage.iac.plan callback: one summary per run, beside the default output or as stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook

FIXTURE = REPO_ROOT / "tests/fixtures/playbooks/plan"
SECRET = "s3cr3t-t0ken-value"


def run(tmp_path: Path, *, check: bool, as_stdout: bool) -> tuple[str, str, dict]:
    env = ansible_env(
        ANSIBLE_LIBRARY=str(FIXTURE / "library"),
        BIOMAGE_PLAN_MARKDOWN=str(tmp_path / "plan.md"),
        BIOMAGE_PLAN_JSON=str(tmp_path / "plan.json"),
        BIOMAGE_PLAN_TITLE="development",
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
    )
    if as_stdout:
        env["ANSIBLE_STDOUT_CALLBACK"] = "biomage.iac.plan"
    else:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "biomage.iac.plan"
    result = run_playbook(
        FIXTURE / "play.yml", "localhost,", env=env, check=check, extra_vars={"fixture_dir": str(tmp_path)}
    ).assert_ok()
    # quieting the default callback's output must not override deprecated base methods (v2_on_any warned)
    assert "DEPRECATION" not in result.stdout + result.stderr
    markdown = (tmp_path / "plan.md").read_text()
    assert (tmp_path / "summary.md").read_text() == markdown
    return result.stdout, markdown, json.loads((tmp_path / "plan.json").read_text())


@pytest.mark.parametrize("as_stdout", [False, True])
def test_a_check_run_ends_with_the_plan(tmp_path: Path, as_stdout: bool) -> None:
    stdout, markdown, data = run(tmp_path, check=True, as_stdout=as_stdout)
    # the default output is printed once, whichever way the callback is enabled
    assert stdout.count("TASK [A module of this collection reports its plan]") == 1
    assert "Plan: 1 to create, 2 to update, 1 to replace, 1 to delete" in stdout
    assert "  ! delete    CloudFormation stack biomage-old-development (template removed)" in stdout
    assert "  ! replace   EKS node group workers-a (instance type changed)" in stdout
    assert "    create    CloudFormation stack biomage-dynamo-development (new template)" in stdout
    assert "biomage-sqs-development" not in stdout.split("PLAN")[-1]
    assert markdown.startswith("### development\n")
    assert (
        "| (playbook) | **delete** | CloudFormation stack | `biomage-old-development` | template removed |" in markdown
    )
    assert "**Plan: 1 to create, 2 to update, 1 to replace, 1 to delete**" in markdown
    assert data["mode"] == "plan"
    assert data["counts"]["replace"] == 1
    assert {c["name"] for c in data["changes"]} == {
        "biomage-dynamo-development",
        "biomage-s3-development",
        "biomage-old-development",
        "workers-a",
        "Any other module that changes something",
    }


def test_a_real_run_says_what_was_applied(tmp_path: Path) -> None:
    stdout, markdown, data = run(tmp_path, check=False, as_stdout=False)
    assert "Applied: 1 created, 2 updated, 1 replaced, 1 deleted" in stdout
    assert data["mode"] == "applied"
    assert "**Applied: 1 created, 2 updated, 1 replaced, 1 deleted**" in markdown


def test_no_secret_reaches_any_form_of_the_plan(tmp_path: Path) -> None:
    stdout, markdown, data = run(tmp_path, check=True, as_stdout=True)
    for text in (stdout, markdown, json.dumps(data)):
        assert SECRET not in text
