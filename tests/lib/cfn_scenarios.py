"""Scenarios for the cloudformation/ room's unit tests: a template with optional exports and imports,
desired stacks, stacks already deployed in the scripted client, and a run of the planner and applier."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import (
    ENVIRONMENT_TAG,
    GROUP_TAG,
    OWNER_TAG,
    OWNER_VALUE,
    TEMPLATE_TAG,
    prepare,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks

from tests.lib.fake_cfn import FakeCfn

ENV = "development"
GROUP = "aws-resources"
REGION = "eu-west-1"


def queue_template(
    queue: str = "jobs",
    export: str | None = None,
    import_: str | None = None,
    extra: str = "",
    description: str | None = None,
    secret: bool = True,
) -> str:
    """A template of one SQS queue named ``<queue>-<Environment>``: ``extra`` is appended to its properties
    (each line indented by 6), ``export``/``import_`` add an exported ARN or a tag importing one, ``secret``
    a NoEcho parameter."""
    head = f"Description: {description}\n" if description else ""
    secret_parameter = '\n  Secret:\n    Type: String\n    Default: ""\n    NoEcho: true' if secret else ""
    text = f"""---
AWSTemplateFormatVersion: "2010-09-09"
{head}Parameters:
  Environment:
    Type: String
    AllowedValues: [development, staging, production]{secret_parameter}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName:
        Fn::Sub: "{queue}-${{Environment}}"{extra}
"""
    if import_:
        text += f"""      Tags:
        - Key: upstream
          Value:
            Fn::ImportValue:
              Fn::Sub: "{import_}"
"""
    if export:
        text += f"""Outputs:
  QueueArn:
    Value:
      Fn::GetAtt: [Queue, Arn]
    Export:
      Name:
        Fn::Sub: "{export}"
"""
    return text


def item(name: str, body: str, **extra: object) -> dict:
    return {
        "name": name,
        "template_body": body,
        "template_label": f"cf/{name}.yaml",
        "parameters": {"Environment": ENV},
        **extra,
    }


def owned_tags(name: str, group: str = GROUP, environment: str = ENV) -> dict[str, str]:
    return {
        OWNER_TAG: OWNER_VALUE,
        ENVIRONMENT_TAG: environment,
        GROUP_TAG: group,
        TEMPLATE_TAG: f"cf/{name}.yaml",
    }


def deployed(fake: FakeCfn, name: str, body: str, **extra: object) -> None:
    fake.add(name, body, {"Environment": ENV, "Secret": "****"}, owned_tags(name), **extra)


def runner(fake: FakeCfn, sleeps: list[float] | None = None, **options: object) -> CfnStacks:
    record = sleeps if sleeps is not None else []
    return CfnStacks(
        fake,
        ENV,
        GROUP,
        settings={"region": REGION},
        deploy_method=options.pop("deploy_method", "direct"),
        poll_delay=1.0,
        max_poll_delay=4.0,
        sleep=record.append,
        **options,
    )


def converge(fake: FakeCfn, items: list[dict], **options: object) -> CfnStacks:
    run = runner(fake, **options)
    run.plan(prepare(items, ENV, GROUP, REGION))
    run.apply()
    return run
