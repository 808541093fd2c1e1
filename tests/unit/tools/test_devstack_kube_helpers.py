"""The local API server's generated PKI, kubeconfig and command lines, and the load-balancer
stand-in's naming and selection rules (no server needed)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from types import SimpleNamespace

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from devstack.flux import SOURCE, FluxPorts, controller_argv
from devstack.kube import (
    Binaries,
    Ports,
    apiserver_argv,
    controller_manager_argv,
    crd_files,
    etcd_argv,
    kwok_argv,
    kwok_nodes,
    scheduler_argv,
    write_kubeconfig,
)
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
    ports = Ports(
        etcd_client=2379, etcd_peer=2380, apiserver=6443, controller_manager=10257, scheduler=10259, kwok=10247
    )
    apiserver = apiserver_argv(Path("/bin/kube-apiserver"), pki, ports)
    assert "--authorization-mode=RBAC" in apiserver
    assert "--bind-address=127.0.0.1" in apiserver
    assert "--etcd-servers=http://127.0.0.1:2379" in apiserver
    assert f"--service-account-signing-key-file={pki.sa_key}" in apiserver
    assert not [arg for arg in apiserver if arg.startswith("--cloud-provider")]
    etcd = etcd_argv(Path("/bin/etcd"), tmp_path / "data", ports)
    assert "--listen-client-urls=http://127.0.0.1:2379" in etcd
    assert all("0.0.0.0" not in arg for arg in apiserver + etcd)  # noqa: S104 - asserts the opposite


def test_controller_manager_scheduler_and_kwok_run_on_loopback_without_cloud_or_leader_election(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    kubeconfig = tmp_path / "admin.kubeconfig"
    manager = controller_manager_argv(Path("/bin/kcm"), kubeconfig, pki, 10257, tmp_path / "certs")
    assert f"--service-account-private-key-file={pki.sa_key}" in manager and f"--root-ca-file={pki.ca_cert}" in manager
    controllers = next(arg for arg in manager if arg.startswith("--controllers="))
    assert (
        controllers == "--controllers=*,-service-lb-controller,-cloud-node-lifecycle-controller,-node-route-controller"
    )
    assert not [arg for arg in manager if arg.startswith("--cloud-provider")]
    scheduler = scheduler_argv(Path("/bin/sched"), kubeconfig, 10259, tmp_path / "certs")
    for argv, port in ((manager, 10257), (scheduler, 10259)):
        assert {"--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={port}"} <= set(argv)
    kwok = kwok_argv(Path("/bin/kwok"), kubeconfig, tmp_path / "stages.yaml", 10247)
    assert (
        "--manage-all-nodes=false" in kwok and "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in kwok
    )
    assert "--server-address=127.0.0.1:10247" in kwok and f"--config={tmp_path / 'stages.yaml'}" in kwok
    nodes = kwok_nodes("v1.34.4", count=2)["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["kwok-node-0", "kwok-node-1"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert all(n["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4" for n in nodes)


def test_flux_controllers_run_out_of_cluster_on_loopback(tmp_path: Path) -> None:
    binaries = Binaries.from_lines(_build_lines(tmp_path))
    ports = FluxPorts(storage=9090, manifests=9091, health={SOURCE: 9440}, metrics={SOURCE: 8080})
    argv = controller_argv(SOURCE, binaries, ports, tmp_path / "storage")
    assert argv[0] == str(tmp_path / "source-controller")
    assert {"--enable-leader-election=false", "--watch-all-namespaces=true", "--events-addr="} <= set(argv)
    assert {"--health-addr=127.0.0.1:9440", "--metrics-addr=127.0.0.1:8080"} <= set(argv)
    assert {"--storage-addr=127.0.0.1:9090", "--storage-adv-addr=127.0.0.1:9090"} <= set(argv)
    assert f"--storage-path={tmp_path / 'storage'}" in argv


def _build_lines(folder: Path) -> str:
    """What tools/kube/build.sh --print prints, for binaries and files in ``folder``."""
    names = {
        "KUBE_APISERVER_BIN": "kube-apiserver",
        "KUBE_CONTROLLER_MANAGER_BIN": "kube-controller-manager",
        "KUBE_SCHEDULER_BIN": "kube-scheduler",
        "ETCD_BIN": "etcd",
        "KUBECTL_BIN": "kubectl",
        "HELM_BIN": "helm",
        "KWOK_BIN": "kwok",
        "KWOK_STAGES": "kwok-stages.yaml",
        "SOURCE_CONTROLLER_BIN": "source-controller",
        "KUSTOMIZE_CONTROLLER_BIN": "kustomize-controller",
        "HELM_CONTROLLER_BIN": "helm-controller",
        "FLUX_INSTALL_MANIFEST": "flux-install.yaml",
    }
    versions = "KUBE_VERSION=v1.34.4\nKWOK_VERSION=v0.8.0\nSOURCE_CONTROLLER_VERSION=v1.9.6\n"
    versions += "KUSTOMIZE_CONTROLLER_VERSION=v1.9.6\nHELM_CONTROLLER_VERSION=v1.6.4\n"
    return versions + "".join(f"{key}={folder / name}\n" for key, name in names.items())


def test_build_script_output_is_parsed_and_missing_binaries_listed(tmp_path: Path) -> None:
    for name in ("etcd", "kube-controller-manager", "kube-scheduler", "kwok", "source-controller",
                 "kustomize-controller", "helm-controller", "kwok-stages.yaml", "flux-install.yaml"):  # fmt: skip
        present = tmp_path / name
        present.write_text("#!/bin/sh\n")
        present.chmod(0o755)
    binaries = Binaries.from_lines(_build_lines(tmp_path))
    assert binaries.kube_version == "v1.34.4"
    assert binaries.flux_versions == {
        "source-controller": "v1.9.6",
        "kustomize-controller": "v1.9.6",
        "helm-controller": "v1.6.4",
    }
    assert [p.name for p in binaries.missing()] == ["kube-apiserver", "kubectl", "helm"]
    (tmp_path / "flux-install.yaml").unlink()
    assert [p.name for p in binaries.missing()][-1] == "flux-install.yaml", "a generated file is missing too"


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
