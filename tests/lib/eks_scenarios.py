"""Scenarios for the eksctl module tests: the platform's own infra/cluster.yaml, a scripted eksctl, argv."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.config import render
from ansible_collections.biomage.iac.plugins.module_utils.eks.eksctl import EksctlRunner
from ansible_collections.biomage.iac.plugins.module_utils.eks.nodegroups import effective_config
from ansible_collections.biomage.iac.plugins.module_utils.eks.reconcile import Reconciler
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import validate

from tests.lib.fake_eksctl import ACCOUNT, REGION, FakeEksctl, state_from_config

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO_ROOT / "infra" / "cluster.yaml"
CLUSTER = "biomage-staging"
EKSCTL = "/opt/eksctl/bin/eksctl"
R = ["--region", REGION]
C = ["--cluster", CLUSTER, *R]
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
# every read an existing-cluster run makes, in order
READS = [
    ["version", "-o", "json"],
    ["get", "cluster", "--name", CLUSTER, *R, "-o", "json"],
    ["get", "nodegroup", *C, "-o", "json"],
    ["utils", "describe-stacks", *C, "-o", "json"],
    ["get", "addon", *C, "-o", "json"],
    ["get", "fargateprofile", *C, "-o", "json"],
    ["get", "accessentry", *C, "-o", "json"],
    ["utils", "associate-iam-oidc-provider", *C],
]
# what every applying run ends with
FINISH_READS = [["get", "cluster", "--name", CLUSTER, *R, "-o", "json"], ["get", "nodegroup", *C, "-o", "json"]]


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


# The add-on versions of each minor on the way from 1.33 to the pin of infra/cluster.yaml (docs/eks-cluster.md,
# "Kubernetes upgrades"): one change of the config per minor, its add-ons moving with it.
UPGRADE_PATH = {
    "1.33": {"vpc-cni": "v1.19.5", "coredns": "v1.12.1", "kube-proxy": "v1.33.0", "eks-pod-identity-agent": "v1.3.7"},
    "1.34": {"vpc-cni": "v1.20.4", "coredns": "v1.13.2", "kube-proxy": "v1.34.0", "eks-pod-identity-agent": "v1.3.7"},
    "1.35": {"vpc-cni": "v1.21.1", "coredns": "v1.14.3", "kube-proxy": "v1.35.0", "eks-pod-identity-agent": "v1.3.7"},
    "1.36": {"vpc-cni": "v1.22.4", "coredns": "v1.14.3", "kube-proxy": "v1.36.0", "eks-pod-identity-agent": "v1.3.10"},
}


def base_config() -> dict:
    return yaml.safe_load(BASE_CONFIG.read_text())


def config_at(minor: str) -> dict:
    """infra/cluster.yaml as it reads at ``minor`` on the upgrade path (version and add-on versions)."""
    config = base_config()
    config["metadata"]["version"] = minor
    for addon in config["addons"]:
        addon["version"] = UPGRADE_PATH[minor][addon["name"]]
    return config


def desired(config: dict | None = None, admins: tuple[str, ...] = (), users: tuple[str, ...] = ()) -> dict:
    """The rendered config for staging, as the module builds it."""
    source = copy.deepcopy(config) if config is not None else base_config()
    validate(source, "infra/cluster.yaml", name=CLUSTER, region=REGION)
    return render(source, CLUSTER, REGION, admins=list(admins), users=list(users), account_id=ACCOUNT)


def live(config: dict, **kwargs: str) -> dict:
    """Fake eksctl state of a cluster created from ``config`` (node groups under their own names)."""
    names = {ng["name"]: ng["name"] for ng in config["managedNodeGroups"]}
    return state_from_config(effective_config(config, names), **kwargs)


def args_of(fake: FakeEksctl) -> list[list[str]]:
    """The argv of every call, without the binary."""
    return [argv[1:] for argv in fake.calls]


def mutating_of(fake: FakeEksctl) -> list[list[str]]:
    return [argv[1:] for argv in fake.mutating_calls()]


def make_reconciler(fake: FakeEksctl, tmp_path: Path, check_mode: bool = False, **options) -> Reconciler:
    """A Reconciler for staging on a scripted eksctl (no waiting between polls)."""
    runner = EksctlRunner(fake.run, EKSCTL, REGION, check_mode=check_mode, secrets=[])
    options.setdefault("work_dir", str(tmp_path / "work"))
    return Reconciler(
        runner,
        CLUSTER,
        str(tmp_path / "kube" / f"{CLUSTER}.yaml"),
        poll_interval=0,
        sleep=lambda _seconds: None,
        **options,
    )
