# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning: compare the desired ClusterConfig with what eksctl reports, and say what to do.

Nothing here runs a command. :func:`build_plan` takes the rendered config and the live state (the
parsed JSON of ``eksctl get ...``) and returns a :class:`Plan`: the actions in the order they will
be applied, the effective config handed to eksctl (node groups under their live names), and a
``{before, after}`` summary for ``--diff``. Node groups are planned by :mod:`.nodegroups`; this
module plans the control plane version, the authentication mode, add-ons, Fargate profiles and
access entries, and puts the whole plan together.
"""

from __future__ import annotations

import copy

from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.nodegroups import (
    NODEGROUP_CHANGES,
    check_skew,
    describe_spec,
    effective_config,
    immutable_error,
    live_nodegroups,
    nodegroup_spec,
    plan_nodegroups,
    sizes,
)
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import AUTH_MODES, kubernetes_minor


# -- control plane, authentication, add-ons, Fargate, access entries ----------------------------
def plan_versions(live_version, desired_version, source, max_steps=1):
    """The minor versions to step through, one at a time (EKS upgrades one minor per step).

    A run takes at most ``max_steps`` of them: a longer jump is refused before anything changes, so each
    minor is a change of the config of its own, with its add-on versions and node groups following it.
    """
    live_minor, desired_minor = kubernetes_minor(live_version), kubernetes_minor(desired_version)
    if live_minor is None or desired_minor is None or live_minor == desired_minor:
        return []
    if desired_minor < live_minor:
        raise EksError(
            f"{source} asks for Kubernetes {desired_version} but the cluster runs {live_version}: EKS cannot "
            f"downgrade. Fix: set metadata.version (or eks_cluster_kubernetes_version) to {live_version} or newer.",
            kind="invalid",
        )
    steps = [f"1.{minor}" for minor in range(live_minor + 1, desired_minor + 1)]
    if len(steps) > max_steps:
        raise EksError(
            f"{source} asks for Kubernetes {desired_version} but the cluster runs {live_version}: that is "
            f"{len(steps)} minor versions, and a run upgrades at most {max_steps} (EKS moves one minor at a time; "
            "the add-on versions and node groups follow each step). Nothing was changed. Fix: set "
            f"metadata.version (or eks_cluster_kubernetes_version) to {steps[0]} with that minor's add-on "
            f"versions, run, then continue one minor per run (docs/eks-cluster.md), or raise "
            f"eks_cluster_max_version_steps to {len(steps)}.",
            kind="invalid",
            steps=steps,
        )
    return steps


def live_auth_mode(cluster):
    access = cluster.get("AccessConfig") or {}
    return access.get("AuthenticationMode") or "CONFIG_MAP"


def plan_auth_mode(live_mode, desired_mode, source):
    if AUTH_MODES.index(desired_mode) < AUTH_MODES.index(live_mode):
        raise EksError(
            f"the cluster's authentication mode is {live_mode} and {source} asks for {desired_mode}, but it only "
            "moves forward (CONFIG_MAP -> API_AND_CONFIG_MAP -> API). "
            f"Fix: set accessConfig.authenticationMode: {live_mode}.",
            kind="invalid",
        )
    return AUTH_MODES[AUTH_MODES.index(live_mode) + 1 : AUTH_MODES.index(desired_mode) + 1]


def _addon_matches(live_version, wanted):
    return wanted in (live_version or "")


def plan_addons(desired, live, upgrading):
    """Create missing add-ons; update pinned ones whose version differs, tracked (latest) ones when newer exist."""
    live_by_name = {item.get("Name"): item for item in live or []}
    result = {"create": [], "update": []}
    for addon in desired:
        name, wanted = addon["name"], addon.get("version")
        current = live_by_name.get(name)
        if current is None:
            result["create"].append({"name": name, "version": wanted or "default"})
            continue
        live_version = current.get("Version")
        if wanted == "latest":
            newer = current.get("NewerVersion") or ""
            if newer and newer != "-":
                result["update"].append({"name": name, "from": live_version, "to": "latest"})
            elif upgrading:
                result["update"].append({"name": name, "from": live_version, "to": "latest (after the upgrade)"})
        elif wanted and not _addon_matches(live_version, wanted):
            result["update"].append({"name": name, "from": live_version, "to": wanted})
    return result


def _selectors(profile):
    return sorted((s.get("namespace"), sorted((s.get("labels") or {}).items())) for s in profile.get("selectors") or [])


def plan_fargate(desired, live, source):
    live_by_name = {item.get("name"): item for item in live or []}
    wanted = {p["name"]: p for p in desired}
    changed = [n for n in wanted if n in live_by_name and _selectors(wanted[n]) != _selectors(live_by_name[n])]
    if changed:
        raise EksError(
            f"Fargate profile(s) {', '.join(repr(n) for n in changed)} changed selectors in {source}; Fargate "
            "profiles are immutable and nothing was changed. Fix: give the changed profile a new name (the new "
            "profile is created before the old one is deleted).",
            kind="immutable",
        )
    return {
        "create": [n for n in wanted if n not in live_by_name],
        "delete": sorted(n for n in live_by_name if n not in wanted),
    }


def _entry_key(entry):
    policies = sorted(
        (
            p.get("policyARN"),
            (p.get("accessScope") or {}).get("type"),
            tuple(sorted((p.get("accessScope") or {}).get("namespaces") or [])),
        )
        for p in entry.get("accessPolicies") or []
    )
    return (tuple(sorted(entry.get("kubernetesGroups") or [])), tuple(policies))


def is_user_principal(arn):
    return ":user/" in (arn or "")


def plan_access_entries(desired, live, keep_principals):
    """Add missing entries before anything is removed; only IAM users' entries are ever removed.

    Roles (node roles, Fargate, the cluster creator, CI) keep their entries unless listed in the
    config; ``keep_principals`` (e.g. the identity running this module) are never removed.
    """
    live_by_arn = {e.get("principalARN"): e for e in live or []}
    wanted = {e["principalARN"]: e for e in desired}
    keep = set(keep_principals or [])
    return {
        "add": [arn for arn in wanted if arn not in live_by_arn],
        "update": [
            arn for arn in wanted if arn in live_by_arn and _entry_key(wanted[arn]) != _entry_key(live_by_arn[arn])
        ],
        "remove": sorted(
            arn for arn in live_by_arn if arn not in wanted and is_user_principal(arn) and arn not in keep
        ),
    }


# -- the whole plan -------------------------------------------------------------------------------
class Plan:
    """What a run will do, in order; ``actions`` is the JSON-friendly form returned to the user."""

    def __init__(self, state, cluster_name):
        self.state = state
        self.cluster_name = cluster_name
        self.cluster = "unchanged"
        self.version_steps = []
        self.auth_steps = []
        self.oidc = "unchanged"
        self.addons = {"create": [], "update": []}
        self.nodegroups = {"create": [], "scale": [], "upgrade": [], "roll": [], "delete": []}
        self.fargate = {"create": [], "delete": []}
        self.access = {"add": [], "update": [], "remove": []}
        self.kubeconfig = None
        self.load_balancer_services = None
        self.warnings = []
        self.effective_config = None
        self.before = {}
        self.after = {}

    @property
    def changed(self):
        return bool(
            self.cluster != "unchanged"
            or self.version_steps
            or self.auth_steps
            or self.oidc != "unchanged"
            or any(self.addons.values())
            or any(self.nodegroups.values())
            or any(self.fargate.values())
            or any(self.access.values())
            or (self.kubeconfig or {}).get("action") == "write"
        )

    def actions(self):
        data = {
            "state": self.state,
            "cluster": self.cluster,
            "changed": self.changed,
        }
        if self.state == "present":
            data.update(
                {
                    "version_steps": list(self.version_steps),
                    "authentication_mode_steps": list(self.auth_steps),
                    "oidc_provider": self.oidc,
                    "addons": copy.deepcopy(self.addons),
                    "nodegroups": copy.deepcopy(self.nodegroups),
                    "fargate_profiles": copy.deepcopy(self.fargate),
                    "access_entries": copy.deepcopy(self.access),
                    "kubeconfig": copy.deepcopy(self.kubeconfig),
                }
            )
        else:
            data["load_balancer_services"] = self.load_balancer_services
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


def _summarize_entries(entries):
    summary = {}
    for entry in entries or []:
        names = []
        for policy in entry.get("accessPolicies") or []:
            arn = str(policy.get("policyARN") or "")
            names.append(arn.rsplit("/", 1)[-1])
        for group in entry.get("kubernetesGroups") or []:
            names.append("group:" + group)
        summary[entry.get("principalARN")] = sorted(names)
    return summary


def summarize_live(cluster, nodegroups, addons, fargate, access_entries):
    if cluster is None:
        return {"state": "absent"}
    return {
        "state": "present",
        "version": cluster.get("Version"),
        "authenticationMode": live_auth_mode(cluster),
        "nodegroups": {
            name: dict(sizes(group), version=group.get("version"), **describe_spec(group["spec"]))
            for name, group in sorted(nodegroups.items())
        },
        "addons": {item.get("Name"): item.get("Version") for item in addons or []},
        "fargateProfiles": {
            p.get("name"): [s.get("namespace") for s in p.get("selectors") or []] for p in fargate or []
        },
        "accessEntries": _summarize_entries(access_entries),
    }


def summarize_desired(config, effective_names, live_entries, remove, *, live_addons=None, addon_plan=None):
    metadata = config["metadata"]
    entries = list(config.get("accessConfig", {}).get("accessEntries") or [])
    wanted = {e["principalARN"] for e in entries}
    entries += [
        e for e in live_entries or [] if e.get("principalARN") not in wanted and e.get("principalARN") not in remove
    ]
    return {
        "state": "present",
        "version": metadata["version"],
        "authenticationMode": config["accessConfig"]["authenticationMode"],
        "nodegroups": {
            effective_names[ng["name"]]: dict(
                sizes(ng), version=metadata["version"], **describe_spec(nodegroup_spec(ng))
            )
            for ng in sorted(config["managedNodeGroups"], key=lambda g: effective_names[g["name"]])
        },
        "addons": _addons_after(live_addons, addon_plan),
        "fargateProfiles": {
            p["name"]: [s.get("namespace") for s in p.get("selectors") or []]
            for p in config.get("fargateProfiles") or []
        },
        "accessEntries": _summarize_entries(entries),
    }


def _addons_after(live_addons, addon_plan):
    """Live add-on versions with the planned creations and updates applied (others are left alone)."""
    after = {item.get("Name"): item.get("Version") for item in live_addons or []}
    for item in (addon_plan or {}).get("create", []):
        after[item["name"]] = item["version"]
    for item in (addon_plan or {}).get("update", []):
        after[item["name"]] = item["to"]
    return after


def build_plan(
    config, live, nodegroup_changes="fail", keep_principals=None, source="infra/cluster.yaml", max_version_steps=1
):
    """The plan for ``state: present``.

    ``live`` holds ``cluster`` (the EKS cluster object or None), and for an existing cluster
    ``nodegroups`` / ``stacks`` / ``addons`` / ``fargate`` / ``access_entries`` (the parsed JSON
    lists; ``access_entries`` is None while the cluster still uses CONFIG_MAP) and ``oidc_associated``.
    """
    if nodegroup_changes not in NODEGROUP_CHANGES:
        raise EksError("nodegroup_changes must be one of {}".format(", ".join(NODEGROUP_CHANGES)), kind="invalid")
    metadata = config["metadata"]
    plan = Plan("present", metadata["name"])
    cluster = live.get("cluster")
    target = metadata["version"]
    desired_mode = config["accessConfig"]["authenticationMode"]
    groups = config["managedNodeGroups"]
    if cluster is None:
        plan.cluster = "create"
        names = {ng["name"]: ng["name"] for ng in groups}
        plan.nodegroups["create"] = [ng["name"] for ng in groups]
        plan.addons["create"] = [
            {"name": a["name"], "version": a.get("version") or "default"} for a in config.get("addons") or []
        ]
        plan.fargate["create"] = [p["name"] for p in config.get("fargateProfiles") or []]
        plan.access["add"] = [e["principalARN"] for e in config["accessConfig"].get("accessEntries") or []]
        plan.oidc = "associate"
        plan.effective_config = effective_config(config, names)
        plan.before = {"state": "absent"}
        plan.after = summarize_desired(config, names, [], [], addon_plan=plan.addons)
        return plan

    if cluster.get("Status") not in (None, "ACTIVE"):
        raise EksError(
            "cluster {} is {}, not ACTIVE. Fix: wait for the running operation to finish (or repair it in the EKS "
            "console), then re-run.".format(metadata["name"], cluster.get("Status")),
            kind="failed",
        )
    plan.version_steps = plan_versions(cluster.get("Version"), target, source, max_version_steps)
    if plan.version_steps:
        plan.cluster = "upgrade"
    live_mode = live_auth_mode(cluster)
    plan.auth_steps = plan_auth_mode(live_mode, desired_mode, source)
    plan.oidc = "unchanged" if live.get("oidc_associated") else "associate"
    plan.addons = plan_addons(config.get("addons") or [], live.get("addons"), bool(plan.version_steps))
    plan.fargate = plan_fargate(config.get("fargateProfiles") or [], live.get("fargate"), source)

    groups_live = live_nodegroups(live.get("nodegroups"), live.get("stacks"))
    ng_plan, names = plan_nodegroups(groups, groups_live, target)
    plan.warnings.extend(ng_plan.pop("warnings"))
    immutable = ng_plan.pop("immutable")
    if immutable and nodegroup_changes == "fail":
        raise immutable_error(immutable, source)
    plan.nodegroups = ng_plan
    check_skew(ng_plan, names, target, cluster.get("Version"))

    desired_entries = config["accessConfig"].get("accessEntries") or []
    plan.access = plan_access_entries(desired_entries, live.get("access_entries"), keep_principals)
    if live.get("access_entries") is None:
        plan.warnings.append(
            "the cluster uses CONFIG_MAP authentication: its aws-auth mappings are migrated to access entries first, "
            "so some planned additions may already exist then"
        )
    plan.effective_config = effective_config(config, names)
    plan.before = summarize_live(
        cluster, groups_live, live.get("addons"), live.get("fargate"), live.get("access_entries")
    )
    plan.after = summarize_desired(
        config,
        names,
        live.get("access_entries"),
        plan.access["remove"],
        live_addons=live.get("addons"),
        addon_plan=plan.addons,
    )
    return plan


def plan_absent(cluster, name):
    plan = Plan("absent", name)
    if cluster is None:
        plan.cluster = "unchanged"
        plan.before = plan.after = {"state": "absent"}
        return plan
    plan.cluster = "delete"
    plan.load_balancer_services = "delete before the cluster (their load balancers block VPC deletion)"
    plan.before = {"state": "present", "version": cluster.get("Version"), "endpoint": cluster.get("Endpoint")}
    plan.after = {"state": "absent"}
    return plan
