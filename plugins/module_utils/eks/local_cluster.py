# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The development cluster (a local Kubernetes API server) registered with the AWS emulator the way
eksctl leaves a cluster in AWS: an EKS cluster of that name whose DescribeCluster reports the API
server's endpoint and service-account issuer, and the IAM OIDC provider of that issuer (what eksctl's
``iam.withOIDC`` creates). Roles then read the cluster with the same calls in every environment
(``eks_oidc_provider_info``: eks:DescribeCluster).

moto invents an issuer for every cluster; the stack's patch ``eks-cluster-reports-its-issuer``
(tools/devstack/moto_ext.py) makes a cluster tagged with :data:`ISSUER_TAG` and :data:`ENDPOINT_TAG`
report those instead, as EKS reports the cluster's own. Nothing here is ever sent to AWS itself:
:func:`check_emulator` refuses any endpoint that is not on this machine.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from urllib.parse import urlparse

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.module_utils.aws import ClientError, aws_errors, error_code
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

ISSUER_TAG = "biomage.devstack/oidc-issuer"
ENDPOINT_TAG = "biomage.devstack/endpoint"
CLIENT_IDS = ["sts.amazonaws.com"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
NEEDS = "EKS clusters and IAM OIDC providers of the emulator"


class LocalClusterError(BiomageError):
    """The local cluster cannot be registered; the message says why and the fix."""


def server_options(params, server):
    """``issuer``, ``endpoint`` and ``kubernetes_version`` (``major.minor``): the options given, else what the API
    server reported (``server``: :func:`kube.discovery.cluster_info`'s result, None without a kubeconfig)."""
    names = ("issuer", "endpoint", "kubernetes_version")
    if server is None:
        missing = [name for name in names if not params.get(name)]
        if missing:
            raise LocalClusterError(
                f"{', '.join(missing)} must be given when no kubeconfig is: they are read from the API server only "
                "through one.",
                fix="pass kubeconfig (the local stack's KUBECONFIG), or all of issuer, endpoint, kubernetes_version",
            )
        return {name: params[name] for name in names}
    if not params.get("issuer") and not server.get("oidc_issuer"):
        raise LocalClusterError(
            f"the Kubernetes API server at {server['endpoint']} serves no OIDC discovery document, so the IAM roles "
            "for service accounts would have no issuer to trust.",
            fix="restart the local stack (make dev-down && make dev-up)",
        )
    version = re.match(r"v?(\d+\.\d+)", server.get("version") or "")
    return {
        "issuer": params.get("issuer") or server["oidc_issuer"],
        "endpoint": params.get("endpoint") or server["endpoint"],
        "kubernetes_version": params.get("kubernetes_version") or (version[1] if version else server.get("version")),
    }


def check_emulator(endpoint_url):
    """Raise unless ``endpoint_url`` is an emulator on this machine (never register in AWS)."""
    host = urlparse(endpoint_url or "").hostname
    if host not in LOOPBACK:
        raise LocalClusterError(
            f"endpoint_url {endpoint_url or '(none)'} is not a local AWS emulator: a local cluster is registered "
            "only with the development stack's emulator.",
            fix="in AWS, eksctl creates the cluster (eks_cluster_mode: eksctl); locally, start the stack (make dev-up)",
        )


def ca_thumbprint(pem):
    """The SHA-1 thumbprint (40 hex characters) IAM keeps for the certificate authority of an issuer."""
    return hashlib.sha1(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()  # noqa: S324 - IAM's format, not security


def desired_cluster(name, version, role_arn, subnet_ids, security_group_ids, issuer, endpoint):
    return {
        "name": name,
        "version": version,
        "roleArn": role_arn,
        "subnetIds": sorted(subnet_ids),
        "securityGroupIds": sorted(security_group_ids),
        "tags": {ISSUER_TAG: issuer, ENDPOINT_TAG: endpoint},
    }


def read_cluster(client, settings, name):
    """The registered cluster as :func:`desired_cluster` shapes it (plus arn, issuer, endpoint), or None."""
    with aws_errors(settings, f"describe EKS cluster {name} in the emulator", needs=NEEDS):
        try:
            cluster = client.describe_cluster(name=name)["cluster"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
    vpc = cluster.get("resourcesVpcConfig") or {}
    tags = cluster.get("tags") or {}
    return {
        "name": name,
        "version": cluster.get("version"),
        "roleArn": cluster.get("roleArn"),
        "subnetIds": sorted(vpc.get("subnetIds") or []),
        "securityGroupIds": sorted(vpc.get("securityGroupIds") or []),
        "tags": {k: tags[k] for k in (ISSUER_TAG, ENDPOINT_TAG) if k in tags},
        "arn": cluster.get("arn"),
        "issuer": ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer"),
        "endpoint": cluster.get("endpoint"),
    }


def plan_cluster(current, desired):
    """``(step, reason)``: ``create``, ``replace`` (the network, role or version changed: a cluster's
    network cannot change in place), ``tag`` (issuer or endpoint changed) or ``None``."""
    if current is None:
        return "create", "not registered with the emulator"
    changed = [k for k in ("version", "roleArn", "subnetIds", "securityGroupIds") if current[k] != desired[k]]
    if changed:
        return "replace", f"{', '.join(changed)} changed"
    if current["tags"] != desired["tags"]:
        return "tag", "issuer or endpoint changed"
    return None, ""


def apply_cluster(client, settings, step, current, desired):
    with aws_errors(settings, f"register EKS cluster {desired['name']} with the emulator", needs=NEEDS):
        if step == "tag":
            client.tag_resource(resourceArn=current["arn"], tags=desired["tags"])
            return
        if step == "replace":
            client.delete_cluster(name=desired["name"])
        client.create_cluster(
            name=desired["name"],
            version=desired["version"],
            roleArn=desired["roleArn"],
            resourcesVpcConfig={"subnetIds": desired["subnetIds"], "securityGroupIds": desired["securityGroupIds"]},
            tags=dict(desired["tags"], **{"alpha.eksctl.io/cluster-name": desired["name"]}),
        )


def _host(url):
    return url.split("://", 1)[-1].rstrip("/")


def read_provider(client, settings, issuer):
    """``(arn, {"client_ids", "thumbprints"})`` of the IAM OIDC provider of ``issuer``, or ``(None, None)``."""
    with aws_errors(settings, f"read the IAM OIDC provider of {issuer}", needs=NEEDS):
        for entry in client.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
            if entry["Arn"].endswith(":oidc-provider/" + _host(issuer)):
                found = client.get_open_id_connect_provider(OpenIDConnectProviderArn=entry["Arn"])
                return entry["Arn"], {
                    "client_ids": sorted(found.get("ClientIDList") or []),
                    "thumbprints": sorted(t.lower() for t in found.get("ThumbprintList") or []),
                }
    return None, None


def plan_provider(current, thumbprint):
    if current is None:
        return "create", "no IAM OIDC provider for the issuer"
    if current["client_ids"] != CLIENT_IDS or (thumbprint and current["thumbprints"] != [thumbprint]):
        return "update", "client ids or thumbprint changed"
    return None, ""


def apply_provider(client, settings, step, arn, issuer, thumbprint, current):
    """Create or update the provider; its ARN."""
    with aws_errors(settings, f"register the IAM OIDC provider of {issuer}", needs=NEEDS):
        if step == "create":
            kwargs = {"Url": issuer, "ClientIDList": CLIENT_IDS}
            if thumbprint:
                kwargs["ThumbprintList"] = [thumbprint]
            return client.create_open_id_connect_provider(**kwargs)["OpenIDConnectProviderArn"]
        for client_id in sorted(set(CLIENT_IDS) - set(current["client_ids"])):
            client.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id)
        for client_id in sorted(set(current["client_ids"]) - set(CLIENT_IDS)):
            client.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=client_id)
        if thumbprint and current["thumbprints"] != [thumbprint]:
            client.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=[thumbprint])
        return arn


def plan_entries(name, cluster_step, cluster_reason, issuer, provider_step, provider_reason):
    """The two resources in the collection's plan shape."""
    actions = {"create": "create", "replace": "replace", "tag": "update", "update": "update", None: "unchanged"}
    return [
        plan_shape.entry("EKS cluster (emulator)", name, actions[cluster_step], cluster_reason),
        plan_shape.entry("IAM OIDC provider", _host(issuer), actions[provider_step], provider_reason),
    ]
