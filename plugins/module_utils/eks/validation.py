# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the platform's eksctl ClusterConfig, before any eksctl call.

The validator knows every field the platform uses and rejects the rest, so that a typo
(``managedNodegroups``) or a risky value (unencrypted volumes, IMDSv1, an unquoted ``1.30``) fails
with the file, the field and the fix. Every problem of a file is reported at once.
"""

from __future__ import annotations

import re

from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError

API_VERSION = "eksctl.io/v1alpha5"
AUTH_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")
ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "AmazonEKSViewPolicy"
SPEC_TAG = "biomage.net/nodegroup-spec"
# eksctl appends nothing to names, but replacements made by `nodegroup_changes: roll` are <name>-<8 hex>
REPLACEMENT_SUFFIX = re.compile(r"-[0-9a-f]{8}$")

TOP_LEVEL_KEYS = {
    "apiVersion",
    "kind",
    "metadata",
    "iam",
    "vpc",
    "availabilityZones",
    "managedNodeGroups",
    "fargateProfiles",
    "addons",
    "addonsConfig",
    "accessConfig",
    "cloudWatch",
    "secretsEncryption",
    "kubernetesNetworkConfig",
}
METADATA_KEYS = {"name", "region", "version", "tags", "annotations"}
IAM_KEYS = {"withOIDC", "serviceAccounts", "podIdentityAssociations", "vpcResourceControllerPolicy", "serviceRoleARN"}
NODEGROUP_KEYS = {
    "name",
    "instanceType",
    "instanceTypes",
    "minSize",
    "maxSize",
    "desiredCapacity",
    "volumeSize",
    "volumeType",
    "volumeEncrypted",
    "disableIMDSv1",
    "amiFamily",
    "spot",
    "privateNetworking",
    "labels",
    "taints",
    "tags",
    "availabilityZones",
    "iam",
    "updateConfig",
}
FARGATE_KEYS = {"name", "selectors", "subnets", "podExecutionRoleARN", "tags"}
SELECTOR_KEYS = {"namespace", "labels"}
ADDON_KEYS = {
    "name",
    "version",
    "resolveConflicts",
    "configurationValues",
    "serviceAccountRoleARN",
    "attachPolicyARNs",
    "wellKnownPolicies",
    "useDefaultPodIdentityAssociations",
    "podIdentityAssociations",
    "tags",
}
ACCESS_CONFIG_KEYS = {"authenticationMode", "bootstrapClusterCreatorAdminPermissions", "accessEntries"}
ACCESS_ENTRY_KEYS = {"principalARN", "type", "kubernetesGroups", "kubernetesUsername", "accessPolicies"}
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "sc1", "st1")
AMI_FAMILIES = (
    "AmazonLinux2023",
    "AmazonLinux2",
    "Bottlerocket",
    "Ubuntu2204",
    "Ubuntu2404",
    "UbuntuPro2204",
    "UbuntuPro2404",
)
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
RESOLVE_CONFLICTS = ("none", "overwrite", "preserve")
NODEGROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,53}$")
K8S_VERSION = re.compile(r"^1\.(\d+)$")
PRINCIPAL_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:(iam|sts)::\d{12}:(user|role|assumed-role)/\S+$")
POLICY_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:eks::aws:cluster-access-policy/[A-Za-z0-9]+$")
# the oldest and newest Kubernetes minor versions this collection has been written for
MIN_K8S_MINOR = 29
MAX_K8S_MINOR = 36


class _Errors:
    """Collects ``path: problem. Fix: ...`` lines for one source file."""

    def __init__(self, source):
        self.source = source
        self.items = []

    def add(self, path, problem, fix):
        self.items.append(f"{self.source}: {path}: {problem}. Fix: {fix}")

    def raise_if_any(self):
        if self.items:
            raise EksError(
                f"{self.source} is not a valid cluster configuration ({len(self.items)} problem"
                f"{'' if len(self.items) == 1 else 's'}, nothing was changed):\n- " + "\n- ".join(self.items),
                kind="invalid",
                problems=list(self.items),
            )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(errors, path, value, allowed):
    if not isinstance(value, dict):
        errors.add(path, f"must be a mapping, not {type(value).__name__}", "write it as key: value lines")
        return False
    for key in sorted(set(value) - allowed):
        errors.add(
            f"{path}.{key}" if path else key,
            "is not a field this platform uses",
            "remove it or correct its spelling (known fields: {})".format(", ".join(sorted(allowed))),
        )
    return True


def _check_match(errors, path, value, pattern, problem, fix):
    """True when ``value`` is a string matching ``pattern``; otherwise the problem is added."""
    if isinstance(value, str) and pattern.match(value):
        return True
    errors.add(path, problem, fix)
    return False


def _check_str_map(errors, path, value):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors.add(path, "must map strings to strings", 'quote the values, e.g. team: "platform"')


def _check_str_list(errors, path, value, non_empty=True):
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        errors.add(path, "must be a list of strings", "write it as a YAML list of names")
    elif non_empty and not value:
        errors.add(path, "must not be empty", "list at least one value")


def kubernetes_minor(version):
    match = K8S_VERSION.match(version or "")
    return int(match.group(1)) if match else None


def _validate_version(errors, path, version):
    if not isinstance(version, str):
        errors.add(
            path,
            f'must be a quoted string such as "1.33", not the number {version!r} (YAML reads 1.30 as 1.3)',
            'quote it: version: "1.33"',
        )
        return
    minor = kubernetes_minor(version)
    if minor is None:
        errors.add(path, f"{version!r} is not a Kubernetes minor version", 'use the form "1.33"')
    elif not MIN_K8S_MINOR <= minor <= MAX_K8S_MINOR:
        errors.add(
            path,
            f"{version} is outside the versions this collection supports (1.{MIN_K8S_MINOR} to 1.{MAX_K8S_MINOR})",
            "choose a supported version",
        )


def _validate_named_list(errors, section, items, validate_item, twice, fix):
    """Validate each item of a list of named entries and report names seen twice; the names seen.

    ``twice`` and ``fix`` word the problem of a repeated name (``'x' <twice>. Fix: <fix>``)."""
    seen = set()
    for index, item in enumerate(items):
        validate_item(errors, f"{section}[{index}]", item)
        name = item.get("name") if isinstance(item, dict) else None
        if name in seen:
            errors.add(f"{section}[{index}].name", f"{name!r} {twice}", fix)
        seen.add(name)
    return seen


def _validate_nodegroup(errors, path, ng):
    if not _check_keys(errors, path, ng, NODEGROUP_KEYS):
        return
    name = ng.get("name")
    valid_name = _check_match(
        errors,
        path + ".name",
        name,
        NODEGROUP_NAME,
        f"{name!r} is not a valid node group name",
        "use 1-54 letters, digits and dashes, starting with a letter",
    )
    if valid_name and REPLACEMENT_SUFFIX.search(name):
        errors.add(
            path + ".name",
            f"{name!r} ends like a replacement name (-<8 hex digits>), "
            "which this collection reserves for rolled node groups",
            "choose another name",
        )
    has_type = "instanceType" in ng
    has_types = "instanceTypes" in ng
    if has_type == has_types:
        errors.add(path, "needs exactly one of instanceType or instanceTypes", "set instanceTypes: [m5.xlarge]")
    elif has_type and not (isinstance(ng["instanceType"], str) and ng["instanceType"]):
        errors.add(path + ".instanceType", "must be an instance type name", "e.g. instanceType: m5.xlarge")
    elif has_types:
        _check_str_list(errors, path + ".instanceTypes", ng["instanceTypes"])
    sizes = {}
    for key in ("minSize", "maxSize", "desiredCapacity"):
        if key not in ng:
            errors.add(path + "." + key, "is required", "set it (the node count bounds are part of the plan)")
        elif not _is_int(ng[key]) or ng[key] < 0:
            errors.add(path + "." + key, "must be a whole number >= 0", f"e.g. {key}: 2")
        else:
            sizes[key] = ng[key]
    if len(sizes) == 3:
        if not sizes["minSize"] <= sizes["desiredCapacity"] <= sizes["maxSize"]:
            errors.add(path, "needs minSize <= desiredCapacity <= maxSize", "adjust the three sizes")
        if sizes["maxSize"] < 1:
            errors.add(path + ".maxSize", "must be at least 1", "set maxSize: 1 or more")
    if not _is_int(ng.get("volumeSize")) or not 1 <= ng.get("volumeSize") <= 16384:
        errors.add(path + ".volumeSize", "is required, in GiB (1-16384)", "e.g. volumeSize: 50")
    if ng.get("volumeType") not in VOLUME_TYPES:
        errors.add(path + ".volumeType", "must be one of {}".format(", ".join(VOLUME_TYPES)), "e.g. volumeType: gp3")
    if ng.get("volumeEncrypted") is not True:
        errors.add(path + ".volumeEncrypted", "must be true (node volumes are encrypted)", "set volumeEncrypted: true")
    if ng.get("disableIMDSv1") is not True:
        errors.add(path + ".disableIMDSv1", "must be true (IMDSv1 stays off)", "set disableIMDSv1: true")
    if ng.get("amiFamily") not in AMI_FAMILIES:
        errors.add(
            path + ".amiFamily", "must be one of {}".format(", ".join(AMI_FAMILIES)), "e.g. amiFamily: AmazonLinux2023"
        )
    for key in ("spot", "privateNetworking"):
        if key in ng and not isinstance(ng[key], bool):
            errors.add(path + "." + key, "must be true or false", f"write {key}: true or {key}: false")
    for key in ("labels", "tags"):
        if key in ng:
            _check_str_map(errors, path + "." + key, ng[key])
    if SPEC_TAG in (ng.get("tags") or {}):
        errors.add(path + ".tags." + SPEC_TAG, "is written by this collection", "remove it")
    if "availabilityZones" in ng:
        _check_str_list(errors, path + ".availabilityZones", ng["availabilityZones"])
    if "iam" in ng and not isinstance(ng["iam"], dict):
        errors.add(path + ".iam", "must be a mapping", "see eksctl's managed node group iam fields")
    if "updateConfig" in ng and not isinstance(ng["updateConfig"], dict):
        errors.add(path + ".updateConfig", "must be a mapping", "e.g. updateConfig: {maxUnavailable: 1}")
    taints = ng.get("taints", [])
    if not isinstance(taints, list):
        errors.add(path + ".taints", "must be a list", "write - {key: k, value: v, effect: NoSchedule}")
    else:
        for t_index, taint in enumerate(taints):
            t_path = f"{path}.taints[{t_index}]"
            if not isinstance(taint, dict) or not isinstance(taint.get("key"), str):
                errors.add(t_path, "needs a key", "write {key: k, value: v, effect: NoSchedule}")
            elif taint.get("effect") not in TAINT_EFFECTS:
                errors.add(
                    t_path + ".effect", "must be one of {}".format(", ".join(TAINT_EFFECTS)), "e.g. effect: NoSchedule"
                )


def _validate_fargate(errors, path, profile):
    if not _check_keys(errors, path, profile, FARGATE_KEYS):
        return
    if not isinstance(profile.get("name"), str) or not profile.get("name"):
        errors.add(path + ".name", "is required", "name the profile, e.g. name: workers")
    selectors = profile.get("selectors")
    if not isinstance(selectors, list) or not 1 <= len(selectors) <= 5:
        errors.add(path + ".selectors", "needs 1 to 5 selectors", "add - namespace: worker-*")
        return
    for s_index, selector in enumerate(selectors):
        s_path = f"{path}.selectors[{s_index}]"
        if not _check_keys(errors, s_path, selector, SELECTOR_KEYS):
            continue
        if not isinstance(selector.get("namespace"), str) or not selector.get("namespace"):
            errors.add(s_path + ".namespace", "is required", "e.g. namespace: pipeline-*")
        if "labels" in selector:
            _check_str_map(errors, s_path + ".labels", selector["labels"])


def _validate_addon(errors, path, addon, cluster_version):
    if not _check_keys(errors, path, addon, ADDON_KEYS):
        return
    name = addon.get("name")
    if not isinstance(name, str) or not name:
        errors.add(path + ".name", "is required", "e.g. name: vpc-cni")
    version = addon.get("version")
    if version is not None and (not isinstance(version, str) or not version):
        errors.add(path + ".version", "must be a version string or latest", 'e.g. version: "v1.19.5"')
    elif name == "kube-proxy" and isinstance(version, str) and version != "latest":
        minor = kubernetes_minor(".".join(version.lstrip("v").split(".")[:2]))
        if minor is not None and kubernetes_minor(cluster_version) not in (None, minor):
            errors.add(
                path + ".version",
                f"kube-proxy {version} does not match the cluster's Kubernetes {cluster_version}",
                f"pin kube-proxy to v{cluster_version}.x together with metadata.version "
                "(for one environment only: eks_cluster_addon_versions)",
            )
    if "resolveConflicts" in addon and addon["resolveConflicts"] not in RESOLVE_CONFLICTS:
        errors.add(
            path + ".resolveConflicts", "must be one of {}".format(", ".join(RESOLVE_CONFLICTS)), "e.g. overwrite"
        )


def _validate_access_entry(errors, path, entry):
    if not _check_keys(errors, path, entry, ACCESS_ENTRY_KEYS):
        return
    principal = entry.get("principalARN")
    _check_match(
        errors,
        path + ".principalARN",
        principal,
        PRINCIPAL_ARN,
        f"{principal!r} is not an IAM user or role ARN",
        "write arn:aws:iam::<account>:role/<name> (list IAM users in infra/cluster_admins instead)",
    )
    if "kubernetesGroups" in entry:
        _check_str_list(errors, path + ".kubernetesGroups", entry["kubernetesGroups"], non_empty=False)
    policies = entry.get("accessPolicies", [])
    if not isinstance(policies, list):
        errors.add(path + ".accessPolicies", "must be a list", "write - policyARN: ... accessScope: {type: cluster}")
        return
    for p_index, policy in enumerate(policies):
        p_path = f"{path}.accessPolicies[{p_index}]"
        if not isinstance(policy, dict) or not POLICY_ARN.match(str(policy.get("policyARN", ""))):
            errors.add(
                p_path + ".policyARN",
                "must be an EKS cluster access policy ARN",
                f"e.g. arn:aws:eks::aws:cluster-access-policy/{VIEW_POLICY}",
            )
            continue
        scope = policy.get("accessScope")
        if not isinstance(scope, dict) or scope.get("type") not in ("cluster", "namespace"):
            errors.add(
                p_path + ".accessScope.type", "must be cluster or namespace", "e.g. accessScope: {type: cluster}"
            )
        elif scope["type"] == "namespace" and not scope.get("namespaces"):
            errors.add(p_path + ".accessScope.namespaces", "is required for type namespace", "list the namespaces")


def _validate_header(errors, config, name, region):
    """apiVersion, kind and metadata; the cluster's version when it is a usable string."""
    _check_keys(errors, "", config, TOP_LEVEL_KEYS | {"nodeGroups"})
    if "nodeGroups" in config:
        errors.add("nodeGroups", "self-managed node groups are not supported", "use managedNodeGroups")
    if config.get("apiVersion") != API_VERSION:
        errors.add(
            "apiVersion",
            "must be {}, not {!r}".format(API_VERSION, config.get("apiVersion")),
            "set apiVersion: " + API_VERSION,
        )
    if config.get("kind") != "ClusterConfig":
        errors.add("kind", "must be ClusterConfig, not {!r}".format(config.get("kind")), "set kind: ClusterConfig")

    metadata = config.get("metadata")
    cluster_version = None
    if metadata is None:
        errors.add("metadata", "is required", 'add metadata: {version: "1.33"}')
    elif _check_keys(errors, "metadata", metadata, METADATA_KEYS):
        if "version" not in metadata:
            errors.add("metadata.version", "is required (the Kubernetes version is pinned)", 'add version: "1.33"')
        else:
            _validate_version(errors, "metadata.version", metadata["version"])
            cluster_version = metadata["version"] if isinstance(metadata["version"], str) else None
        for key, wanted in (("name", name), ("region", region)):
            if key in metadata and wanted is not None and metadata[key] != wanted:
                errors.add(
                    "metadata." + key,
                    f"{metadata[key]!r} differs from the inventory's {wanted!r}",
                    f"remove metadata.{key}: it is filled per environment from the inventory",
                )
        if "tags" in metadata:
            _check_str_map(errors, "metadata.tags", metadata["tags"])
    return cluster_version


