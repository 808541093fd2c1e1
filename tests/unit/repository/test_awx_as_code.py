"""AWX as code without a controller: ansible-builder creates the execution environment's build context,
and the playbook converging the controller passes syntax-check and uses the awx.awx modules it should."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT, ansible_env


def test_ansible_builder_creates_the_execution_environment_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    subprocess.run(
        [
            str(BIN_DIR / "ansible-builder"),
            "create",
            "-f",
            "ee/execution-environment.yml",
            "-c",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-core==2.21.5 ansible-runner==2.4.3" in containerfile
    assert "install-eksctl.sh /usr/local/bin" in containerfile and "install-kube-tools.sh" in containerfile
    build = context / "_build"
    assert "kubernetes==" in (build / "requirements.txt").read_text()
    assert "openssh-client" in (build / "bindep.txt").read_text()
    assert (build / "biomage/meta/tool-versions.env").read_text() == (REPO_ROOT / "meta/tool-versions.env").read_text()
    tools = (build / "biomage/tools/install-kube-tools.sh").read_text()
    assert "sha256sum" in tools and "Nothing installed" in tools
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    assert {c["name"] for c in collections} >= {"amazon.aws", "kubernetes.core"}


def test_the_controller_playbook_is_valid_and_builds_the_plan_approve_apply_workflow() -> None:
    subprocess.run(
        [str(BIN_DIR / "ansible-playbook"), "--syntax-check", "awx/configure.yml"],
        cwd=REPO_ROOT,
        env=ansible_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    (play,) = yaml.safe_load((REPO_ROOT / "awx/configure.yml").read_text())
    tasks = {next(k for k in t if k.startswith("awx.awx.")): t for t in play["tasks"]}
    assert set(tasks) >= {
        "awx.awx.credential_type",
        "awx.awx.project",
        "awx.awx.inventory",
        "awx.awx.inventory_source",
        "awx.awx.job_template",
        "awx.awx.workflow_job_template",
        "awx.awx.execution_environment",
    }
    templates = [t["awx.awx.job_template"] for t in play["tasks"] if "awx.awx.job_template" in t]
    plan = next(t for t in templates if t["name"].endswith("-plan"))
    assert plan["job_type"] == "check" and plan["diff_mode"] is True and plan["survey_enabled"] is True
    # the plan job hands its plan on to the workflow's apply (tests/integration/test_awx_runner.py runs both)
    assert plan["extra_vars"] == {"biomage_plan_handoff": True}
    nodes = tasks["awx.awx.workflow_job_template"]["awx.awx.workflow_job_template"]["workflow_nodes"]
    assert [n["identifier"] for n in nodes] == ["plan", "approve", "apply"]
    assert nodes[1]["unified_job_template"]["type"] == "workflow_approval"
    secret = {f["id"]: f for f in tasks["awx.awx.credential_type"]["awx.awx.credential_type"]["inputs"]["fields"]}
    assert secret["private_key"]["secret"] is True
