"""Reading templates: intrinsic functions in both forms, names, conditions, capabilities."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation import template as ct

SHORT = """
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "q-${Environment}"
      Arn: !GetAtt Other.Arn.Deep
      Version: 2012-10-17
"""


def test_short_and_long_forms_read_the_same() -> None:
    seen: list = []
    short = ct.load_template(SHORT, "t.yaml", seen)
    assert short["Resources"]["Q"]["Properties"] == {
        "QueueName": {"Fn::Sub": "q-${Environment}"},
        "Arn": {"Fn::GetAtt": ["Other", "Arn.Deep"]},
        "Version": "2012-10-17",  # a YAML timestamp stays a string, as in CloudFormation
    }
    assert [tag for tag, _line in seen] == ["!Sub", "!GetAtt"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources:\n  A: {Type: X}\n  A: {Type: Y}\n", "duplicate key 'A'"),
        ("Resources: {}\n", "no Resources"),
        ("[1, 2]\n", "must be a mapping"),
        ("Resources: [\n", "not valid YAML"),
    ],
)
def test_broken_templates_are_named(text: str, message: str) -> None:
    with pytest.raises(ct.TemplateError, match=message):
        ct.load_template(text, "cf/broken.yaml")


def test_names_resolve_to_glob_patterns() -> None:
    variables = {"AWS::StackName": "s", "Environment": "staging"}
    assert ct.resolve_name({"Fn::Sub": "${AWS::StackName}-Arn"}, variables) == "s-Arn"
    assert ct.resolve_name({"Fn::Sub": "x-${AWS::AccountId}"}, variables) == "x-*"
    assert ct.resolve_name({"Fn::Join": ["-", ["a", {"Ref": "Environment"}]]}, variables) == "a-staging"
    assert ct.names_match("x-*", "x-123") and not ct.names_match("x-1", "y-1")


def test_conditions_are_evaluated_where_parameters_decide_them() -> None:
    conditions = {
        "IsDev": {"Fn::Equals": [{"Ref": "Environment"}, "development"]},
        "HasNet": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Subnets"}]}, ""]}]},
        "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "HasNet"}]},
        "Unknown": {"Fn::Equals": [{"Ref": "AWS::Region"}, "x"]},
    }
    params = {"Environment": "development", "Subnets": ""}
    assert ct.evaluate_condition({"Condition": "IsDev"}, params, conditions) is True
    assert ct.evaluate_condition({"Condition": "Both"}, params, conditions) is False
    assert ct.evaluate_condition({"Condition": "Unknown"}, params, conditions) is None


def test_capabilities_follow_the_iam_resources() -> None:
    def template(resources: dict) -> dict:
        return {"Resources": resources}

    assert ct.required_capabilities(template({"Q": {"Type": "AWS::SQS::Queue"}})) == []
    assert ct.required_capabilities(template({"R": {"Type": "AWS::IAM::Role"}})) == ["CAPABILITY_IAM"]
    named = {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}}
    assert ct.required_capabilities(template(named)) == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
