"""AWX as code: the jobs of development run the way the controller runs them. The controller gives a job's
folder (the project synced into it, the survey's extra variables, the credentials' environment variables)
to ``ansible-runner transmit``; an execution node runs the stream with ``ansible-runner worker`` in a folder
of its own; the controller reads the worker's stream back with ``ansible-runner process``, which brings the
job's artifacts and its custom stats (what a workflow hands on to the nodes after it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.lib import aws
from tests.lib.ansible_run import BIN_DIR, REPO_ROOT

pytestmark = pytest.mark.slow
SETTINGS = yaml.safe_load((REPO_ROOT / "awx/settings.yml").read_text())


def job_template(suffix: str) -> dict[str, object]:
    """The job template of awx/configure.yml whose name ends with ``suffix`` (-plan, -apply)."""
    (play,) = yaml.safe_load((REPO_ROOT / "awx/configure.yml").read_text())
    templates = [t["awx.awx.job_template"] for t in play["tasks"] if "awx.awx.job_template" in t]
    return next(t for t in templates if str(t["name"]).endswith(suffix))


def workflow_node(identifier: str) -> dict[str, object]:
    """The node of awx/configure.yml's plan -> approval -> apply workflow named ``identifier``."""
    (play,) = yaml.safe_load((REPO_ROOT / "awx/configure.yml").read_text())
    (workflow,) = [t["awx.awx.workflow_job_template"] for t in play["tasks"] if "awx.awx.workflow_job_template" in t]
    return next(n for n in workflow["workflow_nodes"] if n["identifier"] == identifier)


