# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge an EKS cluster with eksctl: read the live state, plan, then apply the plan in a safe order.

Order of a ``present`` run on an existing cluster (each step only when the plan has work for it):

1. control plane upgrades, one minor version at a time, then lagging node groups, then add-ons;
2. the IAM OIDC provider;
3. authentication mode out of CONFIG_MAP (aws-auth mappings migrated to access entries);
4. access entries: missing ones added, changed ones replaced; then the move to API mode;
5. Fargate profiles added; node groups scaled, added and replacements created (and waited for);
6. rolled and removed node groups drained and deleted (``--only-missing``), extra Fargate profiles
   and extra IAM-user access entries removed: additions always come before removals;
7. the kubeconfig written for the roles that follow.

Check mode reads the same live state and returns the same plan without any mutating call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.biomage.iac.plugins.module_utils.eks.config import HAS_YAML, write_config
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.plan import (
    build_plan,
    live_auth_mode,
    plan_absent,
    plan_access_entries,
    plan_addons,
)

FAILED_NODEGROUP_STATES = ("CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED")


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class Reconciler:
    """One cluster, one run. ``lb_cleaner(kubeconfig) -> [deleted services]`` is used by ``absent``."""

    def __init__(
        self,
        runner,
        name,
        kubeconfig,
        *,
        work_dir=None,
        source="infra/cluster.yaml",
        nodegroup_changes="fail",
        keep_principals=None,
        max_version_steps=1,
        wait_timeout=1800,
        poll_interval=15,
        lb_cleaner=None,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.runner = runner
        self.name = name
        self.kubeconfig = kubeconfig
        self.source = source
        self.nodegroup_changes = nodegroup_changes
        self.keep_principals = list(keep_principals or [])
        self.max_version_steps = max_version_steps
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.lb_cleaner = lb_cleaner
        self.sleep = sleep
        self.clock = clock
        self._work_dir = work_dir
        self._own_work_dir = None

    # -- files -----------------------------------------------------------------------------------
    @property
    def work_dir(self):
        if self._work_dir is None:
            self._own_work_dir = tempfile.mkdtemp(prefix="eksctl-cluster-")
            self._work_dir = self._own_work_dir
        return self._work_dir

    def cleanup(self):
        if self._own_work_dir:
            shutil.rmtree(self._own_work_dir, ignore_errors=True)

    def _write_config(self, filename, config):
        if not os.path.isdir(self.work_dir):
            os.makedirs(self.work_dir, 0o700)
        return write_config(os.path.join(self.work_dir, filename), config, self.source)

    def _subset(self, config, **sections):
        """A copy of ``config`` with only metadata and the given sections (for create fargateprofile/accessentry)."""
        subset = {"apiVersion": config["apiVersion"], "kind": config["kind"], "metadata": config["metadata"]}
        subset.update(sections)
        return subset

    # -- live state ------------------------------------------------------------------------------
    def _gather(self, target_version=None):
        self.runner.check_version()
        supported = self.runner.supported_kubernetes_versions()
        if target_version and supported and target_version not in supported:
            raise EksError(
                "this eksctl supports Kubernetes {}, not {}. Fix: upgrade eksctl, or keep the cluster on a supported "
                "version.".format(", ".join(supported), target_version),
                kind="eksctl",
            )
        cluster = self.runner.get_cluster(self.name)
        live = {"cluster": cluster}
        if cluster is not None:
            live["nodegroups"] = self.runner.get_nodegroups(self.name)
            live["stacks"] = self.runner.describe_stacks(self.name) if live["nodegroups"] else []
            live["addons"] = self.runner.get_addons(self.name)
            live["fargate"] = self.runner.get_fargate_profiles(self.name)
            if live_auth_mode(cluster) == "CONFIG_MAP":
                live["access_entries"] = None
            else:
                live["access_entries"] = self.runner.get_access_entries(self.name)
            live["oidc_associated"] = self.runner.oidc_provider_associated(self.name)
        return live

    # -- present ---------------------------------------------------------------------------------
    def present(self, config):
        if not HAS_YAML:
            raise EksError("PyYAML is required. Fix: install PyYAML.", kind="invalid")
        live = self._gather(config["metadata"]["version"])
        plan = build_plan(
            config, live, self.nodegroup_changes, self.keep_principals, self.source, self.max_version_steps
        )
        exists = os.path.exists(self.kubeconfig)
        plan.kubeconfig = {"path": self.kubeconfig, "action": "refresh" if exists else "write"}
        if self.runner.check_mode:
            return self._result(plan, live["cluster"], None, applied=False)
        if live["cluster"] is None:
            path = self._write_config("cluster.yaml", plan.effective_config)
            self.runner.create_cluster(path)
        else:
            self._apply_existing(plan)
        kube_changed = self._write_kubeconfig(self.kubeconfig)
        cluster = self.runner.get_cluster(self.name)
        nodegroups = self.runner.get_nodegroups(self.name)
        result = self._result(plan, cluster, nodegroups, applied=True)
        result["changed"] = plan.changed or kube_changed
        return result

    def _apply_existing(self, plan):
        """The plan's steps in the order the module docstring gives: every addition before any removal."""
        cfg = plan.effective_config
        path = self._write_config("cluster.yaml", cfg)
        self._apply_upgrades(plan, cfg)
        self._apply_access(plan, cfg)
        self._apply_capacity(plan, cfg, path)
        for profile in plan.fargate["delete"]:
            self.runner.delete_fargate_profile(self.name, profile)
        for arn in plan.access["remove"]:
            self.runner.delete_access_entry(self.name, arn)

    def _apply_upgrades(self, plan, cfg):
        """Control plane (one minor at a time), lagging node groups, add-ons, the IAM OIDC provider."""
        for version in plan.version_steps:
            self.runner.upgrade_cluster(self.name, version)
        for item in plan.nodegroups["upgrade"]:
            self.runner.upgrade_nodegroup(self.name, item["name"], item["to"])

        if any(str(u["to"]).startswith("latest (") for u in plan.addons["update"]):
            # tracked add-ons: which versions are newer is only known once the control plane moved
            refreshed = plan_addons(cfg.get("addons") or [], self.runner.get_addons(self.name), upgrading=False)
            plan.addons["update"] = refreshed["update"]
        addons_by_name = {a["name"]: a for a in cfg.get("addons") or []}
        for item in plan.addons["create"]:
            addon = addons_by_name[item["name"]]
            self.runner.create_addon(
                self.name, item["name"], addon.get("version"), force=addon.get("resolveConflicts") == "overwrite"
            )
        for item in plan.addons["update"]:
            self.runner.update_addon(self.name, item["name"], item["to"])

        if plan.oidc == "associate":
            self.runner.associate_oidc_provider(self.name)

    def _apply_access(self, plan, cfg):
        """Authentication mode out of CONFIG_MAP, access entries added and replaced, then API mode."""
        before_entries = [m for m in plan.auth_steps if m == "API_AND_CONFIG_MAP"]
        after_entries = [m for m in plan.auth_steps if m == "API"]
        for mode in before_entries:
            self.runner.migrate_to_access_entry(self.name, mode)
            # the migration created entries from aws-auth: plan the access entries again from what exists now
            plan.access = plan_access_entries(
                cfg["accessConfig"].get("accessEntries") or [],
                self.runner.get_access_entries(self.name),
                self.keep_principals,
            )
        wanted = {e["principalARN"]: e for e in cfg["accessConfig"].get("accessEntries") or []}
        if plan.access["add"]:
            entries = [wanted[arn] for arn in plan.access["add"]]
            file = self._write_config(
                "accessentries-add.yaml", self._subset(cfg, accessConfig={"accessEntries": entries})
            )
            self.runner.create_access_entries(file)
        # eksctl cannot change an entry in place: one principal at a time is deleted and re-created,
        # so at most one principal is without its entry, for the seconds between the two calls
        for index, arn in enumerate(plan.access["update"], start=1):
            file = self._write_config(
                f"accessentries-update-{index}.yaml", self._subset(cfg, accessConfig={"accessEntries": [wanted[arn]]})
            )
            self.runner.delete_access_entry(self.name, arn)
            self.runner.create_access_entries(file)
        for mode in after_entries:
            self.runner.migrate_to_access_entry(self.name, mode)

    def _apply_capacity(self, plan, cfg, path):
        """Fargate profiles added; node groups scaled, created (replacements waited for), drained and deleted."""
        if plan.fargate["create"]:
            profiles = [p for p in cfg.get("fargateProfiles") or [] if p["name"] in plan.fargate["create"]]
            file = self._write_config("fargate.yaml", self._subset(cfg, fargateProfiles=profiles))
            self.runner.create_fargate_profiles(file)

        for item in plan.nodegroups["scale"]:
            self.runner.scale_nodegroup(self.name, item["name"], item["to"])
        creates = list(plan.nodegroups["create"]) + [r["replacement"] for r in plan.nodegroups["roll"]]
        if creates:
            self.runner.create_nodegroups(path, creates)
        for roll in plan.nodegroups["roll"]:
            self._wait_active(roll["replacement"], roll["live"])
        # every group that goes is drained first, explicitly (pods leave before its nodes do)
        leaving = [old for roll in plan.nodegroups["roll"] for old in roll["live"]] + list(plan.nodegroups["delete"])
        for old in leaving:
            self.runner.drain_nodegroup(self.name, old)
        if plan.nodegroups["delete"] or plan.nodegroups["roll"]:
            self.runner.delete_missing_nodegroups(path)

    def _wait_active(self, name, replaces):
        deadline = self.clock() + self.wait_timeout
        while True:
            group = self.runner.get_nodegroup(self.name, name)
            status = (group or {}).get("Status")
            if status == "ACTIVE":
                return
            if status in FAILED_NODEGROUP_STATES or self.clock() >= deadline:
                waited = "" if status in FAILED_NODEGROUP_STATES else f" after {self.wait_timeout}s"
                raise EksError(
                    f"replacement node group {name} is {status or 'missing'}{waited}; the old group "
                    f"({', '.join(replaces)}) was kept, so capacity did not drop. Fix: look at the node group in the "
                    f"EKS console (or `eksctl get nodegroup --cluster {self.name}`), repair or delete it, then re-run.",
                    kind="failed",
                )
            self.sleep(self.poll_interval)

    def _write_kubeconfig(self, path):
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        before = _read(path)
        self.runner.write_kubeconfig(self.name, path)
        return before != _read(path)

    # -- absent ----------------------------------------------------------------------------------
    def absent(self):
        live = self._gather()
        cluster = live["cluster"]
        plan = plan_absent(cluster, self.name)
        if cluster is None or self.runner.check_mode:
            return self._result(plan, cluster, None, applied=False)
        kubeconfig = os.path.join(self.work_dir, "kubeconfig")
        self._write_kubeconfig(kubeconfig)
        if self.lb_cleaner is None:
            raise EksError("internal error: no load balancer cleaner", kind="internal")
        deleted = self.lb_cleaner(kubeconfig)
        self.runner.delete_cluster(self.name)
        result = self._result(plan, None, None, applied=True)
        result["deleted_load_balancer_services"] = deleted
        return result

    # -- result ----------------------------------------------------------------------------------
    def _result(self, plan, cluster, nodegroups, applied):
        cluster = cluster or {}
        identity = (cluster.get("Identity") or {}).get("Oidc") or {}
        if nodegroups is None:
            groups = [
                {
                    "name": name,
                    **{k: v for k, v in spec.items() if k in ("minSize", "maxSize", "desiredCapacity", "version")},
                }
                for name, spec in sorted((plan.after.get("nodegroups") or {}).items())
            ]
        else:
            groups = [
                {
                    "name": g.get("Name"),
                    "status": g.get("Status"),
                    "instance_types": [t for t in (g.get("InstanceType") or "").split(",") if t],
                    "version": g.get("Version"),
                    "minSize": g.get("MinSize"),
                    "maxSize": g.get("MaxSize"),
                    "desiredCapacity": g.get("DesiredCapacity"),
                }
                for g in nodegroups
            ]
        return {
            "changed": plan.changed,
            "applied": applied,
            "plan": plan.actions(),
            "diff": {"before": plan.before, "after": plan.after},
            "endpoint": cluster.get("Endpoint"),
            "oidc_issuer": identity.get("Issuer"),
            "version": cluster.get("Version") or (plan.after.get("version") if plan.state == "present" else None),
            "nodegroups": groups,
            "kubeconfig": self.kubeconfig if plan.state == "present" else None,
            "commands": [" ".join(call["argv"][1:]) for call in self.runner.calls if call["mutating"]],
        }
