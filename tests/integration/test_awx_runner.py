"""AWX as code: the plan job of development run the way the controller runs it. The controller gives the
job's folder (the project's copy, the survey's extra variables, the credentials' environment variables)
to ``ansible-runner transmit``; an execution node runs the stream with ``ansible-runner worker`` in a
folder of its own; the controller reads the worker's stream back with ``ansible-runner process``. The
plan, as Markdown and JSON, must reach the controller's artifacts, and the plan file its survey asked for
must be written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.lib.ansible_run import BIN_DIR, REPO_ROOT

pytestmark = pytest.mark.slow


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


def test_the_plan_job_of_development_streamed_to_a_worker_leaves_its_plan_in_the_controllers_artifacts(
    tmp_path: Path, devstack: dict[str, str]
) -> None:
    settings = yaml.safe_load((REPO_ROOT / "awx/settings.yml").read_text())
    controller, node = tmp_path / "controller", tmp_path / "execution-node"
    copy_project(controller / "project")
    (controller / "env").mkdir()
    # what the controller writes for a job: extravars (the survey's answers)
    (controller / "env/extravars").write_text(json.dumps({"biomage_plan_out": str(tmp_path / "development.plan")}))
    stream = tmp_path / "job.stream"
    with stream.open("wb") as output:
        ansible_runner.run(
            streamer="transmit",
            _output=output,
            private_data_dir=str(controller),
            playbook=settings["awx_playbook"],
            inventory=str(controller / "project/inventories/development"),
            # the credentials' injectors: the local stack's endpoints and its dummy credentials
            envvars={**devstack, "ANSIBLE_FORCE_COLOR": "0"},
            cmdline="--check --diff",
            ident="plan-development",
            quiet=True,
        )
    # the execution node: nothing of this checkout's settings (no ANSIBLE_CONFIG: the project's own
    # ansible.cfg applies), the execution environment's programs on the PATH
    node_env = {
        "PATH": f"{BIN_DIR}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ["HOME"],
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path),
    }
    with stream.open("rb") as job, (tmp_path / "worker.stream").open("wb") as output:
        worker = subprocess.run(
            [str(BIN_DIR / "ansible-runner"), "worker", "--private-data-dir", str(node)],
            stdin=job,
            stdout=output,
            stderr=subprocess.PIPE,
            env=node_env,
            timeout=1200,
            check=False,
        )
    assert worker.returncode == 0, worker.stderr.decode()[-4000:]
    lines: list[str] = []
    with (tmp_path / "worker.stream").open("rb") as returned:
        processed = ansible_runner.run(
            streamer="process",
            _input=returned,
            private_data_dir=str(controller),
            ident="plan-development",
            event_handler=lambda event: lines.append(event.get("stdout", "")) or True,
            quiet=True,
        )
    stdout = "\n".join(lines)
    assert processed.status == "successful", stdout[-4000:]
    artifacts = controller / "artifacts/plan-development"
    markdown = (artifacts / "plan.md").read_text()
    data = json.loads((artifacts / "plan.json").read_text())
    assert markdown.startswith("### ") and "**Plan: " in markdown
    assert data["mode"] == "plan" and data["summary"].startswith("Plan: ")
    assert "Plan: " in stdout
    planned = json.loads((tmp_path / "development.plan").read_text())
    assert "cf/" in " ".join(planned["fingerprint"]["inputs"])
    assert "inventories/development/hosts.yml" in planned["fingerprint"]["inputs"]
