"""The desired stacks: templates, parameters, capabilities and dependencies checked before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import ValidationFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

from tests.lib.cfn_scenarios import ENV, GROUP, converge, item, queue_template
from tests.lib.fake_cfn import FakeCfn


def test_validation_failure_happens_before_any_api_call() -> None:
    fake = FakeCfn()
    bad = queue_template().replace("production]", "prod]")
    with pytest.raises(ValidationFailed) as failure:
        converge(fake, [item("good", queue_template()), item("bad", bad)])
    assert fake.calls == []
    assert any("cf/bad.yaml" in d and "BIO001" in d for d in failure.value.problems)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Environment": "prod"}, "is not one of"),
        ({"Environment": ENV, "Nope": "x"}, "Nope are not declared"),
        ({}, "Environment has no default"),
    ],
)
def test_parameters_are_checked_against_their_declarations(parameters: dict, message: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        prepare([{**item("s", queue_template()), "parameters": parameters}], ENV, GROUP, "eu-west-1")
    assert any(message in d for d in failure.value.problems), failure.value.problems


def test_import_cycles_are_refused() -> None:
    items = [
        item("a", queue_template("a", export="a-out", import_="b-out")),
        item("b", queue_template("b", export="b-out", import_="a-out")),
    ]
    with pytest.raises(ValidationFailed, match="problem"):
        prepare(items, ENV, GROUP, "eu-west-1")


def test_iam_templates_get_the_capabilities_they_need() -> None:
    role = (Path(__file__).resolve().parents[5] / "cf/irsa-api-role.yaml").read_text()
    spec = prepare(
        [
            {
                "name": "r",
                "template_body": role,
                "template_label": "cf/irsa-api-role.yaml",
                "parameters": {"Environment": ENV, "OIDCProvider": "oidc.example/id/X"},
            }
        ],
        ENV,
        GROUP,
        "eu-west-1",
    )[0]
    assert spec.capabilities == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