def _validate_workloads(errors, config, cluster_version):
    """IAM (OIDC), managed node groups, Fargate profiles and add-ons."""
    iam = config.get("iam")
    if not isinstance(iam, dict) or iam.get("withOIDC") is not True:
        errors.add(
            "iam.withOIDC", "must be true (IRSA roles need the cluster's OIDC provider)", "set iam: {withOIDC: true}"
        )
    else:
        _check_keys(errors, "iam", iam, IAM_KEYS)

    nodegroups = config.get("managedNodeGroups")
    if not isinstance(nodegroups, list) or not nodegroups:
        errors.add("managedNodeGroups", "needs at least one managed node group", "add one (see docs/eks-cluster.md)")
    else:
        seen = _validate_named_list(
            errors,
            "managedNodeGroups",
            nodegroups,
            _validate_nodegroup,
            "is used twice",
            "give each group its own name",
        )
        names = sorted(n for n in seen if isinstance(n, str))
        for ng_name in names:
            for other in names:
                if other != ng_name and other.startswith(ng_name + "-") and REPLACEMENT_SUFFIX.search(other):
                    errors.add("managedNodeGroups", f"{other!r} looks like a replacement of {ng_name!r}", "rename one")

    profiles = config.get("fargateProfiles", [])
    if not isinstance(profiles, list):
        errors.add("fargateProfiles", "must be a list", "write - name: ... selectors: [...]")
    else:
        _validate_named_list(
            errors, "fargateProfiles", profiles, _validate_fargate, "is used twice", "give each profile its own name"
        )

    addons = config.get("addons", [])
    if not isinstance(addons, list):
        errors.add("addons", "must be a list", "write - name: vpc-cni version: ...")
    else:
        _validate_named_list(
            errors,
            "addons",
            addons,
            lambda errs, path, addon: _validate_addon(errs, path, addon, cluster_version),
            "is listed twice",
            "keep one entry",
        )


