# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS connections for biomage.iac: boto3 clients built through amazon.aws's ``AnsibleAWSModule``
(its standard connection options: region, profile, keys, endpoint_url, aws_ca_bundle, ...), our
timeouts and retry settings on top, API call counting, and one translation of botocore errors into
:class:`AwsError` worded for the operator.

The rooms that talk to AWS (cloudformation/, eks/, github/'s OIDC provider) take a client from
here and raise :class:`AwsError` (or their own subclass of it) with the service-specific hint.
"""

from __future__ import annotations

import contextlib
import os
import threading

from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
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


# What biomage.iac adds to amazon.aws's connection options (doc fragment biomage.iac.aws_client).
# An endpoint that accepts connections and never answers fails within
# (connect_timeout + read_timeout) x timeout_attempts (+ under 1 s of backoff) = 26 s by default;
# throttling and 5xx answers are still retried up to max_attempts. AWS answers every API call we make
# (CloudFormation's included: a deployment is polled, never waited for in one call) in well under 10 s.
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT_ATTEMPTS = 2
AWS_CLIENT_ARGUMENT_SPEC = {
    "connect_timeout": {"type": "float", "default": DEFAULT_CONNECT_TIMEOUT},
    "read_timeout": {"type": "float", "default": DEFAULT_READ_TIMEOUT},
    "max_attempts": {"type": "int", "default": DEFAULT_MAX_ATTEMPTS},
    "timeout_attempts": {"type": "int", "default": DEFAULT_TIMEOUT_ATTEMPTS},
}


class AwsError(BiomageError):
    """An AWS call failed or AWS cannot be used; details carry the error code and request id."""


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


def module_settings(module):
    """Where an ``AnsibleAWSModule`` connects (region, endpoint) and how (timeouts, attempts)."""
    params = module.params
    return {
        "region": module.region,
        "endpoint_url": params.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None,
        "connect_timeout": params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
        "read_timeout": params.get("read_timeout") or DEFAULT_READ_TIMEOUT,
        "max_attempts": params.get("max_attempts") or DEFAULT_MAX_ATTEMPTS,
        "timeout_attempts": params.get("timeout_attempts") or DEFAULT_TIMEOUT_ATTEMPTS,
    }


def client_config(settings, max_pool_connections=10):
    """The botocore Config of every biomage.iac client: timeouts and standard-mode retries."""
    return Config(
        connect_timeout=settings.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        read_timeout=settings.get("read_timeout", DEFAULT_READ_TIMEOUT),
        retries={"mode": "standard", "max_attempts": settings.get("max_attempts", DEFAULT_MAX_ATTEMPTS)},
        max_pool_connections=max_pool_connections,
        user_agent_extra="biomage.iac",
    )


def _require(settings):
    if not HAS_BOTO3:
        raise AwsError(f"boto3 and botocore are required ({BOTO3_IMPORT_ERROR}).", fix="run `make setup`.")
    if not settings.get("region"):
        raise AwsError(
            "no AWS region: set the module's region option (inventory biomage_region) or AWS_REGION.",
        )


def module_client(module, service, counter=None, max_pool_connections=10):
    """A boto3 client of ``service`` for an ``AnsibleAWSModule`` (thread-safe: share it between
    worker threads), built by amazon.aws from the module's standard connection options."""
    settings = module_settings(module)
    _require(settings)
    client = module.client(
        service,
        endpoint=settings["endpoint_url"],
        config=client_config(settings, max_pool_connections),
    )
    _count(client, counter)
    bound_timeouts(client, settings.get("timeout_attempts", DEFAULT_TIMEOUT_ATTEMPTS))
    return client


def make_client(service, settings, counter=None, max_pool_connections=10):
    """A boto3 client from plain settings, for code that runs outside a module (tools, benches)."""
    _require(settings)
    try:
        session = boto3.session.Session(profile_name=settings.get("profile"))
        client = session.client(
            service,
            region_name=settings["region"],
            endpoint_url=settings.get("endpoint_url"),
            config=client_config(settings, max_pool_connections),
        )
    except (BotoCoreError, ValueError) as exc:
        raise AwsError(f"cannot create an AWS {service} client: {exc}") from exc
    _count(client, counter)
    bound_timeouts(client, settings.get("timeout_attempts", DEFAULT_TIMEOUT_ATTEMPTS))
    return client


def bound_timeouts(client, attempts):
    """Stop botocore's retries of a call after ``attempts`` attempts when the last one timed out
    (connect or read): standard mode would retry a silent endpoint up to ``max_attempts`` times,
    which is meant for throttling and 5xx answers."""

    def stop(attempts_made=0, caught_exception=None):
        if isinstance(caught_exception, (ConnectTimeoutError, ReadTimeoutError)) and attempts_made >= attempts:
            raise caught_exception

    def handler(**kwargs):
        stop(kwargs.get("attempts", 0), kwargs.get("caught_exception"))

    client.meta.events.register_first("needs-retry", handler, unique_id="biomage-iac-timeout-attempts")


def _count(client, counter):
    if counter is not None:
        client.meta.events.register(f"before-call.{client.meta.service_model.service_name}", counter)


def error_code(exc):
    """The AWS error code of a ClientError, else ''."""
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def is_error_code(exc, *codes):
    """True when ``exc`` is a ClientError with one of ``codes``."""
    return error_code(exc) in codes


def error_message(exc):
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message", str(exc))
    return str(exc)


def error_details(exc):
    """The AWS error code, request id and HTTP status of a ClientError (for BiomageError.details)."""
    if not (HAS_BOTO3 and isinstance(exc, ClientError)):
        return {}
    metadata = exc.response.get("ResponseMetadata", {})
    return {
        "error_code": error_code(exc) or None,
        "request_id": metadata.get("RequestId"),
        "http_status": metadata.get("HTTPStatusCode"),
    }


def unreadable_response(exc):
    """True for a response botocore could not parse (e.g. an HTML 500 page); it does not retry those."""
    return isinstance(exc, ResponseParserError)


def aws_error(exc, settings, action, needs="the AWS resources this task manages", error_class=AwsError):
    """Translate a boto3/botocore exception into an :class:`AwsError` worded for the operator.

    ``needs`` says what the caller's role must be allowed to do (the hint given on AccessDenied).
    """
    endpoint = settings.get("endpoint_url")
    where = f"at {endpoint}" if endpoint else f"in {settings.get('region')}"
    details = error_details(exc)
    if HAS_BOTO3 and isinstance(exc, EndpointConnectionError):
        fix = (
            "start the local AWS emulator with `make dev-up` (or check AWS_ENDPOINT_URL / the inventory's endpoint)"
            if endpoint
            else "check the network and the region name"
        )
        return error_class(f"cannot reach AWS {where} while trying to {action}: {exc}. Fix: {fix}.")
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return error_class(f"AWS {where} did not answer in time while trying to {action}. Fix: check the endpoint.")
    if HAS_BOTO3 and isinstance(exc, NoCredentialsError):
        return error_class(
            f"no AWS credentials while trying to {action}. Fix: log in (aws sso login / AWS_PROFILE) "
            "or, for development, run `make dev-up`."
        )
    if HAS_BOTO3 and isinstance(exc, NoRegionError):
        return error_class("no AWS region. Fix: set the inventory's biomage_region or AWS_REGION.")
    code = error_code(exc)
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return error_class(
            f"the AWS credentials have expired ({action}). Fix: log in again (aws sso login).", **details
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return error_class(
            f"AWS denied the request to {action}: {error_message(exc)}. Fix: use a role allowed to manage {needs}.",
            **details,
        )
    if code in ("Throttling", "ThrottlingException"):
        return error_class(f"AWS throttled the request to {action} after retries. Fix: lower max_workers.", **details)
    return error_class(f"AWS request to {action} failed {where}: {error_message(exc)}", **details)


@contextlib.contextmanager
def aws_errors(settings, action, needs="the AWS resources this task manages"):
    """Raise any botocore error of the block as the :class:`AwsError` of :func:`aws_error`."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, settings, action, needs) from exc
