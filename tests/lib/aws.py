"""boto3 clients for the local stack, built from its env entries the way an operator's shell would."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session


def session(env: dict[str, str]) -> boto3.Session:
    """A session using the stack's profile (its credentials file), region and endpoint."""
    core = botocore.session.Session(profile=env["AWS_PROFILE"])
    core.set_config_variable("credentials_file", env["AWS_SHARED_CREDENTIALS_FILE"])
    core.set_config_variable("config_file", env["AWS_CONFIG_FILE"])
    return boto3.Session(botocore_session=core, region_name=env["AWS_REGION"])


def client(env: dict[str, str], service: str) -> Any:
    return session(env).client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def stack_pages(cfn: Any) -> list[list[dict[str, Any]]]:
    """Every page of DescribeStacks (the emulator, like AWS, pages a long list: a session's tests add up)."""
    return [page["Stacks"] for page in cfn.get_paginator("describe_stacks").paginate()]


def all_stacks(cfn: Any) -> list[dict[str, Any]]:
    """Every stack DescribeStacks lists, across its pages."""
    return [stack for page in stack_pages(cfn) for stack in page]


# The account of the local AWS emulator (moto's default): staging and production inventories run
# against the emulator in tests get it with -e biomage_aws_account_id=... (preflight checks it).
EMULATOR_ACCOUNT = "123456789012"
EMULATOR_ACCOUNT_VARS = {"biomage_aws_account_id": EMULATOR_ACCOUNT}
