"""The plan of site.yml on the local stack: after an apply, a check run plans nothing and writes a plan
file; an apply given that plan file refuses, before any change, once a template changed since."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.lib.ansible_run import REPO_ROOT, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/site.yml"


def test_after_an_apply_the_plan_is_empty_and_a_stale_plan_file_is_refused(
    tmp_path: Path, stack_ansible_env: dict[str, str]
) -> None:
    applied = run_playbook(PLAYBOOK, env=stack_ansible_env, timeout=1800).assert_ok()
    assert "Applied: " in applied.stdout
    # the fingerprint reads a copy of the inputs, so the test can change a template without touching the checkout
    root = tmp_path / "repo"
    for folder in ("cf", "infra", "charts", "releases/development", "inventories/development"):
        shutil.copytree(REPO_ROOT / folder, root / folder, symlinks=True)
    planned = tmp_path / "development.plan"
    env = {**stack_ansible_env, "BIOMAGE_PLAN_JSON": str(tmp_path / "plan.json")}
    extra = {"preflight_repository_root": str(root), "preflight_plan_inputs": ["cf", "infra", "charts",
             "releases/development", "inventories/development"]}  # fmt: skip
    check = run_playbook(
        PLAYBOOK, env=env, check=True, diff=True, extra_vars={**extra, "biomage_plan_out": str(planned)}
    ).assert_ok()
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete" in check.stdout
    data = json.loads(planned.read_text())
    assert data["summary"] == "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete"
    assert any(name.startswith("cf/") for name in data["fingerprint"]["inputs"])
    assert data["fingerprint"]["live"], "the environment's stacks are part of the fingerprint"

    template = sorted((root / "cf").glob("*.yaml"))[0]
    template.write_text(template.read_text() + "\n# changed after the plan\n")
    refused = run_playbook(PLAYBOOK, env=env, extra_vars={**extra, "biomage_plan_in": str(planned)})
    assert refused.returncode != 0
    said = " ".join(refused.stdout.split())
    assert f"input cf/{template.name} changed" in said and "Nothing was changed" in said
    recap = refused.recap
    assert all(counts.get("changed", 0) == 0 for counts in recap.values()), recap
