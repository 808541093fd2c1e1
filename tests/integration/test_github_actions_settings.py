"""biomage.iac.github_actions_variable and github_actions_secret against the local GitHub stand-in: exact
plans for variables, honest ones for secrets (whose values cannot be read back), real sealed boxes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.lib.ansible_run import PlaybookResult, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "tests/integration/playbooks/actions_setting.yml"
REPO = "iac"  # no .ci.yaml: playbooks/ci.yml never touches its variables or secrets


def call(env: dict[str, str], path: str) -> tuple[int, Any]:
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(env["GITHUB_API_URL"] + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def run(env: dict[str, str], kind: str, check: bool = False, **extra: object) -> PlaybookResult:
    return run_playbook(PLAYBOOK, "localhost,", env=env, check=check, diff=True, extra_vars={"kind": kind, **extra})


def test_variable_plans_are_exact(stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    args = {"repo": REPO, "setting_name": "deploy_target", "setting_value": "eu-west-1"}
    plan = run(env, "variable", check=True, **args).assert_ok()
    assert plan.total("changed") == 1 and "action=create" in plan.stdout
    assert call(env, f"/repos/biomage-org/{REPO}/actions/variables/DEPLOY_TARGET")[0] == 404

    assert run(env, "variable", **args).assert_ok().total("changed") == 1
    assert call(env, f"/repos/biomage-org/{REPO}/actions/variables/DEPLOY_TARGET")[1]["value"] == "eu-west-1"
    assert run(env, "variable", **args).assert_ok().total("changed") == 0

    update = {**args, "setting_value": "us-east-1"}
    planned = run(env, "variable", check=True, **update).assert_ok()
    assert planned.total("changed") == 1 and "-eu-west-1" in planned.stdout and "+us-east-1" in planned.stdout
    assert call(env, f"/repos/biomage-org/{REPO}/actions/variables/DEPLOY_TARGET")[1]["value"] == "eu-west-1"
    assert run(env, "variable", **update).assert_ok().total("changed") == 1
    assert run(env, "variable", check=True, **update).assert_ok().total("changed") == 0

    absent = {**args, "setting_state": "absent"}
    assert run(env, "variable", **absent).assert_ok().total("changed") == 1
    assert run(env, "variable", **absent).assert_ok().total("changed") == 0
    assert call(env, f"/repos/biomage-org/{REPO}/actions/variables/DEPLOY_TARGET")[0] == 404


def test_secret_semantics_create_keep_force_delete(stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    args = {"repo": REPO, "setting_name": "WEBHOOK", "setting_value": "first-value"}

    def stored() -> str | None:
        status, body = call(env, f"/_standin/secrets/biomage-org/{REPO}/WEBHOOK")
        return body["value"] if status == 200 else None

    plan = run(env, "secret", check=True, **args).assert_ok()
    assert plan.total("changed") == 1 and "action=create" in plan.stdout and stored() is None
    created = run(env, "secret", **args).assert_ok()
    assert created.total("changed") == 1 and stored() == "first-value"
    assert "first-value" not in created.output

    other = {**args, "setting_value": "second-value"}
    kept = run(env, "secret", **other).assert_ok()
    assert kept.total("changed") == 0 and "action=unchanged" in kept.stdout
    assert stored() == "first-value", "an existing secret is not rewritten without force"
    forced_plan = run(env, "secret", check=True, setting_force=True, **other).assert_ok()
    assert forced_plan.total("changed") == 1 and stored() == "first-value"
    forced = run(env, "secret", setting_force=True, **other).assert_ok()
    assert forced.total("changed") == 1 and stored() == "second-value"
    assert "second-value" not in forced.output

    absent = {"repo": REPO, "setting_name": "WEBHOOK", "setting_state": "absent"}
    assert run(env, "secret", check=True, **absent).assert_ok().total("changed") == 1 and stored()
    assert run(env, "secret", **absent).assert_ok().total("changed") == 1 and stored() is None
    assert run(env, "secret", **absent).assert_ok().total("changed") == 0
