"""GitHub App authentication and rate limits of the collection's GitHub client, against the local
stand-in: JWTs verified as GitHub does, installation tokens renewed before they expire, 429 and
secondary rate limits waited out (and never reported as a missing permission), no key or token in
any message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import client as gh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from devstack import Stack

from tests.lib.github import OWNER, call

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("github-app"), ["github"])
    stack.stop_with_owner()
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture(autouse=True)
def no_faults(env: dict[str, str]) -> Iterator[None]:
    yield
    call(env, "DELETE", "/_standin/faults")
    call(env, "POST", "/_standin/app", {"token_ttl": 3600})


def app_client(env: dict[str, str], **kwargs: object) -> tuple[gh.GitHubClient, gh.AppAuth]:
    auth = gh.AppAuth(env["GITHUB_APP_ID"], Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text())
    return gh.GitHubClient(env["GITHUB_API_URL"], app=auth, **kwargs).for_repo(OWNER, "iac"), auth


def test_the_stack_registers_the_app_with_a_private_key_file(env: dict[str, str]) -> None:
    key_file = Path(env["GITHUB_APP_PRIVATE_KEY_FILE"])
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    env_file = Path(env["BIOMAGE_DEVSTACK_DIR"]) / "env"
    if env_file.is_file():
        assert "PRIVATE KEY-----" not in env_file.read_text()


def test_the_app_reads_through_its_installation_found_from_the_repository(env: dict[str, str]) -> None:
    client, auth = app_client(env)
    assert auth.installation_id is None
    assert client.get_file(OWNER, "iac", "README.md")
    assert auth.installation_id == int(env["GITHUB_APP_INSTALLATION_ID"]) and auth.minted == 1
    client.get_file(OWNER, "iac", "README.md")
    assert auth.minted == 1  # the token is reused while it is fresh


def test_the_installation_token_is_renewed_before_it_expires(env: dict[str, str]) -> None:
    call(env, "POST", "/_standin/app", {"token_ttl": 120})  # inside the renewal margin (300 s)
    client, auth = app_client(env)
    client.get_file(OWNER, "iac", "README.md")
    client.get_file(OWNER, "iac", "README.md")
    assert auth.minted == 2


def test_a_refused_token_is_renewed_once(env: dict[str, str]) -> None:
    call(env, "POST", "/_standin/app", {"token_ttl": 1})
    client, auth = app_client(env)
    auth.refresh_margin = 0
    client.get_file(OWNER, "iac", "README.md")
    time.sleep(1.5)  # the stand-in now refuses the token: 401, renewed, retried
    assert client.get_file(OWNER, "iac", "README.md")
    assert auth.minted == 2


def test_jwts_are_verified(env: dict[str, str]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    forged = gh.AppAuth(env["GITHUB_APP_ID"], pem, int(env["GITHUB_APP_INSTALLATION_ID"]))
    client = gh.GitHubClient(env["GITHUB_API_URL"], app=forged)
    with pytest.raises(gh.GitHubError) as refused:
        client.get_file(OWNER, "iac", "README.md")
    assert refused.value.status == 401
    path = f"/app/installations/{env['GITHUB_APP_INSTALLATION_ID']}/access_tokens"
    real = gh.AppAuth(env["GITHUB_APP_ID"], Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text())
    stale = gh.AppAuth(env["GITHUB_APP_ID"], Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text(), clock=lambda: 1e9)
    assert call(env, "POST", path, token=real.jwt())[0] == 201
    assert call(env, "POST", path, token=stale.jwt())[0] == 401  # expired long ago
    assert call(env, "POST", path)[0] == 401  # the stack token is not a JWT
    assert call(env, "GET", f"/repos/{OWNER}/iac", token=real.jwt())[0] == 403  # a JWT is not a token


def test_rate_limits_are_waited_out(env: dict[str, str]) -> None:
    client, _auth = app_client(env)
    client.get_file(OWNER, "iac", "README.md")
    path = f"/repos/{OWNER}/iac/contents/README.md"
    call(env, "POST", "/_standin/faults", {"path": path, "status": 429, "count": 1, "headers": {"Retry-After": "1"}})
    call(env, "POST", "/_standin/faults", {"path": path, "status": 403, "count": 1, "headers": {"Retry-After": "1"},
                                           "message": "You have exceeded a secondary rate limit."})  # fmt: skip
    reset = str(int(time.time()) + 1)
    quota = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    fault = {"path": path, "status": 403, "count": 1, "message": "API rate limit exceeded", "headers": quota}
    call(env, "POST", "/_standin/faults", fault)
    started = time.monotonic()
    assert client.get_file(OWNER, "iac", "README.md")
    assert time.monotonic() - started >= 2
    assert len(client.rate_limit_waits) == 3


def test_a_rate_limit_beyond_the_budget_is_not_a_permission_error(env: dict[str, str]) -> None:
    client, _auth = app_client(env, rate_limit_budget=3)
    client.get_file(OWNER, "iac", "README.md")
    path = f"/repos/{OWNER}/iac/contents/README.md"
    call(env, "POST", "/_standin/faults", {"path": path, "status": 403, "count": 0, "headers": {"Retry-After": "2"},
                                           "message": "You have exceeded a secondary rate limit."})  # fmt: skip
    with pytest.raises(gh.GitHubError) as limited:
        client.get_file(OWNER, "iac", "README.md")
    text = str(limited.value)
    assert "rate limited" in text and "not a missing permission" in text
    assert gh.STATUS_FIXES[403] not in text
    assert limited.value.details["rate_limited"] is True


def test_a_plain_403_is_a_permission(env: dict[str, str]) -> None:
    client, _auth = app_client(env, sleep=lambda seconds: pytest.fail(f"waited {seconds}s on a permission error"))
    client.get_file(OWNER, "iac", "README.md")
    call(env, "POST", "/_standin/faults", {"path": f"/repos/{OWNER}/iac/keys", "status": 403, "count": 1,
                                           "message": "Resource not accessible by integration"})  # fmt: skip
    with pytest.raises(gh.GitHubError) as denied:
        client.list_deploy_keys(OWNER, "iac")
    assert denied.value.status == 403 and "lacks the permission" in str(denied.value)


def test_no_key_or_token_in_messages(env: dict[str, str]) -> None:
    client, auth = app_client(env)
    client.get_file(OWNER, "iac", "README.md")
    call(env, "POST", "/_standin/faults", {"path": ".*", "status": 401, "count": 0})
    with pytest.raises(gh.GitHubError) as refused:
        client.get_file(OWNER, "iac", "README.md")
    text = repr(refused.value) + str(refused.value) + repr(refused.value.details)
    key_body = Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text().splitlines()[1]
    assert key_body not in text and "ghs_" not in text and auth.jwt()[:30] not in text
    with pytest.raises(gh.GitHubError) as unreadable:
        gh.AppAuth("1", "not a key")
    assert "not a key" not in str(unreadable.value)
