"""GitHub App authentication (JWT signed RS256 with cryptography, verified here with the public
key), the rate-limit rules, and the module options: a token or the App, never both required."""

from __future__ import annotations

import base64
import io
import json
from email.message import Message
from types import SimpleNamespace
from urllib.error import HTTPError

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.github import client as github
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

API = "https://github.example/api/v3"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_jwt_is_rs256_by_the_apps_key_and_short_lived(key: rsa.RSAPrivateKey) -> None:
    auth = github.AppAuth("4242", pem(key), clock=lambda: 1_000_000)
    header, claims, signature = auth.jwt().split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT"}
    body = json.loads(b64url_decode(claims))
    assert body == {"iat": 1_000_000 - 60, "exp": 1_000_000 + 540, "iss": "4242"}
    assert body["exp"] - body["iat"] <= 600
    key.public_key().verify(
        b64url_decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_a_key_that_is_not_an_rsa_pem_is_refused_without_echoing_it() -> None:
    with pytest.raises(github.GitHubError) as caught:
        github.AppAuth("1", "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n")
    assert "c2VjcmV0" not in str(caught.value) and "Fix:" in str(caught.value)


class FakeApi:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: list[object] = []
        self.requests: list[dict] = []
        monkeypatch.setattr(github, "open_url", self)

    def __call__(self, url: str, **kwargs: object) -> object:
        self.requests.append({"url": url, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Response:
    def __init__(self, status: int, body: object = None) -> None:
        self.status, self.headers = status, {}
        self._raw = b"" if body is None else json.dumps(body).encode()

    def read(self) -> bytes:
        return self._raw

    def getcode(self) -> int:
        return self.status


def http_error(status: int, body: dict, headers: dict[str, str] | None = None) -> HTTPError:
    message = Message()
    for name, value in (headers or {}).items():
        message[name] = value
    return HTTPError(API, status, "reason", message, io.BytesIO(json.dumps(body).encode()))


def test_the_installation_token_is_bought_with_the_jwt_and_renewed(
    monkeypatch: pytest.MonkeyPatch, key: rsa.RSAPrivateKey
) -> None:
    api = FakeApi(monkeypatch)
    now = [1_000_000.0]
    auth = github.AppAuth("7", pem(key), installation_id=9, clock=lambda: now[0])
    client = github.GitHubClient(API, app=auth)
    api.answers += [
        Response(201, {"token": "ghs_one", "expires_at": "1970-01-12T13:48:20Z"}),  # 100 s after now
        Response(200, {}),
    ]
    client.request("GET", "/repos/o/r")
    mint, call = api.requests
    assert mint["url"] == f"{API}/app/installations/9/access_tokens" and mint["method"] == "POST"
    assert mint["headers"]["Authorization"].count(".") == 2  # a JWT
    assert call["headers"]["Authorization"] == "Bearer ghs_one"
    # the token expires within the margin: renewed before the next call
    api.answers += [Response(201, {"token": "ghs_two", "expires_at": "2100-01-01T00:00:00Z"}), Response(200, {})]
    client.request("GET", "/repos/o/r")
    assert api.requests[-1]["headers"]["Authorization"] == "Bearer ghs_two" and auth.minted == 2


@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        (429, {"Retry-After": "3"}, "", 3.0),
        (403, {"Retry-After": "2"}, "You have exceeded a secondary rate limit", 2.0),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "110"}, "API rate limit exceeded", 11.0),
        (403, {}, "You have exceeded a secondary rate limit", 60.0),
        (429, {}, "", 60.0),
        (403, {}, "Resource not accessible by integration", None),
        (403, {"x-ratelimit-remaining": "12"}, "Must have admin rights", None),
        (404, {"Retry-After": "1"}, "Not Found", None),
    ],
)
def test_rate_limits_are_told_from_permissions(status: int, headers: dict, message: str, wait: float | None) -> None:
    assert github.rate_limit_wait(status, headers, message, now=100) == wait


def test_a_rate_limit_is_waited_out_then_given_up_as_a_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(monkeypatch)
    waits: list[float] = []
    client = github.GitHubClient(API, "t", sleep=waits.append, rate_limit_budget=5)
    api.answers += [http_error(429, {"message": "slow down"}, {"Retry-After": "2"}), Response(200, {"ok": 1})]
    assert client.request("GET", "/x")[1] == {"ok": 1} and waits == [2.0]
    api.answers += [http_error(403, {"message": "secondary rate limit"}, {"Retry-After": "4"})] * 2
    with pytest.raises(github.GitHubError) as caught:
        client.request("GET", "/x")
    assert waits == [2.0, 4.0]
    assert "rate limited" in str(caught.value) and "not a missing permission" in str(caught.value)
    assert github.STATUS_FIXES[403] not in str(caught.value)


def test_module_options_take_a_token_or_the_app(key: rsa.RSAPrivateKey, tmp_path: object) -> None:
    base = {"api_url": API, "validate_certs": True, "owner": "o", "repo": "r"}
    none = {"token": None, "app_id": None, "app_installation_id": None, "app_private_key": None,
            "app_private_key_path": None}  # fmt: skip
    with pytest.raises(github.GitHubError) as caught:
        github.module_client(SimpleNamespace(params={**base, **none}))
    assert "neither a token nor a GitHub App" in str(caught.value)
    client = github.module_client(SimpleNamespace(params={**base, **none, "app_id": "1", "app_private_key": pem(key)}))
    assert client.app is not None and client._token is None
    with pytest.raises(github.GitHubError):
        github.module_client(SimpleNamespace(params={**base, **none, "token": "t"}), require_app=True)
    spec = github.GITHUB_ARGUMENT_SPEC
    assert spec["token"].get("required") is not True and spec["app_private_key"]["no_log"] is True
