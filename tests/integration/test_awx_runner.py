"""AWX as code: the plan job of development run the way the controller runs it (ansible-runner with a
project folder, the environment's inventory, extra variables and environment variables) leaves the plan
as Markdown and JSON in the job's artifacts, and the plan file its survey asked for."""

from __future__ import annotations

import json
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.lib.ansible_run import REPO_ROOT

pytestmark = pytest.mark.slow


def test_the_plan_job_of_development_leaves_its_plan_in_the_artifacts(
    tmp_path: Path, stack_ansible_env: dict[str, str]
) -> None:
    settings = yaml.safe_load((REPO_ROOT / "awx/settings.yml").read_text())
    private = tmp_path / "job"
    (private / "env").mkdir(parents=True)
    # what the controller writes for a job: extravars (the survey's answers) and envvars (credentials' injectors)
    (private / "env/extravars").write_text(json.dumps({"biomage_plan_out": str(tmp_path / "development.plan")}))
    run = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(REPO_ROOT),
        playbook=settings["awx_playbook"],
        inventory=str(REPO_ROOT / "inventories/development"),
        envvars={k: v for k, v in stack_ansible_env.items() if k.isupper()},
        cmdline="--check --diff",
        ident="plan-development",
        quiet=True,
        timeout=1200,
    )
    stdout = run.stdout.read()
    assert run.rc == 0, stdout[-4000:]
    artifacts = private / "artifacts/plan-development"
    markdown = (artifacts / "plan.md").read_text()
    data = json.loads((artifacts / "plan.json").read_text())
    assert markdown.startswith("### ") and "**Plan: " in markdown
    assert data["mode"] == "plan" and data["summary"].startswith("Plan: ")
    assert "Plan: " in stdout
    planned = json.loads((tmp_path / "development.plan").read_text())
    assert "cf/" in " ".join(planned["fingerprint"]["inputs"])
    assert "inventories/development/hosts.yml" in planned["fingerprint"]["inputs"]
