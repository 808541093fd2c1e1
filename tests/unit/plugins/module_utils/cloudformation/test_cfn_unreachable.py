"""AWS unreachable in the middle of an apply (issue 15, the emulator killed mid-run): the stack whose call
found it fails naming the endpoint and says its change was sent; the stacks not started yet are not
attempted (each would wait on the same dead endpoint); the stacks done before keep their results."""

from __future__ import annotations

from typing import Any

from ansible_collections.biomage.iac.plugins.module_utils.aws import aws_error
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from tests.lib.cfn_scenarios import ENV, GROUP, REGION, deployed, item, queue_template
from tests.lib.fake_cfn import FakeCfn

ENDPOINT = "http://127.0.0.1:4566"
SETTINGS = {"region": REGION, "endpoint_url": ENDPOINT}


class DyingCfn(FakeCfn):
    """The endpoint dies while CreateStack of ``victim`` is processed: the stack is created, the answer
    lost, and every later call is refused."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim
        self.dead = False

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if callable(attribute) and not name.startswith("_") and super().__getattribute__("dead"):

            def refused(*_args: Any, **_kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url=ENDPOINT)

            return refused
        return attribute

    def create_stack(self, **kwargs: Any) -> dict[str, Any]:
        answer = super().create_stack(**kwargs)
        if kwargs["StackName"] == self.victim:
            self.dead = True
            raise EndpointConnectionError(endpoint_url=ENDPOINT)
        return answer


def test_an_unreachable_endpoint_stops_the_apply_and_names_what_was_sent() -> None:
    fake = DyingCfn("s2")
    run = CfnStacks(fake, ENV, GROUP, settings=SETTINGS, deploy_method="direct", max_workers=1, sleep=lambda _s: None)
    names = [f"s{i}" for i in range(6)]
    run.plan(prepare([item(n, queue_template(n)) for n in names], ENV, GROUP, REGION))
    run.apply()
    results = run.results

    assert [n for n in names if results[n].changed] == ["s0", "s1"]
    assert results["s2"].error.startswith(f"cannot reach AWS at {ENDPOINT} while trying to create s2")
    assert results["s2"].write_sent and not results["s0"].error
    for name in names[3:]:
        assert results[name].error == f"not attempted: AWS at {ENDPOINT} could not be reached (see s2)"
        assert not results[name].write_sent
    created = [kwargs["StackName"] for op, kwargs in fake.calls if op == "create_stack"]
    assert created == ["s0", "s1", "s2"], "no call is made for the stacks after the endpoint died"


def test_orphans_are_not_pruned_through_an_endpoint_found_dead() -> None:
    fake = DyingCfn("s0")
    deployed(fake, "orphan", queue_template("orphan"))
    run = CfnStacks(fake, ENV, GROUP, settings=SETTINGS, deploy_method="direct", prune=True, sleep=lambda _s: None)
    run.plan(prepare([item("s0", queue_template("s0"))], ENV, GROUP, REGION))
    run.apply()
    assert run.results["s0"].error.startswith(f"cannot reach AWS at {ENDPOINT}")
    assert run.results["orphan"].error == f"not attempted: AWS at {ENDPOINT} could not be reached (see s0)"
    assert "delete_stack" not in [op for op, _kwargs in fake.calls]


def test_timeouts_and_refused_connections_name_the_endpoint_as_unreachable() -> None:
    refused = aws_error(EndpointConnectionError(endpoint_url=ENDPOINT), SETTINGS, "create s")
    silent = aws_error(ReadTimeoutError(endpoint_url=ENDPOINT), SETTINGS, "create s")
    assert refused.details["unreachable"] == ENDPOINT and silent.details["unreachable"] == ENDPOINT
    assert str(silent) == f'AWS request to create s failed at {ENDPOINT}: Read timeout on endpoint URL: "{ENDPOINT}"'
    in_region = aws_error(EndpointConnectionError(endpoint_url="https://x"), {"region": REGION}, "create s")
    assert in_region.details["unreachable"] == f"the {REGION} endpoint"
