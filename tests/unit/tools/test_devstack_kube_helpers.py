"""The local API server's generated PKI, kubeconfig and command lines, and the load-balancer
stand-in's naming and selection rules (no server needed)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from types import SimpleNamespace

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from devstack.kube import Binaries, Ports, apiserver_argv, crd_files, etcd_argv, write_kubeconfig
from devstack.kube_pki import ensure_pki
from devstack.lb_standin import (
    CLEANUP_FINALIZER,
    LoadBalancerStandIn,
    elb_hostname,
    has_hostname,
    needs_hostname,
    needs_release,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_pki_has_a_server_cert_for_loopback_and_an_admin_in_system_masters(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    server = _cert(pki.server_cert)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in san.get_values_for_type(x509.DNSName)
    admin = _cert(pki.admin_cert)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert server.issuer == admin.issuer == _cert(pki.ca_cert).subject
    for key in (pki.ca_key, pki.server_key, pki.admin_key, pki.sa_key):
        assert key.stat().st_mode & 0o777 == 0o600, key


def test_pki_is_kept_once_complete_and_remade_when_a_file_is_missing(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    ca = pki.ca_cert.read_bytes()
    assert ensure_pki(tmp_path).ca_cert.read_bytes() == ca
    pki.sa_pub.unlink()
    assert ensure_pki(tmp_path).ca_cert.read_bytes() != ca


def test_kubeconfig_embeds_the_credentials_and_is_private(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    path = tmp_path / "admin.kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", pki)
    config = json.loads(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"]["client-key-data"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_command_lines_bind_loopback_and_use_rbac_and_the_service_account_keys(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    ports = Ports(etcd_client=2379, etcd_peer=2380, apiserver=6443)
    apiserver = apiserver_argv(Path("/bin/kube-apiserver"), pki, ports)
    assert "--authorization-mode=RBAC" in apiserver
    assert "--bind-address=127.0.0.1" in apiserver
    assert "--etcd-servers=http://127.0.0.1:2379" in apiserver
    assert f"--service-account-signing-key-file={pki.sa_key}" in apiserver
    assert not [arg for arg in apiserver if arg.startswith("--cloud-provider")]
    etcd = etcd_argv(Path("/bin/etcd"), tmp_path / "data", ports)
    assert "--listen-client-urls=http://127.0.0.1:2379" in etcd
    assert all("0.0.0.0" not in arg for arg in apiserver + etcd)  # noqa: S104 - asserts the opposite


def test_build_script_output_is_parsed_and_missing_binaries_listed(tmp_path: Path) -> None:
    present = tmp_path / "etcd"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    binaries = Binaries.from_lines(
        f"KUBE_VERSION=v1.34.4\nKUBE_APISERVER_BIN={tmp_path}/kube-apiserver\nETCD_BIN={present}\n"
        f"KUBECTL_BIN={tmp_path}/kubectl\nHELM_BIN={tmp_path}/helm\n"
    )
    assert binaries.kube_version == "v1.34.4"
    assert [p.name for p in binaries.missing()] == ["kube-apiserver", "kubectl", "helm"]


def test_committed_crds_cover_the_kinds_the_roles_create() -> None:
    kinds = set()
    for path in crd_files():
        text = path.read_text()
        assert "controller-gen.kubebuilder.io/version" in text, f"{path.name} was not generated"
        kinds.add(text.split("    kind: ", 1)[1].split("\n", 1)[0])
    assert {"ClusterIssuer", "Issuer", "Certificate", "GitRepository", "HelmRepository"} <= kinds
    assert {"Kustomization", "HelmRelease"} <= kinds


def test_elb_hostname_is_shaped_like_an_nlb_name_and_stable() -> None:
    uid = "2e8e69b5-3c2a-4252-b5a0-08165bf96099"
    name = elb_hostname(uid, "eu-west-1")
    assert name == elb_hostname(uid, "eu-west-1")
    assert name.startswith("a2e8e69b53c2a4252b5a008165bf9609-")
    assert name.endswith(".elb.eu-west-1.amazonaws.com")


def _service(
    kind: str, ingress: list[object] | None, finalizers: list[str] | None = None, deleted: bool = False
) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(finalizers=finalizers, deletion_timestamp="2026-12-02T05:00:00Z" if deleted else None),
        spec=SimpleNamespace(type=kind),
        status=SimpleNamespace(load_balancer=SimpleNamespace(ingress=ingress)),
    )


def test_only_load_balancer_services_without_an_address_or_finalizer_get_one() -> None:
    done = [SimpleNamespace(hostname="x")]
    assert needs_hostname(_service("LoadBalancer", None))
    assert needs_hostname(_service("LoadBalancer", []))
    assert needs_hostname(_service("LoadBalancer", done)), "an address without the cleanup finalizer"
    assert not needs_hostname(_service("LoadBalancer", done, [CLEANUP_FINALIZER]))
    assert not needs_hostname(_service("LoadBalancer", None, deleted=True)), "never provisions a deleted Service"
    assert not needs_hostname(_service("ClusterIP", None))


def test_services_holding_the_cleanup_finalizer_are_released_once_deleted_or_no_longer_load_balancers() -> None:
    done = [SimpleNamespace(hostname="x")]
    assert needs_release(_service("LoadBalancer", done, ["other", CLEANUP_FINALIZER], deleted=True))
    assert needs_release(_service("ClusterIP", done, [CLEANUP_FINALIZER]))
    assert not needs_release(_service("LoadBalancer", done, [CLEANUP_FINALIZER]))
    assert not needs_release(_service("LoadBalancer", done, ["other"], deleted=True)), "not ours to remove"


class _FakeEmulator:
    def __init__(self) -> None:
        self.balancers: set[str] = set()

    def exists(self, service: SimpleNamespace) -> bool:
        return service.metadata.uid in self.balancers

    def hostname(self, service: SimpleNamespace) -> str:
        self.balancers.add(service.metadata.uid)
        return f"new-{service.metadata.uid}.elb.eu-west-1.amazonaws.com"


class _FakeCore:
    def __init__(self, services: list[SimpleNamespace]) -> None:
        self.services = services
        self.status_patches: list[tuple[str, dict]] = []

    def list_service_for_all_namespaces(self) -> SimpleNamespace:
        return SimpleNamespace(items=self.services)

    def patch_namespaced_service_status(self, name: str, namespace: str, body: dict) -> None:
        self.status_patches.append((f"{namespace}/{name}", body))


def test_a_service_whose_emulator_load_balancer_vanished_is_provisioned_again() -> None:
    service = _service("LoadBalancer", [SimpleNamespace(hostname="old.elb")], [CLEANUP_FINALIZER])
    service.metadata.uid, service.metadata.name, service.metadata.namespace = "uid-1", "ingress", "ingress-nginx"
    service.metadata.resource_version = "7"
    emulator, core = _FakeEmulator(), _FakeCore([service])
    standin = LoadBalancerStandIn(core, delay=0, region="eu-west-1", emulator=emulator)  # type: ignore[arg-type]
    assert standin.poll_once(100.0) == [
        "re-provisioned (its load balancer vanished from the AWS emulator) ingress-nginx/ingress"
    ]
    hostname = core.status_patches[0][1]["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert hostname == "new-uid-1.elb.eu-west-1.amazonaws.com"
    # once it exists again, nothing more is done
    assert standin.poll_once(101.0) == []
    assert not has_hostname(_service("LoadBalancer", None, [CLEANUP_FINALIZER]))
