"""A scripted eksctl for the tests: real-shaped JSON and stderr, a live state it changes, an argv log.

Used two ways:

* in-process: ``FakeEksctl(state).run(argv) -> (rc, stdout, stderr)`` as the module's ``run_command``;
* as an executable: :func:`install` writes an ``eksctl`` script into a folder (put first on PATH) that
  keeps its state in ``state.json`` and appends every argv to ``argv.log`` beside it.

Outputs follow eksctl's own printers: ``get cluster -o json`` is a list holding the EKS Cluster object
(PascalCase keys), ``get nodegroup -o json`` a list of nodegroup summaries, ``get accessentry -o json``
``{principalARN, kubernetesGroups, accessPolicies}`` items, ``get fargateprofile`` eksctl's own
camelCase profiles, ``utils describe-stacks -o json`` CloudFormation Stack objects. A missing cluster
exits 1 with ResourceNotFoundException on stderr.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import sys
from pathlib import Path

import yaml

ACCOUNT = "123456789012"
REGION = "eu-west-1"
OIDC_ID = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
CREATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biomage-ci-deployer"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
MUTATING = {
    ("create", "cluster"),
    ("delete", "cluster"),
    ("upgrade", "cluster"),
    ("upgrade", "nodegroup"),
    ("create", "nodegroup"),
    ("delete", "nodegroup"),
    ("drain", "nodegroup"),
    ("scale", "nodegroup"),
    ("create", "addon"),
    ("update", "addon"),
    ("create", "accessentry"),
    ("delete", "accessentry"),
    ("create", "fargateprofile"),
    ("delete", "fargateprofile"),
    ("utils", "migrate-to-access-entry"),
    ("utils", "update-authentication-mode"),
    ("utils", "write-kubeconfig"),
}
AMI_TYPES = {
    "AmazonLinux2023": "AL2023_x86_64_STANDARD",
    "AmazonLinux2": "AL2_x86_64",
    "Bottlerocket": "BOTTLEROCKET_x86_64",
}
# `eksctl version -o json` of the pinned release (meta/tool-versions.env). Since 0.202.0 eksctl asks EKS for the
# Kubernetes versions it may use (DescribeClusterVersions) and no longer prints EKSServerSupportedVersions; older
# releases did (tests set it to rehearse them).
VERSION_INFO = {
    "Version": "0.230.0",
    "PreReleaseID": "",
    "Metadata": {"BuildDate": "2026-08-13T23:20:02Z", "GitCommit": "6ee3b761"},
}
# the eksbuild each pinned upstream add-on version resolves to (published versions, docs/eks-cluster.md);
# a version not listed resolves to <version>-eksbuild.1
ADDON_BUILDS = {
    "kube-proxy": {"v1.34.0": "v1.34.0-eksbuild.2", "v1.35.0": "v1.35.0-eksbuild.2", "v1.36.0": "v1.36.0-eksbuild.21"},
    "coredns": {"v1.13.2": "v1.13.2-eksbuild.17", "v1.14.3": "v1.14.3-eksbuild.9"},
    "vpc-cni": {"v1.20.4": "v1.20.4-eksbuild.2", "v1.21.1": "v1.21.1-eksbuild.3", "v1.22.4": "v1.22.4-eksbuild.3"},
    "eks-pod-identity-agent": {"v1.3.10": "v1.3.10-eksbuild.3"},
}
STACK_ARN = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack"
CA_DATA = (
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvakNDQWVhZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VRWURWUVFERXdwcmRX"
    "SmwKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
)
NOT_FOUND = (
    "Error: unable to describe cluster control plane: operation error EKS: DescribeCluster, https response error "
    "StatusCode: 404, RequestID: 5d0b8c6a-3c1e-4f0a-9b7e-2f1e0c9d8a7b, ResourceNotFoundException: No cluster found "
    "for name: {name}.\n"
)
EXPIRED = (
    "Error: checking AWS STS access \u2013 cannot get role ARN for current session: operation error STS: "
    "GetCallerIdentity, https response error StatusCode: 403, RequestID: 0c3f9f6e-8d1e-4b5e-a1f3-6c0d2a9e4b71, "
    "api error ExpiredToken: The security token included in the request is expired\n"
)


def log_line(text: str, symbol: str = "\u2139") -> str:
    return f"2025-09-30 10:15:42 [{symbol}]  {text}\n"


def _flag(argv: list[str], name: str, default: str | None = None) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def cluster_object(name: str, version: str, mode: str = "API") -> dict:
    return {
        "Name": name,
        "Arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}",
        "CreatedAt": "2025-03-02T10:15:42.123Z",
        "Version": version,
        "Endpoint": f"https://{OIDC_ID}.gr7.{REGION}.eks.amazonaws.com",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/eksctl-{name}-cluster-ServiceRole-AbCdEfGh1234",
        "ResourcesVpcConfig": {
            "SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
            "ClusterSecurityGroupId": "sg-0fedcba9876543210",
            "VpcId": "vpc-0a1b2c3d4e5f60718",
            "EndpointPublicAccess": True,
            "EndpointPrivateAccess": False,
            "PublicAccessCidrs": ["0.0.0.0/0"],
        },
        "KubernetesNetworkConfig": {"ServiceIpv4Cidr": "10.100.0.0/16", "ServiceIpv6Cidr": None, "IpFamily": "ipv4"},
        "Logging": {"ClusterLogging": [{"Types": ["api", "audit", "authenticator"], "Enabled": True}]},
        "Identity": {"Oidc": {"Issuer": f"https://oidc.eks.{REGION}.amazonaws.com/id/{OIDC_ID}"}},
        "Status": "ACTIVE",
        "CertificateAuthority": {"Data": CA_DATA},
        "ClientRequestToken": None,
        "PlatformVersion": "eks.12",
        "Tags": {"alpha.eksctl.io/cluster-name": name, "eksctl.cluster.k8s.io/v1alpha1/cluster-name": name},
        "EncryptionConfig": None,
        "ConnectorConfig": None,
        "Id": None,
        "Health": {"Issues": []},
        "OutpostConfig": None,
        "AccessConfig": {"BootstrapClusterCreatorAdminPermissions": None, "AuthenticationMode": mode},
        "UpgradePolicy": {"SupportType": "EXTENDED"},
        "ZonalShiftConfig": None,
    }


def nodegroup_from_config(cluster: str, ng: dict, version: str) -> dict:
    """A live node group record (summary + stack tags) as eksctl would create it from a config entry."""
    types = ng.get("instanceTypes") or [ng.get("instanceType")]
    return {
        "summary": {
            "StackName": f"eksctl-{cluster}-nodegroup-{ng['name']}",
            "Cluster": cluster,
            "Name": ng["name"],
            "Status": "ACTIVE",
            "MaxSize": ng.get("maxSize", 2),
            "MinSize": ng.get("minSize", 2),
            "DesiredCapacity": ng.get("desiredCapacity", 2),
            "InstanceType": ",".join(types),
            "ImageID": AMI_TYPES.get(ng.get("amiFamily", "AmazonLinux2023"), "CUSTOM"),
            "CreationTime": "2025-03-02T10:31:07.512Z",
            "NodeInstanceRoleARN": f"arn:aws:iam::{ACCOUNT}:role/eksctl-{cluster}-nodegroup-NodeInstanceRole-Q1w2E3r4",
            "AutoScalingGroupName": f"eks-{ng['name']}-f2c9a6e1-3b5d-7a4c-9e8f-0a1b2c3d4e5f",
            "Version": version,
            "Type": "managed",
        },
        "tags": dict(ng.get("tags") or {}),
    }


def new_state(cluster: str = "biomage-staging") -> dict:
    """No cluster yet."""
    return {
        "cluster_name": cluster,
        "cluster": None,
        "nodegroups": {},
        "addons": {},
        "fargate": {},
        "access": {},
        "oidc_associated": False,
        "version": copy.deepcopy(VERSION_INFO),
        "errors": [],
        "drained": [],
    }


def state_from_config(config: dict, *, version: str | None = None, mode: str | None = None) -> dict:
    """A live cluster exactly as ``create cluster`` with ``config`` (a rendered, effective config) leaves it."""
    fake = FakeEksctl(new_state(config["metadata"]["name"]))
    fake._create_from_config(config)
    if version:
        fake.state["cluster"]["Version"] = version
        for ng in fake.state["nodegroups"].values():
            ng["summary"]["Version"] = version
    if mode:
        fake.state["cluster"]["AccessConfig"]["AuthenticationMode"] = mode
    return fake.state


class FakeEksctl:
    def __init__(self, state: dict) -> None:
        self.state = state
        self.calls: list[list[str]] = []

    # -- helpers ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.state["cluster_name"]

    def mutating_calls(self) -> list[list[str]]:
        return [argv for argv in self.calls if tuple(argv[1:3]) in MUTATING or _approved(argv)]

    def _create_from_config(self, config: dict) -> None:
        meta = config["metadata"]
        mode = config.get("accessConfig", {}).get("authenticationMode", "API_AND_CONFIG_MAP")
        self.state["cluster"] = cluster_object(meta["name"], meta["version"], mode)
        for ng in config.get("managedNodeGroups") or []:
            self.state["nodegroups"][ng["name"]] = nodegroup_from_config(meta["name"], ng, meta["version"])
        for addon in config.get("addons") or []:
            self.state["addons"][addon["name"]] = _addon(addon["name"], addon.get("version"))
        for profile in config.get("fargateProfiles") or []:
            self.state["fargate"][profile["name"]] = _profile(meta["name"], profile)
        self.state["access"][CREATOR_ROLE] = _entry(CREATOR_ROLE, [ADMIN_POLICY])
        node_role = f"arn:aws:iam::{ACCOUNT}:role/eksctl-{meta['name']}-nodegroup-NodeInstanceRole-Q1w2E3r4"
        self.state["access"][node_role] = {"principalARN": node_role, "kubernetesGroups": ["system:nodes"]}
        for entry in config.get("accessConfig", {}).get("accessEntries") or []:
            self.state["access"][entry["principalARN"]] = _entry_from_config(entry)
        self.state["oidc_associated"] = bool(config.get("iam", {}).get("withOIDC"))

    # -- dispatch -----------------------------------------------------------------------------
    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        args = list(argv[1:])
        for error in self.state.get("errors") or []:
            if args[: len(error["match"])] == error["match"]:
                return error.get("rc", 1), error.get("stdout", ""), error["stderr"]
        if args[:1] == ["version"]:
            return self._version(args)
        handler = getattr(self, "_" + "_".join(a.replace("-", "_") for a in args[:2]), None)
        if handler is None:
            return 1, "", f'Error: unknown command {shlex.join(args)!r} for "eksctl"\n'
        if tuple(args[:2]) not in {("create", "cluster"), ("get", "cluster")} and self.state["cluster"] is None:
            return 1, "", NOT_FOUND.format(name=self.name)
        return handler(args)

    # -- reads ----------------------------------------------------------------------------------
    def _version(self, args: list[str]) -> tuple[int, str, str]:
        if "-o" in args:
            return 0, json.dumps(self.state["version"]) + "\n", ""
        return 0, self.state["version"]["Version"] + "\n", ""

    def _get_cluster(self, args: list[str]) -> tuple[int, str, str]:
        if self.state["cluster"] is None:
            return 1, "", NOT_FOUND.format(name=_flag(args, "--name"))
        return 0, json.dumps([self.state["cluster"]], indent=4) + "\n", ""

    def _get_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        wanted = _flag(args, "--name")
        groups = [g["summary"] for n, g in sorted(self.state["nodegroups"].items()) if wanted in (None, n)]
        if wanted and not groups:
            return 1, "", f"Error: nodegroup with name {wanted} not found\n"
        return 0, json.dumps(groups, indent=4) + "\n", log_line("getting all nodegroup stacks")

    def _utils_describe_stacks(self, args: list[str]) -> tuple[int, str, str]:
        name = self.name
        stacks = [
            {
                "StackId": f"{STACK_ARN}/eksctl-{name}-cluster/3b1e6f40-f7a1-11ef-9c1f-0a1b2c3d4e5f",
                "StackName": f"eksctl-{name}-cluster",
                "Description": "EKS cluster (dedicated VPC: true, dedicated IAM: true) [created and managed by eksctl]",
                "CreationTime": "2025-03-02T10:15:40.101Z",
                "StackStatus": "CREATE_COMPLETE",
                "DisableRollback": False,
                "Capabilities": ["CAPABILITY_IAM"],
                "Tags": [
                    {"Key": "alpha.eksctl.io/cluster-name", "Value": name},
                    {"Key": "eksctl.cluster.k8s.io/v1alpha1/cluster-name", "Value": name},
                    {"Key": "alpha.eksctl.io/eksctl-version", "Value": "0.215.0"},
                ],
            }
        ]
        for ng_name, group in sorted(self.state["nodegroups"].items()):
            tags = {
                "alpha.eksctl.io/cluster-name": name,
                "alpha.eksctl.io/nodegroup-name": ng_name,
                "alpha.eksctl.io/nodegroup-type": "managed",
                "alpha.eksctl.io/eksctl-version": "0.215.0",
                **group["tags"],
            }
            stacks.append(
                {
                    "StackId": f"{STACK_ARN}/eksctl-{name}-nodegroup-{ng_name}/5c2d7a90-f7a3-11ef-8e2d-0a1b2c3d4e5f",
                    "StackName": f"eksctl-{name}-nodegroup-{ng_name}",
                    "Description": "EKS Managed Nodes (SSH access: false) [created by eksctl]",
                    "CreationTime": "2025-03-02T10:31:05.377Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "DisableRollback": False,
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            )
        return 0, json.dumps(stacks, indent=4) + "\n", ""

    def _get_addon(self, args: list[str]) -> tuple[int, str, str]:
        addons = [self.state["addons"][name] for name in sorted(self.state["addons"])]
        out = json.dumps(addons, indent=4) if addons else "null"
        return 0, out + "\n", log_line(f'Kubernetes version "{self.state["cluster"]["Version"]}" in use by cluster')

    def _get_fargateprofile(self, args: list[str]) -> tuple[int, str, str]:
        return 0, json.dumps([self.state["fargate"][n] for n in sorted(self.state["fargate"])], indent=4) + "\n", ""

    def _get_accessentry(self, args: list[str]) -> tuple[int, str, str]:
        if self.state["cluster"]["AccessConfig"]["AuthenticationMode"] == "CONFIG_MAP":
            return 1, "", "Error: access entries are disabled for cluster authentication mode CONFIG_MAP\n"
        return 0, json.dumps([self.state["access"][a] for a in sorted(self.state["access"])], indent=4) + "\n", ""

    def _utils_associate_iam_oidc_provider(self, args: list[str]) -> tuple[int, str, str]:
        meta = f'cluster "{self.name}" in "{REGION}"'
        if self.state["oidc_associated"]:
            return 0, "", log_line(f"IAM Open ID Connect provider is already associated with {meta}")
        if "--approve" not in args:
            return (
                0,
                "",
                log_line(f"(plan) would create IAM Open ID Connect provider for {meta}")
                + log_line("no changes were applied, run again with '--approve' to apply the changes", "!"),
            )
        self.state["oidc_associated"] = True
        return 0, "", log_line(f"created IAM Open ID Connect provider for {meta}", "\u2714")

    # -- changes --------------------------------------------------------------------------------
    def _load(self, args: list[str]) -> dict:
        return yaml.safe_load(Path(_flag(args, "--config-file")).read_text())

    def _create_cluster(self, args: list[str]) -> tuple[int, str, str]:
        config = self._load(args)
        if self.state["cluster"] is not None:
            return (
                1,
                "",
                f'Error: creating CloudFormation stack "eksctl-{self.name}-cluster": AlreadyExistsException\n',
            )
        self._create_from_config(config)
        return 0, "", log_line(f'EKS cluster "{self.name}" in "{REGION}" region is ready', "\u2714")

    def _delete_cluster(self, args: list[str]) -> tuple[int, str, str]:
        self.state.update(cluster=None, nodegroups={}, addons={}, fargate={}, access={}, oidc_associated=False)
        return 0, "", log_line("all cluster resources were deleted", "\u2714")

    def _upgrade_cluster(self, args: list[str]) -> tuple[int, str, str]:
        current = self.state["cluster"]["Version"]
        wanted = _flag(args, "--version")
        if int(wanted.split(".")[1]) != int(current.split(".")[1]) + 1:
            return 1, "", f"Error: cannot upgrade from {current} to {wanted}: only one minor version at a time\n"
        self.state["cluster"]["Version"] = wanted
        return 0, "", log_line(f'cluster "{self.name}" control plane has been upgraded to version "{wanted}"', "\u2714")

    def _upgrade_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        self.state["nodegroups"][_flag(args, "--name")]["summary"]["Version"] = _flag(args, "--kubernetes-version")
        return 0, "", log_line("nodegroup successfully upgraded", "\u2714")

    def _scale_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        summary = self.state["nodegroups"][_flag(args, "--name")]["summary"]
        summary.update(
            DesiredCapacity=int(_flag(args, "--nodes")),
            MinSize=int(_flag(args, "--nodes-min")),
            MaxSize=int(_flag(args, "--nodes-max")),
        )
        return 0, "", log_line("nodegroup successfully scaled", "\u2714")

    def _create_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        config = self._load(args)
        include = (_flag(args, "--include") or "").split(",")
        for ng in config.get("managedNodeGroups") or []:
            if ng["name"] in include and ng["name"] not in self.state["nodegroups"]:
                record = nodegroup_from_config(self.name, ng, self.state["cluster"]["Version"])
                self.state["nodegroups"][ng["name"]] = record
        return 0, "", log_line(f'created {len(include)} managed nodegroup(s) in cluster "{self.name}"', "\u2714")

    def _drain_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        self.state["drained"].append(_flag(args, "--name"))
        return 0, "", log_line(f"drained all nodes: [ip-192-168-12-34.{REGION}.compute.internal]", "\u2714")

    def _delete_nodegroup(self, args: list[str]) -> tuple[int, str, str]:
        config = self._load(args)
        keep = {ng["name"] for ng in config.get("managedNodeGroups") or []}
        gone = [n for n in self.state["nodegroups"] if n not in keep]
        if "--approve" in args:
            for name in gone:
                del self.state["nodegroups"][name]
        return 0, "", log_line(f'deleted {len(gone)} nodegroup(s) from cluster "{self.name}"', "\u2714")

    def _create_addon(self, args: list[str]) -> tuple[int, str, str]:
        name = _flag(args, "--name")
        self.state["addons"][name] = _addon(name, _flag(args, "--version"))
        return 0, "", log_line("successfully created addon", "\u2714")

    def _update_addon(self, args: list[str]) -> tuple[int, str, str]:
        name = _flag(args, "--name")
        self.state["addons"][name] = _addon(name, _flag(args, "--version"))
        return 0, "", log_line(f'addon "{name}" active', "\u2714")

    def _create_accessentry(self, args: list[str]) -> tuple[int, str, str]:
        for entry in self._load(args).get("accessConfig", {}).get("accessEntries") or []:
            if entry["principalARN"] in self.state["access"]:
                return 1, "", f"Error: ResourceInUseException: access entry {entry['principalARN']} already exists\n"
            self.state["access"][entry["principalARN"]] = _entry_from_config(entry)
        return 0, "", log_line("access entries created", "\u2714")

    def _delete_accessentry(self, args: list[str]) -> tuple[int, str, str]:
        self.state["access"].pop(_flag(args, "--principal-arn"), None)
        return 0, "", log_line("access entry deleted", "\u2714")

    def _create_fargateprofile(self, args: list[str]) -> tuple[int, str, str]:
        for profile in self._load(args).get("fargateProfiles") or []:
            self.state["fargate"][profile["name"]] = _profile(self.name, profile)
        return 0, "", log_line("created Fargate profile(s)", "\u2714")

    def _delete_fargateprofile(self, args: list[str]) -> tuple[int, str, str]:
        self.state["fargate"].pop(_flag(args, "--name"), None)
        return 0, "", log_line("deleted Fargate profile", "\u2714")

    def _utils_migrate_to_access_entry(self, args: list[str]) -> tuple[int, str, str]:
        self.state["cluster"]["AccessConfig"]["AuthenticationMode"] = _flag(args, "--target-authentication-mode")
        return 0, "", log_line("authentication mode was successfully updated", "\u2714")

    def _utils_write_kubeconfig(self, args: list[str]) -> tuple[int, str, str]:
        path = Path(_flag(args, "--kubeconfig"))
        stand_in = self.state.get("kubeconfig_of_api_server")
        if stand_in:  # the "cluster" is a real local API server: hand out its kubeconfig
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Path(stand_in).read_text())
            return 0, "", log_line(f'saved kubeconfig as "{path}"', "\u2714")
        cluster = self.state["cluster"]
        context = f"{self.name}.{REGION}.eksctl.io"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": cluster["Endpoint"],
                        "certificate-authority-data": cluster["CertificateAuthority"]["Data"],
                    },
                }
            ],
            "contexts": [{"name": f"eksctl@{context}", "context": {"cluster": context, "user": f"eksctl@{context}"}}],
            "current-context": f"eksctl@{context}",
            "users": [
                {
                    "name": f"eksctl@{context}",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--output",
                                "json",
                                "--cluster-name",
                                self.name,
                                "--region",
                                REGION,
                            ],
                        }
                    },
                }
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document))
        return 0, "", log_line(f'saved kubeconfig as "{path}"', "\u2714")


def _approved(argv: list[str]) -> bool:
    return "--approve" in argv


def _addon(name: str, version: str | None) -> dict:
    if not version or version == "latest":
        resolved = {"vpc-cni": "v1.20.1-eksbuild.3", "coredns": "v1.12.2-eksbuild.4"}.get(name, "v1.3.8-eksbuild.2")
    else:
        builds = ADDON_BUILDS.get(name, {})
        resolved = version if "eksbuild" in version else builds.get(version, f"{version}-eksbuild.1")
    return {
        "Name": name,
        "Version": resolved,
        "NewerVersion": "",
        "IAMRole": f"arn:aws:iam::{ACCOUNT}:role/eksctl-addon-{name}-Role1-7H5Y2K9W" if name == "vpc-cni" else "",
        "Status": "ACTIVE",
        "ConfigurationValues": "",
        "Issues": None,
        "PodIdentityAssociations": None,
    }


def _profile(cluster: str, profile: dict) -> dict:
    return {
        "name": profile["name"],
        "podExecutionRoleARN": f"arn:aws:iam::{ACCOUNT}:role/eksctl-{cluster}-cluster-FargatePodExecutionRole-R2d2C3po",
        "selectors": copy.deepcopy(profile["selectors"]),
        "subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
        "status": "ACTIVE",
    }


def _entry(arn: str, policies: list[str]) -> dict:
    return {
        "principalARN": arn,
        "accessPolicies": [{"policyARN": p, "accessScope": {"type": "cluster"}} for p in policies],
    }


def _entry_from_config(entry: dict) -> dict:
    result = {"principalARN": entry["principalARN"], "accessPolicies": copy.deepcopy(entry.get("accessPolicies") or [])}
    if entry.get("kubernetesGroups"):
        result["kubernetesGroups"] = list(entry["kubernetesGroups"])
    return result


# -- the executable form ----------------------------------------------------------------------------
SCRIPT = """#!{python}
import sys
sys.path.insert(0, {root!r})
from tests.lib.fake_eksctl import main
sys.exit(main())
"""


def install(folder: Path, state: dict) -> Path:
    """Write ``eksctl`` (an executable using this module) and its state into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])
    script = folder / "eksctl"
    script.write_text(SCRIPT.format(python=sys.executable, root=root))
    script.chmod(0o755)
    (folder / "state.json").write_text(json.dumps(state, indent=1))
    (folder / "argv.log").write_text("")
    return script


def logged_argv(folder: Path) -> list[list[str]]:
    return [json.loads(line) for line in (folder / "argv.log").read_text().splitlines() if line]


def main() -> int:
    folder = Path(os.path.realpath(sys.argv[0])).parent
    state_file = folder / "state.json"
    fake = FakeEksctl(json.loads(state_file.read_text()))
    argv = ["eksctl", *sys.argv[1:]]
    with (folder / "argv.log").open("a") as log:
        log.write(json.dumps(argv) + "\n")
    rc, out, err = fake.run(argv)
    state_file.write_text(json.dumps(fake.state, indent=1))
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc
