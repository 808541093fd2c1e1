"""The local cluster registered with the AWS emulator: only ever a loopback endpoint, what is planned
for the EKS cluster and the IAM OIDC provider, and the thumbprint IAM keeps of the issuer's CA."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.eks import local_cluster

ISSUER = "https://kubernetes.default.svc.cluster.local"
DESIRED = local_cluster.desired_cluster(
    "biomage-development", "1.34", "arn:aws:iam::123456789012:role/r", ["subnet-b", "subnet-a"], ["sg-1"], ISSUER,
    "https://127.0.0.1:6443",
)  # fmt: skip


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "http://localhost:4566"])
def test_a_loopback_emulator_is_accepted(url: str) -> None:
    local_cluster.check_emulator(url)


@pytest.mark.parametrize("url", [None, "", "https://eks.eu-west-1.amazonaws.com", "http://10.0.0.5:5000"])
def test_anything_else_is_refused_with_the_fix(url: str | None) -> None:
    with pytest.raises(local_cluster.LocalClusterError) as refused:
        local_cluster.check_emulator(url)
    assert "is not a local AWS emulator" in str(refused.value)
    assert "Fix: in AWS, eksctl creates the cluster (eks_cluster_mode: eksctl)" in str(refused.value)


def test_the_cluster_plan() -> None:
    assert local_cluster.plan_cluster(None, DESIRED) == ("create", "not registered with the emulator")
    current = {**DESIRED, "arn": "arn", "issuer": ISSUER, "endpoint": "x"}
    assert local_cluster.plan_cluster(current, DESIRED) == (None, "")
    moved = dict(current, tags={**current["tags"], local_cluster.ENDPOINT_TAG: "https://127.0.0.1:7443"})
    assert local_cluster.plan_cluster(moved, DESIRED) == ("tag", "issuer or endpoint changed")
    renetworked = dict(current, subnetIds=["subnet-c"])
    assert local_cluster.plan_cluster(renetworked, DESIRED) == ("replace", "subnetIds changed")
    assert DESIRED["subnetIds"] == ["subnet-a", "subnet-b"]


def test_the_provider_plan() -> None:
    assert local_cluster.plan_provider(None, "ab" * 20)[0] == "create"
    same = {"client_ids": ["sts.amazonaws.com"], "thumbprints": ["ab" * 20]}
    assert local_cluster.plan_provider(same, "ab" * 20) == (None, "")
    assert local_cluster.plan_provider(same, "cd" * 20)[0] == "update"
    assert local_cluster.plan_provider({**same, "client_ids": []}, "ab" * 20)[0] == "update"


def test_plan_entries_name_the_issuer_host() -> None:
    entries = local_cluster.plan_entries("biomage-development", "create", "new", ISSUER, None, "")
    assert entries == [
        {"kind": "EKS cluster (emulator)", "name": "biomage-development", "action": "create", "reason": "new"},
        {
            "kind": "IAM OIDC provider",
            "name": "kubernetes.default.svc.cluster.local",
            "action": "unchanged",
            "reason": "",
        },
    ]


def test_the_thumbprint_is_the_sha1_of_the_ca_certificate(tmp_path: Path) -> None:
    key, cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=test-ca", "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    fingerprint = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # "SHA1 Fingerprint=AB:CD:..."
    assert (
        local_cluster.ca_thumbprint(cert.read_text()) == fingerprint.split("=", 1)[1].strip().replace(":", "").lower()
    )


SERVER = {"endpoint": "https://127.0.0.1:6443", "version": "v1.36.3", "oidc_issuer": "https://kubernetes.default.svc"}


def test_the_api_server_fills_the_options_left_out() -> None:
    given = {"issuer": None, "endpoint": None, "kubernetes_version": None}
    assert local_cluster.server_options(given, SERVER) == {
        "issuer": "https://kubernetes.default.svc",
        "endpoint": "https://127.0.0.1:6443",
        "kubernetes_version": "1.36",
    }
    pinned = {**given, "kubernetes_version": "1.35"}
    assert local_cluster.server_options(pinned, SERVER)["kubernetes_version"] == "1.35", "a given option wins"


def test_an_api_server_without_an_issuer_is_refused_with_the_fix() -> None:
    with pytest.raises(local_cluster.LocalClusterError) as failure:
        local_cluster.server_options({}, {**SERVER, "oidc_issuer": None})
    assert "https://127.0.0.1:6443 serves no OIDC discovery document" in str(failure.value)
    assert "Fix: restart the local stack (make dev-down && make dev-up)" in str(failure.value)


def test_without_a_kubeconfig_every_server_option_is_required() -> None:
    with pytest.raises(local_cluster.LocalClusterError, match=r"^endpoint, kubernetes_version must be given"):
        local_cluster.server_options({"issuer": "https://issuer.test"}, None)
    full = {"issuer": "https://issuer.test", "endpoint": "https://127.0.0.1:1", "kubernetes_version": "1.36"}
    assert local_cluster.server_options(full, None) == full
