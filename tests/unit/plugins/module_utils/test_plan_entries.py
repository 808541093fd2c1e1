"""The plan entries of eksctl_cluster, flux_deploy_key and the GitHub modules, and the callback's
derivation for kubernetes.core.k8s and kubernetes.core.helm results. Secrets never reach an entry."""

from __future__ import annotations

import json

from ansible_collections.biomage.iac.plugins.callback.plan import derive
from ansible_collections.biomage.iac.plugins.module_utils import plan_entries as pe
from ansible_collections.biomage.iac.plugins.module_utils.flux import credentials as fc
from ansible_collections.biomage.iac.plugins.module_utils.kube.secrets import StoredSecret
from ansible_collections.biomage.iac.plugins.module_utils.plan import is_entry

KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
TITLE = "flux-biomage-staging"


def triples(entries):
    assert all(is_entry(item) for item in entries)
    return [(e["kind"], e["name"], e["action"]) for e in entries]


def test_an_eksctl_plan_becomes_one_entry_per_resource() -> None:
    actions = {
        "state": "present",
        "cluster": "upgrade",
        "version_steps": ["1.33", "1.34"],
        "authentication_mode_steps": [],
        "oidc_provider": "unchanged",
        "addons": {"create": [{"name": "aws-ebs-csi-driver", "version": "latest"}], "update": []},
        "nodegroups": {
            "create": ["highmem"],
            "scale": [{"name": "workers", "from": {}, "to": {}}],
            "upgrade": [{"name": "workers", "from": "1.32", "to": "1.34"}],
            "roll": [{"name": "gpu", "live": ["gpu"], "replacement": "gpu-1a2b", "fields": ["instanceType"]}],
            "delete": ["legacy"],
        },
        "fargate_profiles": {"create": [], "delete": []},
        "access_entries": {"add": ["arn:aws:iam::123456789012:user/alice"], "update": [], "remove": []},
    }
    entries = pe.eksctl_entries("biomage-staging", actions)
    assert triples(entries) == [
        ("EKS cluster", "biomage-staging", "update"),
        ("EKS add-on", "aws-ebs-csi-driver", "create"),
        ("EKS node group", "highmem", "create"),
        ("EKS node group", "workers", "update"),
        ("EKS node group", "workers", "update"),
        ("EKS node group", "gpu", "replace"),
        ("EKS node group", "legacy", "delete"),
        ("EKS access entry", "arn:aws:iam::123456789012:user/alice", "create"),
    ]
    assert entries[0]["reason"] == "Kubernetes upgrade to 1.33 -> 1.34"
    assert "gpu-1a2b replaces it" in entries[5]["reason"]
    assert triples(pe.eksctl_entries("c", {"state": "absent", "cluster": "delete"})) == [("EKS cluster", "c", "delete")]
    assert pe.eksctl_entries("c", {"state": "present", "cluster": "unchanged"}) == []


def test_flux_key_first_install_rotation_and_no_private_key() -> None:
    first = fc.plan(None, [], TITLE, True, KNOWN_HOSTS)
    assert triples(pe.flux_key_entries("biomage", "iac", TITLE, "flux-system", "flux-system", first)) == [
        ("GitHub deploy key", f"biomage/iac {TITLE}", "create"),
        ("Kubernetes Secret", "flux-system/flux-system", "create"),
    ]
    pair = fc.generate_keypair(TITLE)
    secret = StoredSecret(data={"identity": pair.private, "identity.pub": pair.public, "known_hosts": KNOWN_HOSTS})
    keys = [{"id": 1, "title": TITLE, "key": " ".join(pair.public.split(" ")[:2]), "read_only": True}]
    rotate = fc.plan(secret, keys, TITLE, True, KNOWN_HOSTS, "always")
    entries = pe.flux_key_entries("biomage", "iac", TITLE, "flux-system", "flux-system", rotate)
    assert triples(entries) == [
        ("GitHub deploy key", f"biomage/iac {TITLE}", "rotate"),
        ("Kubernetes Secret", "flux-system/flux-system", "rotate"),
        ("GitHub deploy key", f"biomage/iac {TITLE}", "delete"),
    ]
    text = json.dumps(entries)
    assert pair.private.splitlines()[1] not in text
    assert "BEGIN" not in text


