"""The GitHub REST client: errors worded for the operator (status, fix, never the token), 404 read as
"absent", names quoted into paths, transient 5xx retried."""

from __future__ import annotations

import base64
import io
import json
from email.message import Message
from types import SimpleNamespace
from urllib.error import HTTPError, URLError

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.github import client as github
from nacl.public import PrivateKey, SealedBox

TOKEN = "ghp_UnitTestTokenThatMustNeverBePrinted01"
API = "https://github.example/api/v3"


class Response:
    def __init__(self, status: int, body: object = None, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers = status, headers or {}
        self._raw = b"" if body is None else json.dumps(body).encode()

    def read(self) -> bytes:
        return self._raw

    def getcode(self) -> int:
        return self.status


def http_error(url: str, status: int, body: dict) -> HTTPError:
    return HTTPError(url, status, "reason", Message(), io.BytesIO(json.dumps(body).encode()))


class FakeApi:
    """Stands in for ``open_url``: answers in order (a Response or an exception), requests recorded."""

    def __init__(self) -> None:
        self.answers: list = []
        self.requests: list[dict] = []

    def __call__(self, url, method, data, headers, validate_certs, timeout):
        self.requests.append({"url": url, "method": method, "data": data, "headers": headers})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(github, "open_url", fake)
    monkeypatch.setattr(github.time, "sleep", lambda _seconds: None)
    return fake


def test_github_error_is_a_biomage_error_carrying_the_http_status() -> None:
    exc = github.GitHubError("GitHub API POST .../keys answered 422: Validation Failed.", 422)
    assert isinstance(exc, BiomageError)
    assert exc.status == 422 and exc.details == {"http_status": 422}
    assert str(exc) == "GitHub API POST .../keys answered 422: Validation Failed."
    assert github.GitHubError("no answer").details == {}


def test_an_http_error_names_the_call_the_status_and_the_fix_never_the_token(api: FakeApi) -> None:
    url = f"{API}/repos/biomage-org/ui/keys?per_page=100"
    api.answers.append(http_error(url, 401, {"message": "Bad credentials"}))
    with pytest.raises(github.GitHubError) as caught:
        github.GitHubClient(API, TOKEN).list_deploy_keys("biomage-org", "ui")
    exc = caught.value
    assert str(exc) == (
        f"GitHub API GET {url} answered 401: Bad credentials. "
        "Fix: the token is missing, wrong or expired: provide a valid token."
    )
    assert exc.status == 401 and exc.fix.startswith("the token is missing")
    assert TOKEN not in str(exc)
    assert api.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_validation_details_are_listed_and_unknown_statuses_have_no_fix(api: FakeApi) -> None:
    body = {"message": "Validation Failed", "errors": [{"message": "key is already in use"}, "odd"]}
    api.answers.append(http_error(f"{API}/repos/o/r/keys", 422, body))
    with pytest.raises(github.GitHubError) as caught:
        github.GitHubClient(API, TOKEN).add_deploy_key("o", "r", "t", "ssh-ed25519 AAAA", True)
    assert str(caught.value).endswith("answered 422: Validation Failed (key is already in use).")
    assert caught.value.fix is None and caught.value.status == 422


def test_an_unreachable_api_says_where_and_the_fix(api: FakeApi) -> None:
    api.answers.append(URLError("connection refused"))
    with pytest.raises(github.GitHubError) as caught:
        github.GitHubClient(API, TOKEN).get_variable("o", "r", "X")
    assert str(caught.value) == (
        f"cannot reach the GitHub API at {API}: connection refused. Fix: check github_api_url and the network."
    )
    assert caught.value.status is None


def test_transient_server_errors_are_retried(api: FakeApi) -> None:
    api.answers.extend([http_error(API, 503, {}), http_error(API, 502, {}), Response(200, {"name": "X", "value": "v"})])
    assert github.GitHubClient(API, TOKEN).get_variable("o", "r", "X") == {"name": "X", "value": "v"}
    assert len(api.requests) == 3


def test_404_reads_as_absent_and_other_errors_are_raised(api: FakeApi) -> None:
    client = github.GitHubClient(API, TOKEN)
    api.answers.extend([http_error(API, 404, {"message": "Not Found"})] * 3)
    assert client.get_variable("o", "r", "X") is None
    assert client.get_secret("o", "r", "X") is None
    assert client.get_file("o", "r", ".ci.yaml") is None
    api.answers.append(http_error(API, 403, {"message": "Forbidden"}))
    with pytest.raises(github.GitHubError, match="Fix: the token lacks the permission"):
        client.get_file("o", "r", ".ci.yaml")


def test_names_are_quoted_into_paths_and_files_decoded(api: FakeApi) -> None:
    client = github.GitHubClient(API + "/", TOKEN)
    api.answers.extend([Response(204), Response(204), Response(200, {"content": "Y2ktcG9saWNpZXM6IFtdCg=="})])
    client.delete_deploy_key("my org", "a/b", "7")
    client.update_variable("o", "r", "A B", "v")
    assert client.get_file("o", "r", "dir/.ci.yaml") == "ci-policies: []\n"
    assert [(r["method"], r["url"]) for r in api.requests] == [
        ("DELETE", f"{API}/repos/my%20org/a%2Fb/keys/7"),
        ("PATCH", f"{API}/repos/o/r/actions/variables/A%20B"),
        ("GET", f"{API}/repos/o/r/contents/dir/.ci.yaml"),
    ]
    assert client.calls == [
        ("DELETE", "/repos/my%20org/a%2Fb/keys/7"),
        ("PATCH", "/repos/o/r/actions/variables/A%20B"),
        ("GET", "/repos/o/r/contents/dir/.ci.yaml"),
    ]


def test_pages_are_followed_through_the_link_header(api: FakeApi) -> None:
    second = f"{API}/orgs/o/repos?per_page=100&page=2"
    api.answers.extend(
        [Response(200, [{"name": "a"}], {"Link": f'<{second}>; rel="next"'}), Response(200, [{"name": "b"}])]
    )
    assert github.GitHubClient(API, TOKEN).paginate("/orgs/o/repos") == [{"name": "a"}, {"name": "b"}]
    assert api.requests[1]["url"] == second


def test_a_secret_is_sealed_for_the_repository_key(api: FakeApi) -> None:
    private = PrivateKey.generate()
    public = {"key_id": "k1", "key": base64.b64encode(bytes(private.public_key)).decode()}
    api.answers.extend([Response(200, public), Response(201)])
    assert github.GitHubClient(API, TOKEN).put_secret("o", "r", "WEBHOOK", "s3cret") is True
    body = json.loads(api.requests[1]["data"])
    assert body["key_id"] == "k1" and "s3cret" not in api.requests[1]["data"]
    assert SealedBox(private).decrypt(base64.b64decode(body["encrypted_value"])) == b"s3cret"


def test_module_client_uses_the_modules_connection_options() -> None:
    module = SimpleNamespace(params={"api_url": API + "/", "token": TOKEN, "validate_certs": False})
    client = github.module_client(module)
    assert (client.api_url, client.validate_certs) == (API, False)


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVuaXQtdGVzdC1rZXktbWF0ZXJpYWwtMDAwMDAwMA"


def test_a_write_that_times_out_is_read_back_and_counted_as_done_when_it_took_effect(api: FakeApi) -> None:
    client = github.GitHubClient(API, TOKEN, timeout=2)
    registered = {"id": 7, "title": "flux", "key": KEY, "read_only": True}
    api.answers = [TimeoutError("timed out"), Response(200, [registered])]
    assert client.add_deploy_key("o", "r", "flux", KEY + " comment", True) == registered
    assert [r["method"] for r in api.requests] == ["POST", "GET"], "read back, never sent again"
    (warning,) = client.recovered
    assert "GitHub did not answer within 2 s to POST" in warning
    assert "adding the deploy key 'flux' to o/r took effect: counted as done" in warning


def test_a_write_that_times_out_and_did_not_take_effect_says_so(api: FakeApi) -> None:
    client = github.GitHubClient(API, TOKEN, timeout=2)
    api.answers = [TimeoutError("timed out"), http_error(API + "/repos/o/r/actions/variables/X", 404, {})]
    with pytest.raises(github.GitHubError) as raised:
        client.create_variable("o", "r", "X", "v")
    assert raised.value.outcome == github.NOT_APPLIED
    assert "did not answer POST" in str(raised.value)
    assert "Read back: creating the variable X of o/r did not take effect (nothing was changed" in str(raised.value)
    assert client.recovered == []


def test_a_write_whose_read_back_fails_is_reported_as_unknown(api: FakeApi) -> None:
    client = github.GitHubClient(API, TOKEN, retries=0)
    url = API + "/repos/o/r/keys"
    api.answers = [http_error(url, 500, {"message": "boom"}), http_error(url, 503, {"message": "down"})]
    with pytest.raises(github.GitHubError) as raised:
        client.add_deploy_key("o", "r", "flux", KEY, True)
    assert raised.value.outcome == github.UNKNOWN
    assert "Reading the state back failed too" in str(raised.value)
    assert "it is unknown whether adding the deploy key 'flux' to o/r took effect" in str(raised.value)


def test_a_post_without_a_read_back_is_never_retried(api: FakeApi) -> None:
    client = github.GitHubClient(API, TOKEN)
    url = API + "/repos/o/r/things"
    api.answers = [http_error(url, 502, {"message": "Bad Gateway"})]
    with pytest.raises(github.GitHubError) as raised:
        client.request("POST", "/repos/o/r/things", {"a": 1})
    assert len(api.requests) == 1
    assert raised.value.outcome == github.UNKNOWN
    assert "it is unknown whether it took effect" in str(raised.value)
