"""The releases guard required through a repository ruleset (role biomage.iac.releases_guard, module
biomage.iac.github_ruleset) on the GitHub stand-in, whose rulesets API is checked against GitHub's
OpenAPI description: converged, read back, idempotent, and put back after being loosened by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import Stack

from tests.lib.ansible_run import ansible_env, run_playbook
from tests.lib.github import OWNER, call

pytestmark = pytest.mark.slow
PLAYBOOK = "tests/integration/playbooks/releases_guard.yml"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("releases-guard"), ["github"])
    try:
        yield ansible_env(stack.up())
    finally:
        stack.down()


def ruleset(env: dict[str, str]) -> dict:
    status, listed = call(env, "GET", f"/repos/{OWNER}/iac/rulesets")
    assert status == 200, listed
    named = [r for r in listed if r["name"] == "releases guard"]
    assert len(named) == 1, listed
    status, body = call(env, "GET", f"/repos/{OWNER}/iac/rulesets/{named[0]['id']}")
    assert status == 200, body
    return body


def test_the_guard_is_required_idempotent_and_put_back(env: dict[str, str]) -> None:
    first = run_playbook(PLAYBOOK, "localhost,", env=env, diff=True).assert_ok()
    assert first.total("changed") == 1
    found = ruleset(env)
    assert found["enforcement"] == "active" and found["target"] == "branch"
    assert found["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]
    checks = [rule for rule in found["rules"] if rule["type"] == "required_status_checks"]
    assert [c["context"] for c in checks[0]["parameters"]["required_status_checks"]] == ["releases-guard"]
    assert found["bypass_actors"] == [
        {"actor_id": int(env["GITHUB_APP_ID"]), "actor_type": "Integration", "bypass_mode": "always"}
    ]

    again = run_playbook(PLAYBOOK, "localhost,", env=env, diff=True).assert_ok()
    assert again.total("changed") == 0

    # loosened by hand: disabled, and a repository role added to the bypass list
    loosened = {
        "enforcement": "disabled",
        "bypass_actors": [
            *found["bypass_actors"],
            {"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"},
        ],
    }
    status, body = call(env, "PUT", f"/repos/{OWNER}/iac/rulesets/{found['id']}", loosened)
    assert status == 200, body
    check = run_playbook(PLAYBOOK, "localhost,", env=env, check=True, diff=True).assert_ok()
    assert check.total("changed") == 1
    said = " ".join(check.stdout.split())
    assert "update (loosened: enforcement, bypass_actors), check mode: nothing was changed" in said, check.stdout
    assert "-    enforcement: disabled\n+    enforcement: active" in check.stdout
    assert "-        actor_type: RepositoryRole" in check.stdout
    assert ruleset(env)["enforcement"] == "disabled"  # check mode changed nothing
    put_back = run_playbook(PLAYBOOK, "localhost,", env=env).assert_ok()
    assert put_back.total("changed") == 1
    restored = ruleset(env)
    assert restored["enforcement"] == "active" and len(restored["bypass_actors"]) == 1
    assert restored["id"] == found["id"]
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    for result in (first, again, check, put_back):
        assert token not in result.output


def test_a_request_off_githubs_description_is_refused(env: dict[str, str]) -> None:
    bad = {"name": "x", "enforcement": "sometimes", "rules": []}
    status, body = call(env, "POST", f"/repos/{OWNER}/iac/rulesets", bad)
    assert status == 422 and "sometimes" in body["message"]
