"""biomage.iac.github_deploy_key against the local GitHub stand-in: idempotent, honest check mode
and diff, rotation that never leaves the consumer without a key, clear errors, no token in output."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys
from devstack import free_port

from tests.lib.ansible_run import run_playbook
from tests.unit.plugins.module_utils.github.test_deploy_keys import new_key

pytestmark = pytest.mark.slow
PLAYBOOK = "tests/integration/playbooks/deploy_key.yml"


def keys(env: dict[str, str], repo: str) -> list[dict]:
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(
        f"{env['GITHUB_API_URL']}/repos/biomage-org/{repo}/keys", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def run(env: dict[str, str], check: bool = False, **extra: str):
    return run_playbook(PLAYBOOK, "localhost,", env=env, check=check, diff=True, extra_vars=extra)


def test_add_is_idempotent_and_check_mode_after_apply_is_clean(stack_ansible_env: dict[str, str]) -> None:
    key = new_key("flux")
    planned = run(stack_ansible_env, check=True, repo="ui", title="flux-biomage-development", public_key=key)
    assert planned.assert_ok().total("changed") == 1
    assert keys(stack_ansible_env, "ui") == [], "check mode made no call that changes anything"

    first = run(stack_ansible_env, repo="ui", title="flux-biomage-development", public_key=key).assert_ok()
    assert first.total("changed") == 1
    assert [(k["title"], k["read_only"]) for k in keys(stack_ansible_env, "ui")] == [("flux-biomage-development", True)]
    assert (
        run(stack_ansible_env, repo="ui", title="flux-biomage-development", public_key=key).assert_ok().total("changed")
        == 0
    )
    check = run(stack_ansible_env, check=True, repo="ui", title="flux-biomage-development", public_key=key)
    assert check.assert_ok().total("changed") == 0


def test_rotation_keeps_access_and_other_environments_keys(stack_ansible_env: dict[str, str]) -> None:
    old, new, production = new_key(), new_key(), new_key()
    run(stack_ansible_env, repo="api", title="flux-biomage-production", public_key=production).assert_ok()
    run(stack_ansible_env, repo="api", title="flux-biomage-staging", public_key=old).assert_ok()

    added = run(stack_ansible_env, repo="api", title="flux-biomage-staging", public_key=new).assert_ok()
    titles = sorted(k["title"] for k in keys(stack_ansible_env, "api"))
    assert titles == ["flux-biomage-production", "flux-biomage-staging", "flux-biomage-staging"], (
        "old and new both work"
    )
    assert "fingerprint" in added.stdout

    plan = run(
        stack_ansible_env, check=True, repo="api", title="flux-biomage-staging", public_key=new, exclusive="true"
    )
    assert plan.assert_ok().total("changed") == 1
    assert len(keys(stack_ansible_env, "api")) == 3
    removed = [line for line in plan.stdout.splitlines() if line.startswith("-") and "fingerprint" in line]
    assert [line.split()[-1] for line in removed] == [deploy_keys.fingerprint(old)], plan.stdout[-3000:]

    run(stack_ansible_env, repo="api", title="flux-biomage-staging", public_key=new, exclusive="true").assert_ok()
    remaining = {k["title"]: k["key"] for k in keys(stack_ansible_env, "api")}
    assert remaining == {
        "flux-biomage-production": " ".join(production.split()[:2]),
        "flux-biomage-staging": " ".join(new.split()[:2]),
    }


def test_absent_removes_the_titles_keys(stack_ansible_env: dict[str, str]) -> None:
    run(stack_ansible_env, repo="worker", title="ci", public_key=new_key()).assert_ok()
    result = run(stack_ansible_env, repo="worker", title="ci", key_state="absent").assert_ok()
    assert result.total("changed") == 1 and keys(stack_ansible_env, "worker") == []


def test_bad_token_is_explained_and_never_printed(stack_ansible_env: dict[str, str]) -> None:
    token = "ghp_WrongTokenThatMustNotBePrinted0001"
    result = run_playbook(
        PLAYBOOK, "localhost,", env=stack_ansible_env, args=["-vvv"],
        extra_vars={"title": "t", "public_key": new_key(), "token": token},
    )  # fmt: skip
    assert result.returncode != 0
    assert "answered 401: Bad credentials" in result.output and "Fix: the token" in result.output
    assert token not in result.output


def test_unknown_repository_and_unreachable_api(stack_ansible_env: dict[str, str]) -> None:
    missing = run(stack_ansible_env, repo="nope", title="t", public_key=new_key())
    assert missing.returncode != 0 and "answered 404" in missing.output and "check the owner" in missing.output
    dead = run(stack_ansible_env, title="t", public_key=new_key(), api_url=f"http://127.0.0.1:{free_port()}")
    assert dead.returncode != 0 and "cannot reach the GitHub API" in dead.output


def test_malformed_key_fails_before_any_change(stack_ansible_env: dict[str, str]) -> None:
    result = run(stack_ansible_env, repo="pipeline", title="t", public_key="ssh-ed25519")
    assert result.returncode != 0 and "not an OpenSSH public key" in result.output
    assert keys(stack_ansible_env, "pipeline") == []
