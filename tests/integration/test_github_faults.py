"""Ambiguous GitHub answers through the real modules (issue 15): the stand-in processes a write and then
answers 500 or 502 (``"after": true``: GitHub did the work, the answer was lost), or refuses it before
any handler runs. The modules read the state back before retrying or reporting: a processed POST is
reported as done (with a warning), never retried into GitHub's 422 "key is already in use" or a second
key; a refused one as not applied; a DELETE whose key is already gone is a success; re-runs converge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import deploy_keys

from tests.lib.ansible_run import PlaybookResult, run_playbook
from tests.lib.github import OWNER, call
from tests.unit.plugins.module_utils.github.test_deploy_keys import new_key

pytestmark = pytest.mark.slow
DEPLOY_KEY = "tests/integration/playbooks/deploy_key.yml"
SETTING = "tests/integration/playbooks/actions_setting.yml"
REPO = "pipeline"  # no .ci.yaml and no Flux: nothing else in the suite touches its keys or variables


@pytest.fixture
def faults(stack_ansible_env: dict[str, str]) -> Iterator[Any]:
    """``inject(method, path, status, after=True, count=1)``; every fault is removed afterwards."""

    def inject(method: str, path: str, status: int, after: bool = True, count: int = 1) -> dict:
        body = {"method": method, "path": path, "status": status, "after": after, "count": count}
        answer, fault = call(stack_ansible_env, "POST", "/_standin/faults", body)
        assert answer == 201, fault
        return fault

    yield inject
    assert call(stack_ansible_env, "DELETE", "/_standin/faults")[0] in (200, 204)


def hits(env: dict[str, str]) -> list[dict]:
    return call(env, "GET", "/_standin/faults")[1]


def keys(env: dict[str, str], title: str) -> list[dict]:
    status, found = call(env, "GET", f"/repos/{OWNER}/{REPO}/keys")
    assert status == 200, found
    return [k for k in found if k["title"] == title]


def deploy_key(env: dict[str, str], title: str, key: str | None = None, **extra: str) -> PlaybookResult:
    extra_vars = {"repo": REPO, "title": title, **({"public_key": key} if key else {}), **extra}
    return run_playbook(DEPLOY_KEY, "localhost,", env=env, extra_vars=extra_vars)


def variable(env: dict[str, str], name: str) -> str | None:
    status, body = call(env, "GET", f"/repos/{OWNER}/{REPO}/actions/variables/{name}")
    return body["value"] if status == 200 else None


def set_variable(env: dict[str, str], name: str, **extra: str) -> PlaybookResult:
    extra_vars = {"kind": "variable", "repo": REPO, "setting_name": name, **extra}
    return run_playbook(SETTING, "localhost,", env=env, extra_vars=extra_vars)


KEYS_PATH = f"/repos/{OWNER}/{REPO}/keys"


@pytest.mark.parametrize("status", [500, 502])
def test_a_lost_answer_to_a_processed_deploy_key_post_is_reported_as_done_without_a_duplicate(
    stack_ansible_env: dict[str, str], faults: Any, status: int
) -> None:
    env, title, key = stack_ansible_env, f"faults-post-{status}", new_key()
    faults("POST", KEYS_PATH, status)
    result = deploy_key(env, title, key).assert_ok()
    assert result.total("changed") == 1
    output = " ".join(result.output.split())
    assert f"GitHub answered {status} to POST" in output
    assert f"adding the deploy key '{title}' to {OWNER}/{REPO} took effect: counted as done" in output
    assert "already in use" not in output and "Nothing was changed" not in output
    (registered,) = keys(env, title)
    assert deploy_keys.normalize(registered["key"]) == deploy_keys.normalize(key)
    assert deploy_keys.fingerprint(key) in result.stdout
    assert hits(env) == [], "the fault was used up by the single POST: no retry was sent"

    again = deploy_key(env, title, key).assert_ok()
    assert again.total("changed") == 0
    assert len(keys(env, title)) == 1
    deploy_key(env, title, key_state="absent").assert_ok()


def test_a_refused_deploy_key_post_is_reported_as_not_applied_and_a_rerun_adds_it(
    stack_ansible_env: dict[str, str], faults: Any
) -> None:
    env, title, key = stack_ansible_env, "faults-refused", new_key()
    faults("POST", KEYS_PATH, 500, after=False)
    failed = deploy_key(env, title, key)
    assert failed.returncode != 0
    output = " ".join(failed.output.split())
    assert f"GitHub API POST {env['GITHUB_API_URL']}{KEYS_PATH} answered 500" in output
    assert f"Read back: adding the deploy key '{title}' to {OWNER}/{REPO} did not take effect" in output
    assert f"Before this failure, this task changed on {OWNER}/{REPO}: nothing" in output
    assert "a re-run reads the repository's keys back and converges (it adds the wanted key" in output
    assert keys(env, title) == []

    assert deploy_key(env, title, key).assert_ok().total("changed") == 1
    assert len(keys(env, title)) == 1
    assert deploy_key(env, title, key).assert_ok().total("changed") == 0
    deploy_key(env, title, key_state="absent").assert_ok()


def test_a_rotation_that_fails_half_way_names_the_key_it_added_and_a_rerun_finishes(
    stack_ansible_env: dict[str, str], faults: Any
) -> None:
    env, title, old, new = stack_ansible_env, "faults-rotation", new_key(), new_key()
    deploy_key(env, title, old).assert_ok()
    (old_key,) = keys(env, title)
    deploy_key(env, title, new).assert_ok()
    faults("DELETE", rf"{KEYS_PATH}/{old_key['id']}", 500, after=False)
    # a fresh key: added first, then the two older keys of the title are deleted (the first delete fails)
    newest = new_key()
    failed = deploy_key(env, title, newest, exclusive="true")
    assert failed.returncode != 0
    output = " ".join(failed.output.split())
    assert f"Before this failure, this task changed on {OWNER}/{REPO}: added the key '{title}' " in output
    assert deploy_keys.fingerprint(newest) in output
    assert "it deletes the keys still to be deleted" in output
    assert any(deploy_keys.normalize(k["key"]) == deploy_keys.normalize(newest) for k in keys(env, title))

    done = deploy_key(env, title, newest, exclusive="true").assert_ok()
    assert done.total("changed") == 1
    assert [deploy_keys.normalize(k["key"]) for k in keys(env, title)] == [deploy_keys.normalize(newest)]
    assert deploy_key(env, title, newest, exclusive="true").assert_ok().total("changed") == 0
    deploy_key(env, title, key_state="absent").assert_ok()


@pytest.mark.parametrize("status", [500, 502])
def test_a_lost_answer_to_a_processed_delete_is_a_success(
    stack_ansible_env: dict[str, str], faults: Any, status: int
) -> None:
    env, title = stack_ansible_env, f"faults-delete-{status}"
    deploy_key(env, title, new_key()).assert_ok()
    (registered,) = keys(env, title)
    faults("DELETE", rf"{KEYS_PATH}/{registered['id']}", status)
    removed = deploy_key(env, title, key_state="absent").assert_ok()
    assert removed.total("changed") == 1
    assert f"deleting the deploy key {registered['id']} of {OWNER}/{REPO} took effect" in " ".join(
        removed.output.split()
    )
    assert keys(env, title) == []
    assert deploy_key(env, title, key_state="absent").assert_ok().total("changed") == 0


@pytest.mark.parametrize(("method", "status"), [("POST", 502), ("PATCH", 500), ("DELETE", 502)])
def test_actions_variable_writes_whose_answer_is_lost_converge(
    stack_ansible_env: dict[str, str], faults: Any, method: str, status: int
) -> None:
    env, name = stack_ansible_env, f"FAULTS_{method}"
    if method != "POST":
        set_variable(env, name, setting_value="before").assert_ok()
    wanted = {"POST": "created", "PATCH": "updated", "DELETE": None}[method]
    path = f"/repos/{OWNER}/{REPO}/actions/variables" + ("" if method == "POST" else f"/{name}")
    faults(method, path, status)
    extra = {"setting_state": "absent"} if wanted is None else {"setting_value": wanted}
    result = set_variable(env, name, **extra).assert_ok()
    assert result.total("changed") == 1
    assert f"GitHub answered {status} to {method}" in " ".join(result.output.split())
    assert variable(env, name) == wanted
    assert hits(env) == []
    assert set_variable(env, name, **extra).assert_ok().total("changed") == 0
    set_variable(env, name, setting_state="absent").assert_ok()


def test_a_refused_variable_write_says_nothing_was_changed(stack_ansible_env: dict[str, str], faults: Any) -> None:
    env, name = stack_ansible_env, "FAULTS_REFUSED"
    faults("POST", f"/repos/{OWNER}/{REPO}/actions/variables", 502, after=False, count=0)
    failed = set_variable(env, name, setting_value="x")
    assert failed.returncode != 0
    output = " ".join(failed.output.split())
    assert f"{OWNER}/{REPO} variable {name}: GitHub API POST" in output and "answered 502" in output
    assert f"Read back: creating the variable {name} of {OWNER}/{REPO} did not take effect" in output
    assert hits(env)[0]["hits"] == 4, "a write read back as not applied is retried (3 retries)"
    assert variable(env, name) is None
