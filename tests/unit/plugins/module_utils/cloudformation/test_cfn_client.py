"""The API calls: an unreachable endpoint named with the fix, unreadable responses retried or looked
after without a duplicate stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.aws import AwsError, make_client
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks
from botocore.parsers import ResponseParserError
from devstack import free_port

from tests.lib.cfn_scenarios import ENV, GROUP, converge, item, queue_template
from tests.lib.fake_cfn import FakeCfn


def test_an_unreachable_endpoint_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = {"region": "eu-west-1", "endpoint_url": dead, "max_attempts": 1, "connect_timeout": 1}
    client = make_client("cloudformation", settings)
    run = CfnStacks(client, ENV, GROUP, settings=settings)
    with pytest.raises(AwsError) as failure:
        run.plan(prepare([item("s", queue_template())], ENV, GROUP, "eu-west-1"))
    message = str(failure.value)
    assert f"cannot reach AWS at {dead}" in message
    assert "Fix: start the local AWS emulator with `make dev-up`" in message


def unreadable(operation: str) -> Exception:
    """What botocore raises for an HTML 500 page instead of an AWS response."""
    return ResponseParserError(f"Unable to parse response for {operation}: invalid XML received")


class FlakyCfn(FakeCfn):
    """create_stack's response is lost (``lost_after_create``: the stack exists) or never sent; reads fail once."""

    def __init__(self, lost_after_create: bool) -> None:
        super().__init__()
        self.lost_after_create = lost_after_create
        self.flaky_describes = 1
        self.failed_creates = 0

    def create_stack(self, **kwargs: Any) -> dict[str, Any]:
        if self.failed_creates == 0:
            self.failed_creates += 1
            if self.lost_after_create:
                super().create_stack(**kwargs)
            raise unreadable("CreateStack")
        return super().create_stack(**kwargs)

    def describe_stacks(self, StackName: str | None = None, NextToken: str | None = None) -> dict[str, Any]:
        if StackName is None and self.flaky_describes:
            self.flaky_describes -= 1
            self._record("describe_stacks", {"StackName": StackName, "NextToken": NextToken})
            raise unreadable("DescribeStacks")
        return super().describe_stacks(StackName=StackName, NextToken=NextToken)


@pytest.mark.parametrize("lost_after_create", [True, False], ids=["response-lost", "request-lost"])
def test_an_unreadable_response_is_recovered_without_a_duplicate_or_a_missing_stack(lost_after_create: bool) -> None:
    fake = FlakyCfn(lost_after_create)
    run = converge(fake, [item("jobs", queue_template())])
    result = run.results["jobs"]
    assert (result.error, result.status) == (None, "CREATE_COMPLETE")
    # one create reached the fake either way: no duplicate after a lost response, a retry after a lost request
    assert fake.ops().count("create_stack") == 1 and fake.failed_creates == 1
    assert list(fake.stacks) == ["jobs"]


def test_an_unreadable_response_to_a_create_of_someone_elses_stack_is_not_adopted() -> None:
    fake = FlakyCfn(lost_after_create=False)
    fake.flaky_describes = 0
    original = fake.create_stack

    def foreign_then_unreadable(**kwargs: Any) -> dict[str, Any]:
        fake.add("jobs", queue_template(), {}, {})  # created meanwhile by another tool
        fake.create_stack = original  # type: ignore[method-assign]
        raise unreadable("CreateStack")

    fake.create_stack = foreign_then_unreadable  # type: ignore[method-assign]
    run = converge(fake, [item("jobs", queue_template())])
    assert "Unable to parse response" in (run.results["jobs"].error or "")
