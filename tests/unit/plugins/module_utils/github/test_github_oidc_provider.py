"""The account's OIDC provider for GitHub Actions: planned from what IAM has, IAM errors worded in the room."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError
from ansible_collections.biomage.iac.plugins.module_utils.github import oidc_provider as github_oidc
from botocore.exceptions import ClientError


def test_oidc_provider_plan() -> None:
    assert github_oidc.plan(None, ["sts.amazonaws.com"], []) == [
        ("create", {"client_ids": ["sts.amazonaws.com"], "thumbprints": []})
    ]
    current = {"url": "token.actions.githubusercontent.com", "client_ids": ["sts.amazonaws.com"], "thumbprints": []}
    assert github_oidc.plan(current, ["sts.amazonaws.com"], []) == []
    assert github_oidc.plan(current, ["other"], []) == [
        ("add_client_id", "other"),
        ("remove_client_id", "sts.amazonaws.com"),
    ]


ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
SETTINGS = {"region": "eu-west-1", "endpoint_url": None}


class FakeIam:
    """The IAM calls of the room, on one provider (or none); ``refuse`` makes every call fail."""

    def __init__(self, provider: dict | None = None, refuse: ClientError | None = None) -> None:
        self.provider, self.refuse = provider, refuse
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, operation: str):
        def call(**kwargs):
            self.calls.append((operation, kwargs))
            if self.refuse:
                raise self.refuse
            if operation == "list_open_id_connect_providers":
                others = [{"Arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X"}]
                return {"OpenIDConnectProviderList": others + ([{"Arn": ARN}] if self.provider else [])}
            if operation == "get_open_id_connect_provider":
                return self.provider
            if operation == "create_open_id_connect_provider":
                return {"OpenIDConnectProviderArn": ARN}
            return {}

        return call


def access_denied() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "not allowed"},
            "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 403},
        },
        "ListOpenIDConnectProviders",
    )


def test_find_reads_the_provider_of_the_url_only() -> None:
    provider = {"Url": "token.actions.githubusercontent.com", "ClientIDList": ["b", "a"], "ThumbprintList": ["AB" * 20]}
    assert github_oidc.find(FakeIam(provider), SETTINGS) == (
        ARN,
        {"url": "token.actions.githubusercontent.com", "client_ids": ["a", "b"], "thumbprints": ["ab" * 20]},
    )
    assert github_oidc.find(FakeIam(), SETTINGS) == (None, None)


def test_apply_creates_with_tags_and_changes_client_ids_and_thumbprints() -> None:
    iam = FakeIam()
    steps = github_oidc.plan(None, ["sts.amazonaws.com"], ["CD" * 20])
    assert github_oidc.apply(iam, SETTINGS, None, steps, tags={"b": "2", "a": "1"}) == ARN
    assert iam.calls == [
        (
            "create_open_id_connect_provider",
            {
                "Url": "https://token.actions.githubusercontent.com",
                "ClientIDList": ["sts.amazonaws.com"],
                "ThumbprintList": ["cd" * 20],
                "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
            },
        )
    ]
    iam = FakeIam()
    steps = [("add_client_id", "x"), ("remove_client_id", "y"), ("update_thumbprints", ["ab" * 20])]
    assert github_oidc.apply(iam, SETTINGS, ARN, steps) == ARN
    assert [(name, kwargs.get("ClientID", kwargs.get("ThumbprintList"))) for name, kwargs in iam.calls] == [
        ("add_client_id_to_open_id_connect_provider", "x"),
        ("remove_client_id_from_open_id_connect_provider", "y"),
        ("update_open_id_connect_provider_thumbprint", ["ab" * 20]),
    ]


def test_iam_errors_are_translated_in_the_room() -> None:
    for call in (
        lambda iam: github_oidc.find(iam, SETTINGS),
        lambda iam: github_oidc.apply(iam, SETTINGS, None, github_oidc.plan(None, ["sts.amazonaws.com"], [])),
    ):
        with pytest.raises(AwsError) as caught:
            call(FakeIam(refuse=access_denied()))
        exc = caught.value
        assert str(exc) == (
            "AWS denied the request to manage the GitHub Actions OIDC provider: not allowed. "
            "Fix: use a role allowed to manage IAM OIDC identity providers."
        )
        assert exc.details == {"error_code": "AccessDenied", "request_id": "req-1", "http_status": 403}
        assert isinstance(exc.__cause__, ClientError)


@pytest.mark.parametrize(
    ("url", "client_ids", "thumbprints", "message"),
    [
        ("http://token.actions.githubusercontent.com", ["sts.amazonaws.com"], [], "must start with https://"),
        (github_oidc.GITHUB_OIDC_URL, [], [], "client_ids non-empty"),
        (github_oidc.GITHUB_OIDC_URL, ["sts.amazonaws.com"], ["ab"], "40 hex characters"),
    ],
)
def test_invalid_options_fail_before_any_call(url: str, client_ids: list, thumbprints: list, message: str) -> None:
    with pytest.raises(github_oidc.OidcProviderError, match=message) as caught:
        github_oidc.check_options(url, client_ids, thumbprints)
    assert "Fix: " in str(caught.value)
    github_oidc.check_options(github_oidc.GITHUB_OIDC_URL, ["sts.amazonaws.com"], ["Ab" * 20])


def test_desired_is_the_provider_after_the_plan() -> None:
    current = {"url": "token.actions.githubusercontent.com", "client_ids": ["old"], "thumbprints": ["ab" * 20]}
    assert github_oidc.desired(current, github_oidc.GITHUB_OIDC_URL, ["b", "a", "b"], []) == {
        "url": "token.actions.githubusercontent.com",
        "client_ids": ["a", "b"],
        "thumbprints": ["ab" * 20],
    }
    assert github_oidc.desired(None, github_oidc.GITHUB_OIDC_URL, ["a"], ["CD" * 20]) == {
        "url": "token.actions.githubusercontent.com",
        "client_ids": ["a"],
        "thumbprints": ["cd" * 20],
    }