def _validate_access_config(errors, access):
    if access is None:
        errors.add("accessConfig.authenticationMode", "is required", "set accessConfig: {authenticationMode: API}")
        return
    if not _check_keys(errors, "accessConfig", access, ACCESS_CONFIG_KEYS):
        return
    mode = access.get("authenticationMode")
    if mode == "CONFIG_MAP":
        errors.add(
            "accessConfig.authenticationMode",
            "CONFIG_MAP cannot hold access entries (cluster_admins, cluster_users)",
            "use API (or API_AND_CONFIG_MAP while aws-auth is still in use)",
        )
    elif mode not in ("API", "API_AND_CONFIG_MAP"):
        errors.add(
            "accessConfig.authenticationMode", "must be API or API_AND_CONFIG_MAP", "set authenticationMode: API"
        )
    if "bootstrapClusterCreatorAdminPermissions" in access and not isinstance(
        access["bootstrapClusterCreatorAdminPermissions"], bool
    ):
        errors.add("accessConfig.bootstrapClusterCreatorAdminPermissions", "must be true or false", "write true")
    entries = access.get("accessEntries", [])
    if not isinstance(entries, list):
        errors.add("accessConfig.accessEntries", "must be a list", "write - principalARN: ...")
    else:
        for index, entry in enumerate(entries):
            _validate_access_entry(errors, f"accessConfig.accessEntries[{index}]", entry)


def validate(config, source, name=None, region=None):
    """Raise EksError listing every problem of ``config`` (read from ``source``); return ``config``."""
    errors = _Errors(source)
    cluster_version = _validate_header(errors, config, name, region)
    _validate_workloads(errors, config, cluster_version)
    _validate_access_config(errors, config.get("accessConfig"))
    for key in ("vpc", "cloudWatch", "addonsConfig", "secretsEncryption", "kubernetesNetworkConfig"):
        if key in config and not isinstance(config[key], dict):
            errors.add(key, "must be a mapping", "see eksctl's ClusterConfig schema")
    if "availabilityZones" in config:
        _check_str_list(errors, "availabilityZones", config["availabilityZones"])
    errors.raise_if_any()
    return config


def validate_version(version, source):
    """Raise EksError unless ``version`` (a Kubernetes version override) is one this collection supports."""
    errors = _Errors(source)
    _validate_version(errors, "version", version)
    errors.raise_if_any()
    return version
