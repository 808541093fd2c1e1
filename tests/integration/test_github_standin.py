"""The local GitHub API stand-in: GitHub's own OpenAPI schemas enforced on requests and responses,
deploy keys and Actions secrets (real sealed boxes) behaving as the REST API documents."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from devstack import Stack, github_spec
from devstack.github_standin import ApiError, GitHubStandin
from nacl.public import PrivateKey, PublicKey, SealedBox

from tests.lib.github import OWNER, call

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("github"), ["github"])
    env = stack.up()
    try:
        yield env
    finally:
        stack.down()


def ssh_public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_token_is_required_and_kept_out_of_the_env(github: dict[str, str]) -> None:
    assert call(github, "GET", f"/repos/{OWNER}/iac", token=None)[0] == 401
    assert call(github, "GET", f"/repos/{OWNER}/iac", token="wrong")[0] == 401
    token = Path(github["GITHUB_TOKEN_FILE"]).read_text().strip()
    assert token not in json.dumps(github)
    assert Path(github["GITHUB_TOKEN_FILE"]).stat().st_mode & 0o077 == 0


def test_repositories_and_file_contents(github: dict[str, str]) -> None:
    status, repos = call(github, "GET", f"/orgs/{OWNER}/repos?per_page=100")
    assert status == 200
    assert [r["name"] for r in repos] == ["api", "iac", "pipeline", "ui", "worker"]
    status, repo = call(github, "GET", f"/repos/{OWNER}/iac")
    assert (status, repo["full_name"], repo["owner"]["login"]) == (200, f"{OWNER}/iac", OWNER)
    status, content = call(github, "GET", f"/repos/{OWNER}/ui/contents/.ci.yaml")
    assert status == 200 and base64.b64decode(content["content"]).decode().startswith("ci-policies:")
    assert call(github, "GET", f"/repos/{OWNER}/iac/contents/.ci.yaml")[0] == 404
    assert call(github, "GET", f"/repos/{OWNER}/nope")[0] == 404


def test_deploy_key_lifecycle(github: dict[str, str]) -> None:
    key = ssh_public_key()
    status, created = call(
        github, "POST", f"/repos/{OWNER}/iac/keys", {"title": "flux-staging", "key": key, "read_only": False}
    )
    assert status == 201 and created["title"] == "flux-staging" and created["read_only"] is False
    status, duplicate = call(github, "POST", f"/repos/{OWNER}/iac/keys", {"title": "again", "key": key})
    assert status == 422 and duplicate["errors"][0]["message"] == "key is already in use"
    status, listed = call(github, "GET", f"/repos/{OWNER}/iac/keys")
    assert status == 200 and [k["id"] for k in listed] == [created["id"]]
    assert call(github, "DELETE", f"/repos/{OWNER}/iac/keys/{created['id']}")[0] == 204
    assert call(github, "GET", f"/repos/{OWNER}/iac/keys/{created['id']}")[0] == 404
    assert call(github, "GET", f"/repos/{OWNER}/iac/keys")[1] == []


def test_requests_are_checked_against_githubs_schemas(github: dict[str, str]) -> None:
    status, error = call(github, "POST", f"/repos/{OWNER}/iac/keys", {"key": ssh_public_key(), "read_only": "yes"})
    assert status == 422 and "'yes' is not of type 'boolean'" in error["message"]
    status, error = call(github, "POST", f"/repos/{OWNER}/iac/keys", {"title": "no key"})
    assert status == 422 and "'key' is a required property" in error["message"]
    status, error = call(github, "POST", f"/repos/{OWNER}/iac/keys", {"key": "not-a-key"})
    assert status == 422 and "OpenSSH public key format" in error["errors"][0]["message"]
    status, error = call(github, "GET", f"/repos/{OWNER}/iac/keys/abc")
    assert status == 404
    status, error = call(github, "GET", "/user/repos")
    assert status == 404 and "not served by the local GitHub stand-in" in error["message"]


def test_actions_secret_is_a_real_sealed_box(github: dict[str, str]) -> None:
    status, public = call(github, "GET", f"/repos/{OWNER}/api/actions/secrets/public-key")
    assert status == 200
    sealed = SealedBox(PublicKey(base64.b64decode(public["key"]))).encrypt(b"s3cret-value")
    body = {"encrypted_value": base64.b64encode(sealed).decode(), "key_id": public["key_id"]}
    assert call(github, "PUT", f"/repos/{OWNER}/api/actions/secrets/AWS_ROLE_ARN", body)[0] == 201
    assert call(github, "PUT", f"/repos/{OWNER}/api/actions/secrets/AWS_ROLE_ARN", body)[0] == 204
    status, listed = call(github, "GET", f"/repos/{OWNER}/api/actions/secrets")
    assert status == 200 and [s["name"] for s in listed["secrets"]] == ["AWS_ROLE_ARN"]
    assert "s3cret-value" not in json.dumps(listed)
    assert call(github, "GET", f"/_standin/secrets/{OWNER}/api/AWS_ROLE_ARN")[1]["value"] == "s3cret-value"

    other = SealedBox(PrivateKey.generate().public_key).encrypt(b"x")
    bad = {"encrypted_value": base64.b64encode(other).decode(), "key_id": public["key_id"]}
    status, error = call(github, "PUT", f"/repos/{OWNER}/api/actions/secrets/OTHER", bad)
    assert status == 422 and "sealed box" in error["message"]
    status, error = call(github, "PUT", f"/repos/{OWNER}/api/actions/secrets/OTHER", {**body, "key_id": "stale"})
    assert status == 422 and "key_id" in error["message"]
    assert call(github, "PUT", f"/repos/{OWNER}/api/actions/secrets/GITHUB_X", body)[0] == 422
    assert call(github, "DELETE", f"/repos/{OWNER}/api/actions/secrets/AWS_ROLE_ARN")[0] == 204
    assert call(github, "GET", f"/repos/{OWNER}/api/actions/secrets/AWS_ROLE_ARN")[0] == 404


def test_off_spec_responses_are_refused() -> None:
    spec = github_spec.load()
    operation = spec["paths"]["/repos/{owner}/{repo}/keys/{key_id}"]["get"]
    with pytest.raises(ApiError, match="response off-spec"):
        GitHubStandin._check_response(operation, 200, {"id": "not-an-int"})
    with pytest.raises(ApiError, match="answered 418"):
        GitHubStandin._check_response(operation, 418, None)


def test_the_description_is_githubs_own() -> None:
    spec = github_spec.load()
    assert spec["info"]["x-reduced-from"] == f"@octokit/openapi@{github_spec.OCTOKIT_OPENAPI_VERSION}"
    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert operation_ids == set(github_spec.OPERATIONS.values())
    create_key = spec["paths"]["/repos/{owner}/{repo}/keys"]["post"]
    assert create_key["requestBody"]["content"]["application/json"]["schema"]["required"] == ["key"]


def test_actions_variables_round_trip_and_bad_requests_are_refused(github: dict[str, str]) -> None:
    base = f"/repos/{OWNER}/worker/actions/variables"
    assert call(github, "GET", f"{base}/AWS_ROLE_ARN")[0] == 404
    assert call(github, "POST", base, {"name": "aws_role_arn", "value": "arn:aws:iam::1:role/ci"}) == (201, {})
    status, variable = call(github, "GET", f"{base}/AWS_ROLE_ARN")
    assert status == 200 and (variable["name"], variable["value"]) == ("AWS_ROLE_ARN", "arn:aws:iam::1:role/ci")
    assert call(github, "POST", base, {"name": "AWS_ROLE_ARN", "value": "again"})[0] == 409
    assert call(github, "PATCH", f"{base}/aws_role_arn", {"value": "arn:aws:iam::1:role/new"}) == (204, None)
    assert call(github, "GET", f"{base}/AWS_ROLE_ARN")[1]["value"] == "arn:aws:iam::1:role/new"
    status, listed = call(github, "GET", f"{base}?per_page=30")
    assert status == 200 and listed["total_count"] == 1
    assert [(v["name"], v["value"]) for v in listed["variables"]] == [("AWS_ROLE_ARN", "arn:aws:iam::1:role/new")]

    # GitHub's schemas: name and value are required strings; names follow the secret-name rules
    status, error = call(github, "POST", base, {"name": "NO_VALUE"})
    assert status == 422 and "'value' is a required property" in error["message"]
    status, error = call(github, "POST", base, {"name": "X", "value": 5})
    assert status == 422 and "5 is not of type 'string'" in error["message"]
    status, error = call(github, "PATCH", f"{base}/AWS_ROLE_ARN", {"value": ["x"]})
    assert status == 422 and "is not of type 'string'" in error["message"]
    status, error = call(github, "POST", base, {"name": "GITHUB_X", "value": "x"})
    assert status == 422 and error["errors"][0]["field"] == "name"
    assert call(github, "GET", f"{base}?per_page=abc")[0] == 422
    assert call(github, "PATCH", f"{base}/MISSING", {"value": "x"})[0] == 404
    assert call(github, "GET", f"/repos/{OWNER}/nope/actions/variables/X")[0] == 404

    assert call(github, "DELETE", f"{base}/AWS_ROLE_ARN") == (204, None)
    assert call(github, "DELETE", f"{base}/AWS_ROLE_ARN")[0] == 404
    assert call(github, "GET", base)[1] == {"total_count": 0, "variables": []}


def test_admin_file_endpoint_changes_a_default_branch_file(github: dict[str, str]) -> None:
    assert call(github, "PUT", f"/_standin/files/{OWNER}/pipeline/.ci.yaml", {"content": "ci-policies: []\n"})[0] == 200
    status, content = call(github, "GET", f"/repos/{OWNER}/pipeline/contents/.ci.yaml")
    assert status == 200 and base64.b64decode(content["content"]).decode() == "ci-policies: []\n"
    assert call(github, "DELETE", f"/_standin/files/{OWNER}/pipeline/.ci.yaml")[0] == 204
    assert call(github, "GET", f"/repos/{OWNER}/pipeline/contents/.ci.yaml")[0] == 404
    assert call(github, "DELETE", f"/_standin/files/{OWNER}/pipeline/.ci.yaml", token="wrong")[0] == 401


def test_the_cached_description_is_keyed_by_the_operations() -> None:
    path = github_spec.subset_path()
    assert github_spec.operations_key() in path.name
    assert github_spec.OCTOKIT_OPENAPI_VERSION in path.name


def test_iac_is_the_checkouts_head_and_commits_change_its_main(github: dict[str, str]) -> None:
    repo_root = Path(__file__).resolve().parents[2]
    galaxy = subprocess.run(
        ["git", "-C", str(repo_root), "show", "HEAD:galaxy.yml"], capture_output=True, check=True
    ).stdout
    status, content = call(github, "GET", f"/repos/{OWNER}/iac/contents/galaxy.yml")
    assert status == 200 and base64.b64decode(content["content"]) == galaxy
    assert call(github, "GET", f"/repos/{OWNER}/iac/contents/charts/nodejs/Chart.yaml")[0] == 200
    assert call(github, "GET", f"/repos/{OWNER}/iac/contents/charts")[0] == 404, "a directory is not a file"

    before = call(github, "GET", f"/_standin/commits/{OWNER}/iac")[1]["commit"]
    files = {"releases/development/a.yaml": "a: 1\n", "releases/development/b.yaml": "b: 2\n"}
    status, made = call(github, "POST", f"/_standin/commits/{OWNER}/iac", {"files": files, "message": "two"})
    assert status == 201 and made["branch"] == "main" and made["commit"] != before
    assert call(github, "GET", f"/_standin/commits/{OWNER}/iac")[1]["commit"] == made["commit"]
    status, content = call(github, "GET", f"/repos/{OWNER}/iac/contents/releases/development/b.yaml")
    assert status == 200 and base64.b64decode(content["content"]) == b"b: 2\n"
    status, put = call(github, "PUT", f"/_standin/files/{OWNER}/iac/releases/development/a.yaml", {"content": "a: 3\n"})
    assert status == 200 and put["commit"] not in (before, made["commit"])
    gone = {"files": {"releases/development/a.yaml": None, "releases/development/b.yaml": None}}
    assert call(github, "POST", f"/_standin/commits/{OWNER}/iac", gone)[0] == 201
    assert call(github, "GET", f"/repos/{OWNER}/iac/contents/releases/development/a.yaml")[0] == 404

    assert call(github, "POST", f"/_standin/commits/{OWNER}/iac", {"files": {"nope.yaml": None}})[0] == 404
    assert call(github, "POST", f"/_standin/commits/{OWNER}/iac", {"files": {"../x": "x"}})[0] == 422
    assert call(github, "POST", f"/_standin/commits/{OWNER}/iac", {"files": {"x": 1}})[0] == 422
    assert call(github, "POST", f"/_standin/commits/{OWNER}/iac", {"files": {}})[0] == 422
    assert call(github, "POST", f"/_standin/commits/{OWNER}/nope", {"files": {"x": "x"}})[0] == 404


def test_injected_faults_answer_before_any_handler_then_run_out(github: dict[str, str]) -> None:
    status, key = call(github, "POST", f"/repos/{OWNER}/worker/keys", {"title": "fault", "key": ssh_public_key()})
    assert status == 201
    fault = {"method": "delete", "path": rf"/repos/{OWNER}/worker/keys/\d+", "status": 500, "count": 1}
    status, added = call(github, "POST", "/_standin/faults", fault)
    assert status == 201 and added["remaining"] == 1
    assert call(github, "DELETE", f"/repos/{OWNER}/worker/keys/{key['id']}", token="wrong")[0] == 401
    status, error = call(github, "DELETE", f"/repos/{OWNER}/worker/keys/{key['id']}")
    assert status == 500 and "injected" in error["message"] and error["documentation_url"]
    assert call(github, "GET", f"/repos/{OWNER}/worker/keys/{key['id']}")[0] == 200, "the handler never ran"
    assert call(github, "GET", "/_standin/faults")[1] == [], "a fault with count 1 is gone after one hit"
    assert call(github, "DELETE", f"/repos/{OWNER}/worker/keys/{key['id']}")[0] == 204

    status, sticky = call(github, "POST", "/_standin/faults", {"path": f"/repos/{OWNER}/worker", "count": 0})
    assert status == 201
    assert [call(github, "GET", f"/repos/{OWNER}/worker")[0] for _attempt in range(3)] == [500, 500, 500]
    assert call(github, "GET", f"/repos/{OWNER}/worker/keys")[0] == 200, "the whole path must match"
    assert call(github, "GET", "/_standin/faults")[1][0]["hits"] == 3
    assert call(github, "DELETE", f"/_standin/faults/{sticky['id']}")[0] == 204
    assert call(github, "GET", f"/repos/{OWNER}/worker")[0] == 200

    assert call(github, "POST", "/_standin/faults", {"path": "("})[0] == 422
    assert call(github, "POST", "/_standin/faults", {"path": "/x", "status": 200})[0] == 422
    assert call(github, "POST", "/_standin/faults", {"status": 500})[0] == 422
    call(github, "POST", "/_standin/faults", {"path": "/x"})
    assert call(github, "DELETE", "/_standin/faults")[0] == 204
    assert call(github, "GET", "/_standin/faults")[1] == []


def test_a_fault_after_the_handler_keeps_the_effect_and_loses_the_answer(github: dict[str, str]) -> None:
    fault = {"method": "POST", "path": rf"/repos/{OWNER}/worker/keys", "status": 502, "after": True}
    status, added = call(github, "POST", "/_standin/faults", fault)
    assert status == 201 and added["after"] is True
    public = ssh_public_key()
    status, error = call(github, "POST", f"/repos/{OWNER}/worker/keys", {"title": "after", "key": public})
    assert status == 502 and "injected" in error["message"]
    (key,) = [k for k in call(github, "GET", f"/repos/{OWNER}/worker/keys")[1] if k["title"] == "after"]
    assert key["key"].split()[:2] == public.split()[:2], "the handler ran: the key is registered"
    again = call(github, "POST", f"/repos/{OWNER}/worker/keys", {"title": "after", "key": public})
    assert again[0] == 422 and "key is already in use" in json.dumps(again[1]), "as GitHub answers a blind retry"
    assert call(github, "DELETE", f"/repos/{OWNER}/worker/keys/{key['id']}")[0] == 204
