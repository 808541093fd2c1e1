# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's IAM OIDC provider for GitHub Actions (``token.actions.githubusercontent.com``).

It is one per account, shared by every CI role, so it is not in any repository's stack. It is
managed with IAM calls (the local AWS emulator cannot create it through CloudFormation): found by
its URL, created when missing, and its client ids (audiences) and thumbprints brought to the
desired lists. Tags are not compared (IAM does not return them with the provider on every backend).

Every botocore error of those calls is raised as an :class:`AwsError` worded for the operator.
"""

from __future__ import annotations

import re

from ansible_collections.biomage.iac.plugins.module_utils.aws import aws_errors
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
DEFAULT_CLIENT_IDS = ("sts.amazonaws.com",)
THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
# what the AWS errors of this room say the caller tried, and what its role must be allowed to manage
ACTION = "manage the GitHub Actions OIDC provider"
NEEDS = "IAM OIDC identity providers"


class OidcProviderError(BiomageError):
    """The provider's desired settings are invalid (nothing was asked of IAM)."""


def check_options(url, client_ids, thumbprints):
    """Raise :class:`OidcProviderError` unless the URL, client ids and thumbprints can be used."""
    if not url.startswith("https://"):
        raise OidcProviderError(f"url {url!r} must start with https://.", fix="give the issuer URL.")
    if not client_ids or not all(THUMBPRINT.match(t) for t in thumbprints):
        raise OidcProviderError("thumbprints must be 40 hex characters and client_ids non-empty.", fix="check them.")


def _host(url):
    return url.split("://", 1)[-1].rstrip("/")


def find(client, settings, url=GITHUB_OIDC_URL):
    """``(arn, {"url", "client_ids", "thumbprints"})`` of the provider for ``url``, or ``(None, None)``.

    ``settings`` (``aws.module_settings``) says where IAM was called, for error messages.
    """
    with aws_errors(settings, ACTION, needs=NEEDS):
        for entry in client.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
            arn = entry["Arn"]
            if arn.endswith(":oidc-provider/" + _host(url)):
                found = client.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
                return arn, {
                    "url": _host(found.get("Url", url)),
                    "client_ids": sorted(found.get("ClientIDList", [])),
                    "thumbprints": sorted(t.lower() for t in found.get("ThumbprintList", [])),
                }
    return None, None


def plan(current, client_ids, thumbprints):
    """The steps to reach the desired provider: a list of ``(operation, argument)``."""
    client_ids = sorted(set(client_ids))
    thumbprints = sorted({t.lower() for t in thumbprints})
    if current is None:
        return [("create", {"client_ids": client_ids, "thumbprints": thumbprints})]
    steps = [("add_client_id", c) for c in client_ids if c not in current["client_ids"]]
    steps += [("remove_client_id", c) for c in current["client_ids"] if c not in client_ids]
    if thumbprints and thumbprints != current["thumbprints"]:
        steps.append(("update_thumbprints", thumbprints))
    return steps


def desired(current, url, client_ids, thumbprints):
    """The provider as it is after :func:`plan`'s steps (the ``after`` of a diff whose ``before`` is
    ``current``): given thumbprints replace the current ones, none keep them."""
    after = dict(current or {"url": _host(url)})
    after["client_ids"] = sorted(set(client_ids))
    if thumbprints or current is None:
        after["thumbprints"] = sorted({t.lower() for t in thumbprints})
    return after


def apply(client, settings, arn, steps, url=GITHUB_OIDC_URL, tags=None):
    """Carry out ``steps``; return the provider's ARN."""
    with aws_errors(settings, ACTION, needs=NEEDS):
        for operation, argument in steps:
            if operation == "create":
                arn = _create(client, url, argument, tags)
            elif operation == "add_client_id":
                client.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=argument)
            elif operation == "remove_client_id":
                client.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=argument)
            elif operation == "update_thumbprints":
                client.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=argument)
    return arn


def _create(client, url, argument, tags):
    kwargs = {"Url": url, "ClientIDList": argument["client_ids"]}
    if argument["thumbprints"]:
        kwargs["ThumbprintList"] = argument["thumbprints"]
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    return client.create_open_id_connect_provider(**kwargs)["OpenIDConnectProviderArn"]