def test_github_settings_entries_carry_names_only() -> None:
    assert triples(pe.actions_setting_entry("GitHub Actions secret", "biomage", "ui", "TOKEN", "update")) == [
        ("GitHub Actions secret", "biomage/ui TOKEN", "update")
    ]
    add = {"add": {"title": "t", "key": "ssh-ed25519 AAAA"}, "delete": [{"title": "t", "key": "x"}], "keep": None}
    assert [e["action"] for e in pe.deploy_key_entries("o", "r", "t", add)] == ["rotate", "delete"]
    assert "AAAA" not in json.dumps(pe.deploy_key_entries("o", "r", "t", add))
    url = "https://token.actions.githubusercontent.com"
    assert triples(pe.oidc_provider_entries(url, [("create", {})])) == [("IAM OIDC provider", url, "create")]
    assert pe.oidc_provider_entries(url, [("add_client_id", "x")])[0]["reason"] == "add client id"
    assert pe.oidc_provider_entries(url, [])[0]["action"] == "unchanged"


def test_eksctl_entries_are_read_from_plan_entries() -> None:
    res = {"changed": True, "plan": {"cluster": "create"}, "plan_entries": [pe.entry("EKS cluster", "c", "create")]}
    assert triples(derive("biomage.iac.eksctl_cluster", "t", res)) == [("EKS cluster", "c", "create")]


def k8s(method, kind="ConfigMap", name="x", namespace="ns", **extra):
    obj = {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "data": {"token": "s3cr3t"}}
    return {"changed": True, "method": method, "result": obj, **extra}


def test_k8s_results_in_check_mode_give_kind_name_and_action() -> None:
    assert triples(derive("kubernetes.core.k8s", "t", k8s("create"))) == [("ConfigMap", "ns/x", "create")]
    assert triples(derive("kubernetes.core.k8s", "t", k8s("update"))) == [("ConfigMap", "ns/x", "update")]
    assert triples(derive("kubernetes.core.k8s", "t", k8s("delete"))) == [("ConfigMap", "ns/x", "delete")]
    new = k8s("apply", diff={"before": {}, "after": {"kind": "ConfigMap"}})
    assert triples(derive("kubernetes.core.k8s", "t", new)) == [("ConfigMap", "ns/x", "create")]
    assert derive("kubernetes.core.k8s", "t", k8s("apply"))[0]["action"] == "update"
    several = {
        "changed": True,
        "result": {
            "results": [k8s("create", kind="Namespace", name="flux-system", namespace=None), {"changed": False}]
        },
    }
    assert triples(derive("kubernetes.core.k8s", "t", several)) == [("Namespace", "flux-system", "create")]
    assert "s3cr3t" not in json.dumps(derive("kubernetes.core.k8s", "t", k8s("create", kind="Secret")))
    assert derive("kubernetes.core.k8s", "t", {**k8s("update"), "changed": False}) == []


def test_helm_results_give_the_release_and_never_the_command() -> None:
    args = {"release_name": "cert-manager", "release_namespace": "cert-manager", "chart_version": "v1.19.1"}
    fresh = {"changed": True, "status": None, "command": "helm upgrade --set token=s3cr3t"}
    entries = derive("kubernetes.core.helm", "t", fresh, args)
    assert triples(entries) == [("Helm release", "cert-manager/cert-manager", "create")]
    upgrade = {"changed": True, "status": {"status": "deployed", "chart": "cert-manager-v1.18.2"}}
    assert derive("kubernetes.core.helm", "t", upgrade, args)[0]["reason"] == "cert-manager-v1.18.2 -> v1.19.1"
    gone = derive("kubernetes.core.helm", "t", upgrade, {**args, "release_state": "absent"})
    assert gone[0]["action"] == "delete"
    assert "s3cr3t" not in json.dumps(entries)