def copy_project(target: Path) -> None:
    """The project as the controller's project update leaves it: the repository's files (symbolic links kept:
    collections/ansible_collections/biomage/iac), without what a checkout does not have (.venv, caches)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, copy = REPO_ROOT / name, target / name
        if not source.is_symlink() and not source.is_file():
            continue  # listed but deleted in this working tree
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)


@dataclass
class Job:
    status: str
    stdout: str
    artifacts: Path
    handed_on: dict[str, object]  # the custom stats (set_stats) a workflow passes to the nodes after this job


def run_job(
    work: Path, name: str, project: Path, devstack: dict[str, str], extravars: dict[str, object], check: bool
) -> Job:
    """One job of the environment development, as the controller runs it (see the module's docstring)."""
    controller, node = work / name / "controller", work / name / "execution-node"
    shutil.copytree(project, controller / "project", symlinks=True)  # the project synced into the job's folder
    (controller / "env").mkdir()
    (controller / "env/extravars").write_text(json.dumps(extravars))  # the survey's answers, workflow data
    stream = work / name / "job.stream"
    with stream.open("wb") as output:
        ansible_runner.run(
            streamer="transmit",
            _output=output,
            private_data_dir=str(controller),
            playbook=SETTINGS["awx_playbook"],
            inventory=str(controller / "project/inventories/development"),
            # the credentials' injectors: the local stack's endpoints and its dummy credentials
            envvars={**devstack, "ANSIBLE_FORCE_COLOR": "0"},
            cmdline="--check --diff" if check else "--diff",
            ident=name,
            quiet=True,
        )
    # the execution node: nothing of this checkout's settings (no ANSIBLE_CONFIG: the project's own
    # ansible.cfg applies), the execution environment's programs on the PATH
    node_env = {
        "PATH": f"{BIN_DIR}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ["HOME"],
        "LANG": "C.UTF-8",
        "TMPDIR": str(work),
    }
    returned = work / name / "worker.stream"
    with stream.open("rb") as job, returned.open("wb") as output:
        worker = subprocess.run(
            [str(BIN_DIR / "ansible-runner"), "worker", "--private-data-dir", str(node)],
            stdin=job,
            stdout=output,
            stderr=subprocess.PIPE,
            env=node_env,
            timeout=1200,
            check=False,
        )
    # the worker's own status is the playbook's; the controller reads the job's status from the stream
    events: list[dict[str, object]] = []
    with returned.open("rb") as stream_back:
        processed = ansible_runner.run(
            streamer="process",
            _input=stream_back,
            private_data_dir=str(controller),
            ident=name,
            event_handler=lambda event: events.append(event) or True,
            quiet=True,
        )
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    handed_on = (stats[-1].get("event_data") or {}).get("artifact_data") or {} if stats else {}
    said = "\n".join(str(e.get("stdout", "")) for e in events)
    return Job(processed.status, f"{said}\n{worker.stderr.decode()}", controller / "artifacts" / name, dict(handed_on))


def test_the_plan_job_of_development_leaves_its_plan_in_the_controllers_artifacts(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    project = tmp_path / "project"
    copy_project(project)
    plan = run_job(tmp_path, "plan", project, devstack, {"biomage_plan_out": str(tmp_path / "dev.plan")}, True)
    assert plan.status == "successful", plan.stdout[-4000:]
    markdown = (plan.artifacts / "plan.md").read_text()
    data = json.loads((plan.artifacts / "plan.json").read_text())
    assert markdown.startswith("### ") and "**Plan: " in markdown
    assert data["mode"] == "plan" and data["summary"].startswith("Plan: ")
    assert "Plan: " in plan.stdout
    planned = json.loads((tmp_path / "dev.plan").read_text())
    assert "cf/" in " ".join(planned["fingerprint"]["inputs"])
    assert "inventories/development/hosts.yml" in planned["fingerprint"]["inputs"]
    # the fingerprint is handed on only by the workflow's plan job (biomage_plan_handoff); the change sets a plan
    # file keeps are handed on whenever there are some (none when development is converged)
    assert "fingerprint" not in dict(plan.handed_on.get("biomage_plan") or {})


def set_visibility(project: Path, seconds: int) -> None:
    """A commit that changes the jobs queue's visibility timeout (cf/sqs.yaml, 900 in the repository)."""
    template = project / "cf/sqs.yaml"
    text = (REPO_ROOT / "cf/sqs.yaml").read_text()
    assert text.count("VisibilityTimeout: 900") == 1
    template.write_text(text.replace("VisibilityTimeout: 900", f"VisibilityTimeout: {seconds}"))


def test_the_workflows_apply_executes_the_approved_plan_and_refuses_one_made_stale_by_a_later_commit(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    cfn = aws.client(devstack, "cloudformation")
    stack = "biomage-sqs-development"
    project = tmp_path / "project"
    copy_project(project)
    # what the controller gives the jobs: the plan job template's variables, the apply node's answers
    handoff = dict(job_template("-plan")["extra_vars"])
    confirm = {k: str(v).replace("{{ item }}", "development") for k, v in workflow_node("apply")["extra_data"].items()}
    converge = run_job(tmp_path, "converge", project, devstack, confirm, False)
    assert converge.status == "successful", converge.stdout[-4000:]

    # plan -> approval -> apply: the apply gets the plan job's stats as extra variables
    set_visibility(project, 901)
    plan = run_job(tmp_path, "plan-901", project, devstack, handoff, True)
    assert plan.status == "successful", plan.stdout[-4000:]
    approved = plan.handed_on["biomage_plan"]
    assert set(approved) == {"fingerprint", "change_sets"}, approved
    assert list(approved["change_sets"]) == [stack]
    change_set = approved["change_sets"][stack]["id"]
    assert cfn.describe_change_set(ChangeSetName=change_set)["ExecutionStatus"] == "AVAILABLE"
    apply = run_job(tmp_path, "apply-901", project, devstack, {**confirm, **plan.handed_on}, False)
    assert apply.status == "successful", apply.stdout[-4000:]
    assert cfn.describe_change_set(ChangeSetName=change_set)["ExecutionStatus"] == "EXECUTE_COMPLETE"
    assert "VisibilityTimeout: 901" in cfn.get_template(StackName=stack)["TemplateBody"]

    # a commit lands between the approval and the apply (the apply's project sync takes it): refused
    set_visibility(project, 902)
    plan = run_job(tmp_path, "plan-902", project, devstack, handoff, True)
    assert plan.status == "successful", plan.stdout[-4000:]
    set_visibility(project, 903)
    apply = run_job(tmp_path, "apply-903", project, devstack, {**confirm, **plan.handed_on}, False)
    assert apply.status == "failed", apply.stdout[-4000:]
    said = " ".join(apply.stdout.split())
    assert "refusing to apply the plan handed on by the workflow's plan job" in said, said[-3000:]
    assert "input cf/sqs.yaml changed" in said and "Nothing was changed" in said
    assert "VisibilityTimeout: 901" in cfn.get_template(StackName=stack)["TemplateBody"]

    # back to the repository's template, applied without a plan as before, for the tests that follow
    (project / "cf/sqs.yaml").write_text((REPO_ROOT / "cf/sqs.yaml").read_text())
    restore = run_job(tmp_path, "restore", project, devstack, confirm, False)
    assert restore.status == "successful", restore.stdout[-4000:]
    assert "VisibilityTimeout: 900" in cfn.get_template(StackName=stack)["TemplateBody"]
