"""AWX as code: the plan job of development run the way the controller runs it (ansible-runner with a
project folder, the environment's inventory, extra variables and environment variables) leaves the plan
as Markdown and JSON in the job's artifacts; the execution environment's build context is produced by
ansible-builder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT

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


def test_ansible_builder_creates_the_execution_environment_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    subprocess.run(
        [str(BIN_DIR / "ansible-builder"), "create", "-f", "ee/execution-environment.yml", "-c", str(context)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==2.19.14 ansible-runner==2.4.3" in containerfile
    assert "install-eksctl.sh /usr/local/bin" in containerfile and "install-kube-tools.sh" in containerfile
    build = context / "_build"
    assert "kubernetes==" in (build / "requirements.txt").read_text()
    assert "openssh-client" in (build / "bindep.txt").read_text()
    assert (build / "biomage/meta/tool-versions.env").read_text() == (REPO_ROOT / "meta/tool-versions.env").read_text()
    tools = (build / "biomage/tools/install-kube-tools.sh").read_text()
    assert "sha256sum" in tools and "Nothing installed" in tools
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    assert {c["name"] for c in collections} >= {"amazon.aws", "kubernetes.core"}
