"""The service kit (.github/workflows/service-release.yml): actionlint accepts it, and its release
job's own scripts (the App token step and the release step, taken from the workflow file as they
are) run against the local stack: a service's release lands in releases/ as the release App, and a
sandbox's release is removed."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from devstack import Stack

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, ansible_env
from tests.lib.github import OWNER, call
from tests.lib.releases import EXAMPLE, irsa_template

pytestmark = pytest.mark.slow
WORKFLOW = REPO_ROOT / ".github/workflows/service-release.yml"
REPO = "kit-target"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("service-kit"), ["moto", "github"])
    try:
        full = ansible_env(stack.up())
        status, body = call(
            full, "POST", "/_standin/repos", {"owner": OWNER, "name": REPO, "files": {"README.md": "x\n"}}
        )
        assert status == 201, body
        aws.client(full, "cloudformation").create_stack(
            StackName="biomage-irsa-ui-role-staging",
            TemplateBody=irsa_template("ui", "staging"),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        yield full
    finally:
        stack.down()


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def step(job: str, step_id: str) -> dict[str, Any]:
    found = [s for s in workflow()["jobs"][job]["steps"] if s.get("id") == step_id]
    assert len(found) == 1, f"no step {step_id} in job {job}"
    return found[0]


def substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        assert match[1] in values, f"the test does not know the expression {match[1]!r}"
        return values[match[1]]

    return EXPRESSION.sub(one, text)


def run_step(
    job: str, step_id: str, values: dict[str, str], base_env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run one ``run:`` step of the workflow as the runner would: its env (expressions filled in),
    GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, bash; its outputs."""
    found = step(job, step_id)
    outputs, summary = cwd / f"{step_id}.output", cwd / "summary.md"
    outputs.write_text("")
    run_env = {
        **base_env,
        **{name: substitute(str(value), values) for name, value in (found.get("env") or {}).items()},
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", found["run"]],
        cwd=cwd,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    parsed = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return done, parsed


def test_the_workflow_is_reusable_and_actionlint_clean() -> None:
    done = subprocess.run(
        [shutil.which("actionlint") or "actionlint", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    on = workflow()["on"]
    assert set(on) == {"workflow_call"}
    assert on["workflow_call"]["secrets"]["RELEASE_APP_PRIVATE_KEY"]["required"] is True
    jobs = workflow()["jobs"]
    assert list(jobs) == ["test", "build", "release"]
    assert jobs["build"]["needs"] == "test" and jobs["release"]["needs"] == "build"
    assert "GITHUB_TOKEN" not in WORKFLOW.read_text() and "secrets.GITHUB" not in WORKFLOW.read_text()


def test_the_release_job_runs_against_the_local_stack(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "iac").symlink_to(REPO_ROOT)
    shutil.copy(EXAMPLE, tmp_path / ".flux.ci")
    key = Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text()
    values = {
        "inputs.app": "ui",
        "inputs.environment": "staging",
        "inputs.sandbox": "",
        "inputs.state": "present",
        "inputs.domain": "scp-staging.biomage.test",
        "inputs.flux-template": ".flux.ci",
        "inputs.iac-repository": f"{OWNER}/{REPO}",
        "inputs.aws-region": env["AWS_REGION"],
        "inputs.release-app-id": env["GITHUB_APP_ID"],
        "inputs.release-app-installation-id": env["GITHUB_APP_INSTALLATION_ID"],
        "secrets.RELEASE_APP_PRIVATE_KEY": key,
        "needs.build.outputs.tag": "master-1234567",
        "needs.build.outputs.registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    }
    runner = {
        **{k: v for k, v in env.items() if not k.startswith("GITHUB_APP_")},
        "GITHUB_SHA": "1234567" + "0" * 33,
        "GITHUB_REF_NAME": "master",
        "GITHUB_REPOSITORY": f"{OWNER}/ui",
    }

    token_step, token_out = run_step("release", "app-token", values, runner, tmp_path)
    assert token_step.returncode == 0, token_step.stderr
    assert token_out["token"].startswith("ghs_")
    assert f"::add-mask::{token_out['token']}" in token_step.stdout  # masked before any other use
    status, _body = call(env, "GET", f"/repos/{OWNER}/{REPO}", token=token_out["token"])
    assert status == 200  # the token reads the IaC repository (what the checkout step needs)

    released, out = run_step("release", "release", values, runner, tmp_path)
    assert released.returncode == 0, released.stderr
    result = json.loads((tmp_path / "release.json").read_text())
    assert result["action"] == "create" and out["path"] == "releases/staging/ui.yaml"
    status, body = call(env, "GET", f"/repos/{OWNER}/{REPO}/contents/releases/staging/ui.yaml")
    assert status == 200
    text = base64.b64decode(body["content"]).decode()
    assert "tag: master-1234567" in text and "role/biomage-ui-staging-eu-west-1" in text
    assert "Release create releases/staging/ui.yaml" in (tmp_path / "summary.md").read_text()
    for output in (token_step.stderr, released.stdout, released.stderr):
        assert key.splitlines()[1] not in output and token_out["token"] not in output

    sandbox = {**values, "inputs.sandbox": "kit", "needs.build.outputs.tag": "kit-1234567"}
    added, _out = run_step("release", "release", sandbox, runner, tmp_path)
    assert added.returncode == 0, added.stderr
    assert call(env, "GET", f"/repos/{OWNER}/{REPO}/contents/releases/staging/ui-kit.yaml")[0] == 200
    removal = {**sandbox, "inputs.state": "absent", "needs.build.outputs.tag": "", "needs.build.outputs.registry": ""}
    removed, _out = run_step("release", "release", removal, runner, tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert json.loads((tmp_path / "release.json").read_text())["action"] == "delete"
    assert call(env, "GET", f"/repos/{OWNER}/{REPO}/contents/releases/staging/ui-kit.yaml")[0] == 404


def test_the_documented_caller_is_complete_and_actionlint_clean(tmp_path: Path) -> None:
    text = (REPO_ROOT / "docs/releases.md").read_text(encoding="utf-8")
    caller = re.search(r"```yaml\n(---\nname: release\n.*?)```", text, re.S)
    assert caller, "docs/releases.md has no example caller workflow"
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "release.yml").write_text(caller[1], encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = subprocess.run(
        [shutil.which("actionlint") or "actionlint", ".github/workflows/release.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job = yaml.safe_load(caller[1])["jobs"]["release"]
    call_spec = workflow()["on"]["workflow_call"]
    required = {name for name, spec in call_spec["inputs"].items() if spec.get("required")}
    assert required <= set(job["with"]) <= set(call_spec["inputs"])
    assert set(job["secrets"]) == set(call_spec["secrets"])
    assert job["uses"].endswith("/.github/workflows/service-release.yml@main")
