# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's IAM OIDC provider for GitHub Actions (``token.actions.githubusercontent.com``).

It is one per account, shared by every CI role, so it is not in any repository's stack. It is
managed with IAM calls (the local AWS emulator cannot create it through CloudFormation): found by
its URL, created when missing, and its client ids (audiences) and thumbprints brought to the
desired lists. Tags are not compared (IAM does not return them with the provider on every backend).
"""

from __future__ import annotations

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
DEFAULT_CLIENT_IDS = ("sts.amazonaws.com",)


def _host(url):
    return url.split("://", 1)[-1].rstrip("/")


def find(client, url=GITHUB_OIDC_URL):
    """``(arn, {"url", "client_ids", "thumbprints"})`` of the provider for ``url``, or ``(None, None)``."""
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


def apply(client, arn, steps, url=GITHUB_OIDC_URL, tags=None):
    """Carry out ``steps``; return the provider's ARN."""
    for operation, argument in steps:
        if operation == "create":
            kwargs = {"Url": url, "ClientIDList": argument["client_ids"]}
            if argument["thumbprints"]:
                kwargs["ThumbprintList"] = argument["thumbprints"]
            if tags:
                kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
            arn = client.create_open_id_connect_provider(**kwargs)["OpenIDConnectProviderArn"]
        elif operation == "add_client_id":
            client.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=argument)
        elif operation == "remove_client_id":
            client.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=argument)
        elif operation == "update_thumbprints":
            client.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=argument)
    return arn
