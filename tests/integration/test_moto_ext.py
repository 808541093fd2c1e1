"""The local stack's moto patches (tools/devstack/moto_ext.py), each pinned against the running
emulator with the AWS behaviour it reproduces. Development deploys by change set like staging and
production only because these hold."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT

pytestmark = pytest.mark.slow

QUEUE = """---
Description: {description}
Parameters:
  Suffix:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "moto-ext-${{Suffix}}"
Outputs:
  Suffix:
    Value: !Ref Suffix
"""
ROLE = """---
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      {name}AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: ec2.amazonaws.com}}
            Action: sts:AssumeRole
"""


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def stack_of(cfn: object, stack_name: str) -> dict:
    return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]


def execute(cfn: object, stack_name: str, body: str, suffix: str, tags: list[dict], **extra: object) -> str:
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name("cs"),
        ChangeSetType="UPDATE",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": suffix}],
        Tags=tags,
        **extra,
    )["Id"]
    cfn.execute_change_set(ChangeSetName=change_set)
    return change_set


def test_the_server_lists_its_patches() -> None:
    listed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools/devstack/moto_server.py"), "--patches"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {line.split(":")[0] for line in listed.splitlines()} == {
        "insufficient-capabilities",
        "capabilities-reported",
        "execute-change-set-records-the-stack",
        "change-set-without-changes",
        "create-stack-atomic",
    }


def test_an_executed_change_set_leaves_its_parameters_tags_outputs_and_description(devstack: dict) -> None:
    # AWS: after ExecuteChangeSet, DescribeStacks shows the change set's parameter values, tags,
    # outputs and template description, exactly as after UpdateStack
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=QUEUE.format(description="one"),
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}],
        Tags=[{"Key": "owner", "Value": "first"}],
    )
    change_set = execute(cfn, stack_name, QUEUE.format(description="two"), "b", [{"Key": "owner", "Value": "second"}])
    described = cfn.describe_change_set(ChangeSetName=change_set)
    assert described["Tags"] == [{"Key": "owner", "Value": "second"}]
    stack = stack_of(cfn, stack_name)
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Parameters"] == [{"ParameterKey": "Suffix", "ParameterValue": "b"}]
    assert stack["Tags"] == [{"Key": "owner", "Value": "second"}]
    assert stack["Outputs"][0]["OutputValue"] == "b"
    assert stack["Description"] == "two"


def test_a_second_change_set_with_the_same_inputs_has_no_changes(devstack: dict) -> None:
    # AWS: CreateChangeSet with the stack's own template and parameters ends FAILED with
    # "The submitted information didn't contain changes."
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext")
    body = QUEUE.format(description="same")
    cfn.create_stack(
        StackName=stack_name, TemplateBody=body, Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}]
    )
    execute(cfn, stack_name, body, "b", [])
    again = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name("cs"),
        ChangeSetType="UPDATE",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "b"}],
    )["Id"]
    described = cfn.describe_change_set(ChangeSetName=again)
    assert described["Status"] == "FAILED"
    assert "didn't contain changes" in described["StatusReason"]
    # UpdateStack is the call that answers with an error
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        cfn.update_stack(
            StackName=stack_name, TemplateBody=body, Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "b"}]
        )
    assert refused.value.response["Error"]["Message"] == "No updates are to be performed."


@pytest.mark.parametrize(
    ("role_name", "given", "needed"),
    [
        ("", [], "CAPABILITY_IAM"),
        ("RoleName: named-role\n      ", [], "CAPABILITY_NAMED_IAM"),
        ("RoleName: named-role\n      ", ["CAPABILITY_IAM"], "CAPABILITY_NAMED_IAM"),
    ],
)
def test_iam_resources_need_their_capability(devstack: dict, role_name: str, given: list, needed: str) -> None:
    # AWS: a template with IAM resources is refused unless the request acknowledges them;
    # a named IAM resource needs CAPABILITY_NAMED_IAM
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext-iam")
    body = ROLE.format(name=role_name.replace("named-role", stack_name))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=given)
    assert refused.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert refused.value.response["Error"]["Message"] == f"Requires capabilities : [{needed}]"
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.create_change_set(
            StackName=stack_name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=body, Capabilities=given
        )
    cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=[needed])
    assert stack_of(cfn, stack_name)["StackStatus"] == "CREATE_COMPLETE"


def test_capabilities_are_reported(devstack: dict) -> None:
    # AWS: DescribeStacks and DescribeChangeSet return the request's Capabilities
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext-iam")
    body = ROLE.format(name="")
    cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert stack_of(cfn, stack_name)["Capabilities"] == ["CAPABILITY_IAM"]
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName="cs",
        ChangeSetType="UPDATE",
        TemplateBody=body.replace("ec2.amazonaws.com", "lambda.amazonaws.com"),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )["Id"]
    assert cfn.describe_change_set(ChangeSetName=change_set)["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    cfn.execute_change_set(ChangeSetName=change_set)
    assert stack_of(cfn, stack_name)["Capabilities"] == ["CAPABILITY_NAMED_IAM"]


EXPORTING = """---
Resources:
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  Arn:
    Value: !Ref Topic
    Export:
      Name: {export}
"""


def test_a_create_stack_that_fails_creates_nothing(devstack: dict) -> None:
    cfn = aws.client(devstack, "cloudformation")
    export = name("export")
    first, second = name("exporting"), name("duplicate")
    cfn.create_stack(StackName=first, TemplateBody=EXPORTING.format(export=export))
    with pytest.raises(botocore.exceptions.ClientError, match="Export names must be unique"):
        cfn.create_stack(StackName=second, TemplateBody=EXPORTING.format(export=export))
    with pytest.raises(botocore.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=second)
    assert stack_of(cfn, first)["StackStatus"] == "CREATE_COMPLETE"


def test_concurrent_create_stacks_never_leave_create_pending(devstack: dict) -> None:
    cfn = aws.client(devstack, "cloudformation")
    names = [name("parallel") for _ in range(40)]

    def create(stack_name: str) -> None:
        cfn.create_stack(StackName=stack_name, TemplateBody=EXPORTING.format(export=f"{stack_name}-arn"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names))
    statuses = {stack_of(cfn, stack_name)["StackStatus"] for stack_name in names}
    assert statuses == {"CREATE_COMPLETE"}
