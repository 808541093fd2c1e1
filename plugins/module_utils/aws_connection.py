# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""boto3 clients for biomage.iac modules: one place for the connection options, retries, API call
counting and the translation of connection errors into messages an operator can act on."""

from __future__ import annotations

import os
import threading

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )
    from botocore.parsers import ResponseParserError

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

    class ResponseParserError(Exception):  # type: ignore[no-redef]
        """Placeholder so that except clauses work without botocore."""

    class BotoCoreError(Exception):  # type: ignore[no-redef]
        """Placeholder so that except clauses work without botocore."""

    class ClientError(Exception):  # type: ignore[no-redef]
        """Placeholder so that except clauses work without botocore."""


# The argument spec every biomage.iac AWS module shares (doc fragment biomage.iac.aws_connection).
AWS_CONNECTION_ARGUMENT_SPEC = {
    "region": {"type": "str", "aliases": ["aws_region"]},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"]},
    "profile": {"type": "str", "aliases": ["aws_profile"]},
    "connect_timeout": {"type": "float", "default": 5.0},
    "read_timeout": {"type": "float", "default": 60.0},
    "max_attempts": {"type": "int", "default": 5},
}


class AwsConnectionError(Exception):
    """AWS cannot be used: the message says what failed, where, and the fix."""


class ApiCallCounter:
    """Counts API calls per operation (one per logical call; retries of it are not counted)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.by_operation = {}

    def __call__(self, model=None, **_kwargs):
        name = getattr(model, "name", "?")
        with self._lock:
            self.by_operation[name] = self.by_operation.get(name, 0) + 1

    @property
    def total(self):
        with self._lock:
            return sum(self.by_operation.values())

    def snapshot(self):
        with self._lock:
            return dict(sorted(self.by_operation.items()))


def connection_settings(params):
    """Connection settings from module params, falling back to the standard AWS environment variables."""
    region = params.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint_url = params.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
    return {
        "region": region,
        "endpoint_url": endpoint_url,
        "profile": params.get("profile") or None,
        "connect_timeout": params.get("connect_timeout", 5.0),
        "read_timeout": params.get("read_timeout", 60.0),
        "max_attempts": params.get("max_attempts", 5),
    }


def make_client(service, settings, counter=None, max_pool_connections=10):
    """A boto3 client (thread-safe: share it between worker threads) with standard retries."""
    if not HAS_BOTO3:
        raise AwsConnectionError(f"boto3 and botocore are required ({BOTO3_IMPORT_ERROR}). Fix: run `make setup`.")
    if not settings.get("region"):
        raise AwsConnectionError(
            "no AWS region: set the module's region option (inventory biomage_region) or AWS_REGION."
        )
    config = Config(
        connect_timeout=settings.get("connect_timeout", 5.0),
        read_timeout=settings.get("read_timeout", 60.0),
        retries={"mode": "standard", "max_attempts": settings.get("max_attempts", 5)},
        max_pool_connections=max_pool_connections,
        user_agent_extra="biomage.iac",
    )
    try:
        session = boto3.session.Session(profile_name=settings.get("profile"))
        client = session.client(
            service,
            region_name=settings["region"],
            endpoint_url=settings.get("endpoint_url"),
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise AwsConnectionError(f"cannot create an AWS {service} client: {exc}") from exc
    if counter is not None:
        client.meta.events.register(f"before-call.{client.meta.service_model.service_name}", counter)
    return client


def error_code(exc):
    """The AWS error code of a ClientError, else ''."""
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def error_message(exc):
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message", str(exc))
    return str(exc)


def unreadable_response(exc):
    """True for a response botocore could not parse (e.g. an HTML 500 page); it does not retry those."""
    return isinstance(exc, ResponseParserError)


def explain(exc, settings, action):
    """Translate a boto3/botocore exception into an AwsConnectionError worded for the operator."""
    endpoint = settings.get("endpoint_url")
    where = f"at {endpoint}" if endpoint else f"in {settings.get('region')}"
    if HAS_BOTO3 and isinstance(exc, EndpointConnectionError):
        fix = (
            "start the local AWS emulator with `make dev-up` (or check AWS_ENDPOINT_URL / the inventory's endpoint)"
            if endpoint
            else "check the network and the region name"
        )
        return AwsConnectionError(f"cannot reach AWS {where} while trying to {action}: {exc}. Fix: {fix}.")
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return AwsConnectionError(
            f"AWS {where} did not answer in time while trying to {action}. Fix: check the endpoint."
        )
    if HAS_BOTO3 and isinstance(exc, NoCredentialsError):
        return AwsConnectionError(
            f"no AWS credentials while trying to {action}. Fix: log in (aws sso login / AWS_PROFILE) "
            "or, for development, run `make dev-up`."
        )
    if HAS_BOTO3 and isinstance(exc, NoRegionError):
        return AwsConnectionError("no AWS region. Fix: set the inventory's biomage_region or AWS_REGION.")
    code = error_code(exc)
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return AwsConnectionError(f"the AWS credentials have expired ({action}). Fix: log in again (aws sso login).")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return AwsConnectionError(
            f"AWS denied the request to {action}: {error_message(exc)}. Fix: use a role allowed to manage "
            "CloudFormation stacks and the resources in the templates."
        )
    if code in ("Throttling", "ThrottlingException"):
        return AwsConnectionError(f"AWS throttled the request to {action} after retries. Fix: lower max_workers.")
    return AwsConnectionError(f"AWS request to {action} failed {where}: {error_message(exc)}")
