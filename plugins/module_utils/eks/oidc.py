# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OIDC issuer of an EKS cluster, in the form IRSA trust policies use."""

from __future__ import annotations

import re

from ansible_collections.biomage.iac.plugins.module_utils.aws import ClientError, aws_error, error_code
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

PROVIDER = re.compile(r"^[a-z0-9.-]+(?::[0-9]+)?(/[A-Za-z0-9._-]+)*$")


class OidcError(BiomageError):
    """The issuer cannot be determined; the message says why and the fix."""


def provider_from_issuer(issuer, source=None):
    """``https://oidc.eks.<region>.amazonaws.com/id/X`` -> ``oidc.eks.<region>.amazonaws.com/id/X``.

    ``source`` (e.g. ``cluster biomage-staging``) starts the error message when there is one."""
    value = (issuer or "").strip()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = value.rstrip("/")
    if not value or not PROVIDER.match(value):
        raise OidcError(
            f"{source + ': ' if source else ''}{issuer!r} is not an OIDC issuer "
            "(expected https://oidc.eks.<region>.amazonaws.com/id/<id> or the same without https://)"
        )
    return value


def cluster_issuer(client, cluster_name, settings):
    """``(found, issuer)`` of a cluster via eks:DescribeCluster."""
    try:
        cluster = client.describe_cluster(name=cluster_name)["cluster"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False, None
        raise aws_error(exc, settings, f"describe EKS cluster {cluster_name}", needs="EKS clusters") from exc
    issuer = ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer")
    return True, issuer
