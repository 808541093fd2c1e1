"""The local Kubernetes cluster of the stack: a real control plane on loopback, simulated nodes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (all of the pinned release) run as
local processes, so objects are stored and validated by the real API server and reconciled by the
real controllers (Deployments make ReplicaSets make Pods, the scheduler binds them, namespaces are
finalised, garbage is collected). There is no kubelet and no container runtime: KWOK
(``sigs.k8s.io/kwok``) keeps a few fake Nodes alive (heartbeats, leases) and moves the Pods bound to
them through its stages (Running and Ready, Succeeded for a Job's Pods, gone when deleted), so no
image is ever pulled and nothing of a Pod runs. The cert-manager and Flux CRDs
(``tools/crds/generated``) are installed at start-up, and a stand-in for the cloud load-balancer
controller (``devstack.lb_standin``) writes a hostname on Services of type LoadBalancer; the
controller-manager runs none of its cloud controllers.

Layout under ``<state_dir>``: ``kube/pki/`` (keys, 0600), ``kube/etcd-data/`` (wiped at every
fresh start), ``kube/admin.kubeconfig`` (exported as KUBECONFIG), ``kube/ports``, ``kube/kwok.yaml``
(KWOK's stages) and one pid/log file per process: ``kube-etcd``, ``kube-apiserver``,
``kube-controller-manager``, ``kube-scheduler``, ``kube-kwok``, ``kube-lb-standin``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .core import (
    LOOPBACK,
    REPO_ROOT,
    Component,
    Context,
    DevstackError,
    free_port,
    http_ok,
    log_tail,
    wanted_port,
)
from .kube_pki import SERVICE_CLUSTER_IP_RANGE, Pki, ensure_pki

BUILD_SCRIPT = REPO_ROOT / "tools" / "kube" / "build.sh"
CRD_DIR = REPO_ROOT / "tools" / "crds" / "generated"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ETCD, APISERVER, LB_STANDIN = "kube-etcd", "kube-apiserver", "kube-lb-standin"
CONTROLLER_MANAGER, SCHEDULER, KWOK = "kube-controller-manager", "kube-scheduler", "kube-kwok"
PROCESSES = (LB_STANDIN, KWOK, SCHEDULER, CONTROLLER_MANAGER, APISERVER, ETCD)  # stop order
DEFAULT_LB_DELAY = "2"
# the cloud controllers of kube-controller-manager: none runs here (the stand-in writes load balancers)
CLOUD_CONTROLLERS = ("service-lb-controller", "cloud-node-lifecycle-controller", "node-route-controller")
# the simulated nodes: KWOK manages the Nodes with this annotation (as kwokctl's fake nodes have)
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_COUNT = 2
# the milestone of a concurrent start: the API server answers and serves the CRDs (Flux's controllers may start)
API_READY = "kube-api"
# KWOK is restarted when its leases or Pods stall this long (seconds; it renews leases every 10 s)
DEFAULT_KWOK_STALL_AFTER = "30"
POD_CIDR = "10.244.0.0/16"  # KWOK's pod IPs; the Service range is SERVICE_CLUSTER_IP_RANGE


@dataclass(frozen=True)
class Binaries:
    """The pinned, machine-wide cached binaries and generated files (see tools/kube/build.sh)."""

    kube_version: str
    kwok_version: str
    flux_versions: dict[str, str]  # controller name -> version built
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    etcd: Path
    kubectl: Path
    helm: Path
    kwok: Path
    kwok_stages: Path
    source_controller: Path
    kustomize_controller: Path
    helm_controller: Path
    flux_install_manifest: Path

    @classmethod
    def from_lines(cls, text: str) -> Binaries:
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        try:
            return cls(
                kube_version=values["KUBE_VERSION"],
                kwok_version=values["KWOK_VERSION"],
                flux_versions={
                    name: values[f"{name.upper().replace('-', '_')}_VERSION"]
                    for name in ("source-controller", "kustomize-controller", "helm-controller")
                },
                **{
                    field: Path(values[key])
                    for field, key in (
                        ("kube_apiserver", "KUBE_APISERVER_BIN"),
                        ("kube_controller_manager", "KUBE_CONTROLLER_MANAGER_BIN"),
                        ("kube_scheduler", "KUBE_SCHEDULER_BIN"),
                        ("etcd", "ETCD_BIN"),
                        ("kubectl", "KUBECTL_BIN"),
                        ("helm", "HELM_BIN"),
                        ("kwok", "KWOK_BIN"),
                        ("kwok_stages", "KWOK_STAGES"),
                        ("source_controller", "SOURCE_CONTROLLER_BIN"),
                        ("kustomize_controller", "KUSTOMIZE_CONTROLLER_BIN"),
                        ("helm_controller", "HELM_CONTROLLER_BIN"),
                        ("flux_install_manifest", "FLUX_INSTALL_MANIFEST"),
                    )
                },
            )
        except KeyError as exc:
            raise DevstackError(f"{BUILD_SCRIPT} --print did not print {exc.args[0]}. Fix: check the script.") from exc

    def missing(self) -> list[Path]:
        programs = (
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.etcd,
            self.kubectl,
            self.helm,
            self.kwok,
            self.source_controller,
            self.kustomize_controller,
            self.helm_controller,
        )
        files = (self.kwok_stages, self.flux_install_manifest)
        return [p for p in programs if not os.access(p, os.X_OK)] + [p for p in files if not p.is_file()]


def _run_build(*args: str) -> str:
    try:
        result = subprocess.run(["bash", str(BUILD_SCRIPT), *args], check=True, text=True, stdout=subprocess.PIPE)
    except subprocess.CalledProcessError as exc:
        raise DevstackError(
            f"{BUILD_SCRIPT} {' '.join(args)} failed (exit {exc.returncode}); its error output is above. "
            "Fix: run `tools/kube/install-tools.sh` by hand and read its output."
        ) from exc
    return result.stdout


def ensure_binaries() -> Binaries:
    """The cached binaries; builds them first (minutes, once per machine) when any is missing."""
    binaries = Binaries.from_lines(_run_build("--print"))
    if binaries.missing():
        print(
            f"devstack kube: building {', '.join(p.name for p in binaries.missing())} (first run on this machine)",
            file=sys.stderr,
        )
        binaries = Binaries.from_lines(_run_build())
    return binaries


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    def dump(self) -> str:
        return json.dumps(self.__dict__) + "\n"

    @classmethod
    def load(cls, path: Path) -> Ports | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError, TypeError):
            return None


def free_ports(count: int, taken: tuple[int, ...] = ()) -> list[int]:
    """``count`` distinct free loopback ports, none of ``taken``."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in taken:
            ports.append(port)
    return ports


def _choose_ports() -> Ports:
    apiserver = wanted_port("BIOMAGE_KUBE_PORT")
    etcd_client, etcd_peer, controller_manager, scheduler, kwok = free_ports(5, taken=(apiserver,))
    return Ports(
        etcd_client=etcd_client,
        etcd_peer=etcd_peer,
        apiserver=apiserver,
        controller_manager=controller_manager,
        scheduler=scheduler,
        kwok=kwok,
    )


def etcd_argv(binary: Path, data_dir: Path, ports: Ports) -> list[str]:
    client = f"http://{LOOPBACK}:{ports.etcd_client}"
    peer = f"http://{LOOPBACK}:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=local",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        "--initial-cluster-state=new",
        # a throw-away store for tests and development: skip fsync (much faster on shared disks)
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_argv(binary: Path, pki: Pki, ports: Ports) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki.server_cert}",
        f"--tls-private-key-file={pki.server_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--allow-privileged=true",
        "--profiling=false",
        # there are no nodes: the `kubernetes` Service cannot get loopback endpoints
        "--endpoint-reconciler-type=none",
        f"--cert-dir={pki.folder}",
    ]


def controller_manager_argv(binary: Path, kubeconfig: Path, pki: Pki, port: int, cert_dir: Path) -> list[str]:
    """kube-controller-manager as kubeadm runs it, minus cloud, leader election and node CIDRs."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",  # its self-signed serving certificate (health checks only)
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        "--controllers=*," + ",".join(f"-{name}" for name in CLOUD_CONTROLLERS),
        "--profiling=false",
    ]


def scheduler_argv(binary: Path, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok_argv(binary: Path, kubeconfig: Path, config: Path, port: int) -> list[str]:
    """The out-of-cluster KWOK controller, managing only the stack's annotated fake nodes."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        f"--cidr={POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        f"--server-address={LOOPBACK}:{port}",  # /healthz
        "--node-lease-duration-seconds=40",
    ]


def kwok_watch_argv(
    kwok: list[str], server: str, pki: Pki, stall_after: str, count: int = KWOK_NODE_COUNT
) -> list[str]:
    """KWOK under its supervisor (``devstack.kwok_watch``), which restarts it when it stalls."""
    nodes = [f"--node=kwok-node-{index}" for index in range(count)]
    return [
        sys.executable, "-m", "devstack.kwok_watch",
        f"--server={server}", f"--ca={pki.ca_cert}", f"--cert={pki.admin_cert}", f"--key={pki.admin_key}",
        *nodes, f"--stall-after={stall_after}", "--", *kwok,
    ]  # fmt: skip


def kwok_nodes(kube_version: str, count: int = KWOK_NODE_COUNT) -> dict[str, object]:
    """The fake Nodes (a List for kubectl apply), shaped like kwokctl's: KWOK fills in their status."""
    nodes = []
    for index in range(count):
        name = f"kwok-node-{index}"
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/role": "agent",
                        "node-role.kubernetes.io/agent": "",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "nodeInfo": {  # every field is required; KWOK keeps these
                        "architecture": "amd64",
                        "bootID": "",
                        "containerRuntimeVersion": "kwok",
                        "kernelVersion": "kwok",
                        "kubeProxyVersion": kube_version,
                        "kubeletVersion": kube_version,
                        "machineID": "",
                        "operatingSystem": "linux",
                        "osImage": "",
                        "systemUUID": "",
                    },
                    "phase": "Running",
                },
            }
        )
    return {"apiVersion": "v1", "kind": "List", "items": nodes}


def _tools_pythonpath() -> dict[str, str]:
    """The env of the stack's Python helpers: tools/ first on the path, whatever the caller's."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "tools"), os.environ.get("PYTHONPATH")]))}


def _kubeconfig(server: str, pki: Pki) -> dict[str, object]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "biomage-local", "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}
        ],
        "users": [
            {
                "name": "biomage-local-admin",
                "user": {"client-certificate-data": b64(pki.admin_cert), "client-key-data": b64(pki.admin_key)},
            }
        ],
        "contexts": [{"name": "biomage-local", "context": {"cluster": "biomage-local", "user": "biomage-local-admin"}}],
        "current-context": "biomage-local",
    }


def write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    """Write the admin kubeconfig (JSON is valid YAML) with mode 0600: it holds a private key."""
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(_kubeconfig(server, pki), handle, indent=2)
    path.with_suffix(".tmp").replace(path)


def admin_ssl_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def self_signed_context() -> ssl.SSLContext:
    """For the /healthz of the controller-manager and scheduler, whose serving certificates are their
    own self-signed ones (loopback only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def crd_files(folder: Path = CRD_DIR) -> list[Path]:
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise DevstackError(f"no CRDs in {folder}. Fix: run `make -C tools/crds` (or restore the folder from git).")
    return files


class Kube(Component):
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK and the load-balancer
    stand-in, started and stopped as one component."""

    name = "kube"
    provides = (API_READY,)

    # -- paths ---------------------------------------------------------------------------------
    @staticmethod
    def folder(ctx: Context) -> Path:
        return ctx.path("kube")

    def kubeconfig(self, ctx: Context) -> Path:
        return self.folder(ctx) / "admin.kubeconfig"

    def _standin_endpoint(self, ctx: Context) -> Path:
        """The AWS emulator endpoint the running stand-in registers load balancers at ('' = none)."""
        return self.folder(ctx) / "lb-standin.aws-endpoint"

    def _recorded_standin_endpoint(self, ctx: Context) -> str | None:
        try:
            return self._standin_endpoint(ctx).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _ports_file(self, ctx: Context) -> Path:
        return self.folder(ctx) / "ports"

    @staticmethod
    def server(ports: Ports) -> str:
        return f"https://{LOOPBACK}:{ports.apiserver}"

    # -- health --------------------------------------------------------------------------------
    def _readyz_ok(self, pki: Pki, ports: Ports) -> bool:
        """True only on 200 from /readyz (every check passed), using the admin client cert."""
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback only
                f"{self.server(ports)}/readyz", timeout=2, context=admin_ssl_context(pki)
            ) as resp:
                return resp.status == 200
        except OSError:
            return False

    @staticmethod
    def _component_healthy(port: int) -> bool:
        """/healthz of kube-controller-manager or kube-scheduler (always allowed, anonymously)."""
        return http_ok(f"https://{LOOPBACK}:{port}/healthz", context=self_signed_context(), status_below=300)

    @staticmethod
    def _kwok_healthy(port: int) -> bool:
        return http_ok(f"http://{LOOPBACK}:{port}/healthz", status_below=300)

    def _healthy(self, ctx: Context, pki: Pki, ports: Ports) -> bool:
        """Every process of the component runs and answers its health check: safe to adopt."""
        return (
            all(ctx.read_pid(name) is not None for name in PROCESSES)
            and self._readyz_ok(pki, ports)
            and self._component_healthy(ports.controller_manager)
            and self._component_healthy(ports.scheduler)
            and self._kwok_healthy(ports.kwok)
        )

    def is_running(self, ctx: Context) -> bool:
        return all(ctx.read_pid(name) is not None for name in (ETCD, APISERVER))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, ctx: Context) -> dict[str, str]:
        binaries = ensure_binaries()
        pki = ensure_pki(self.folder(ctx) / "pki")
        ports = Ports.load(self._ports_file(ctx))
        if ports is None or not self._healthy(ctx, pki, ports):
            self.stop(ctx)  # recovers from stale pid files and half-dead stacks
            ports = self._start_fresh(ctx, binaries, pki)
        else:
            ctx.wait_for("moto")  # the stand-in registers load balancers in the AWS emulator, when it runs
            if self._recorded_standin_endpoint(ctx) != ctx.env.get("AWS_ENDPOINT_URL", ""):
                # the AWS emulator was restarted on another port since: point the stand-in at it
                ctx.terminate(LB_STANDIN)
                self._start_lb_standin(ctx)
        return self._env(ctx, binaries, ports)

    def _env(self, ctx: Context, binaries: Binaries, ports: Ports) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.kubeconfig(ctx)),
            "K8S_AUTH_KUBECONFIG": str(self.kubeconfig(ctx)),
            "BIOMAGE_KUBE_SERVER": self.server(ports),
            "BIOMAGE_KUBE_VERSION": binaries.kube_version,
            "BIOMAGE_KWOK_VERSION": binaries.kwok_version,
            "BIOMAGE_KUBECTL": str(binaries.kubectl),
            "BIOMAGE_HELM": str(binaries.helm),
        }

    def _start_fresh(self, ctx: Context, binaries: Binaries, pki: Pki) -> Ports:
        folder = self.folder(ctx)
        data_dir = folder / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        ports = _choose_ports()
        self._ports_file(ctx).write_text(ports.dump(), encoding="utf-8")

        ctx.spawn(ETCD, etcd_argv(binaries.etcd, data_dir, ports))
        etcd_health = f"http://{LOOPBACK}:{ports.etcd_client}/health"
        ctx.wait_until(lambda: http_ok(etcd_health), f"etcd answering on {etcd_health}", ETCD)

        ctx.spawn(APISERVER, apiserver_argv(binaries.kube_apiserver, pki, ports))
        kubeconfig = self.kubeconfig(ctx)
        write_kubeconfig(kubeconfig, self.server(ports), pki)
        ctx.wait_until(lambda: self._readyz_ok(pki, ports), f"{self.server(ports)}/readyz", APISERVER)

        # the controllers start while the CRDs and nodes are created; each is then waited for
        certs = folder / "serving-certs"
        ctx.spawn(
            CONTROLLER_MANAGER,
            controller_manager_argv(binaries.kube_controller_manager, kubeconfig, pki, ports.controller_manager, certs),
        )
        ctx.spawn(SCHEDULER, scheduler_argv(binaries.kube_scheduler, kubeconfig, ports.scheduler, certs))
        kwok = kwok_argv(binaries.kwok, kubeconfig, binaries.kwok_stages, ports.kwok)
        stall_after = os.environ.get("BIOMAGE_KWOK_STALL_AFTER", DEFAULT_KWOK_STALL_AFTER)
        ctx.spawn(KWOK, kwok_watch_argv(kwok, self.server(ports), pki, stall_after), env=_tools_pythonpath())
        ctx.wait_for("moto")  # the stand-in registers load balancers in the AWS emulator, when it runs
        ready_file = self._spawn_lb_standin(ctx)
        # the CRDs and the fake nodes, server-side applied at once (kubectl would first read discovery)
        objects = [(self._crd_path(path), path.read_text(encoding="utf-8")) for path in crd_files()]
        objects += [
            (f"/api/v1/nodes/{node['metadata']['name']}", json.dumps(node))
            for node in kwok_nodes(binaries.kube_version)["items"]
        ]  # type: ignore[index]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: self._apply(ctx, pki, ports, *item), objects))
        ctx.wait_until(lambda: self._crds_established(pki, ports), "the CRDs Established", APISERVER)
        ctx.reached(API_READY, self._env(ctx, binaries, ports))  # Flux's controllers start now
        for name, port in ((CONTROLLER_MANAGER, ports.controller_manager), (SCHEDULER, ports.scheduler)):
            ctx.wait_until(lambda port=port: self._component_healthy(port), f"https://{LOOPBACK}:{port}/healthz", name)
        ctx.wait_until(lambda: self._kwok_healthy(ports.kwok), f"http://{LOOPBACK}:{ports.kwok}/healthz", KWOK)
        ctx.wait_until(lambda: self._nodes_ready(pki, ports), "the fake nodes Ready", KWOK)
        ctx.wait_until(ready_file.exists, "the load-balancer stand-in watching Services", LB_STANDIN)
        return ports

    def _kubectl(self, ctx: Context, kubectl: Path, *args: str, stdin: str | None = None) -> None:
        argv = [str(kubectl), f"--kubeconfig={self.kubeconfig(ctx)}", *args]
        result = subprocess.run(argv, check=False, text=True, capture_output=True, input=stdin)
        if result.returncode != 0:
            raise DevstackError(
                f"`kubectl {' '.join(args)}` failed against the local API server:\n{result.stderr.strip()}\n"
                f"API server log tail ({ctx.log_file(APISERVER)}):\n{log_tail(ctx.log_file(APISERVER))}"
            )

    def _get(self, pki: Pki, ports: Ports, path: str) -> dict[str, object] | None:
        """A GET on the API server as the admin (None when it does not answer)."""
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback only
                f"{self.server(ports)}{path}", timeout=5, context=admin_ssl_context(pki)
            ) as resp:
                return json.load(resp)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _crd_path(path: Path) -> str:
        """The API path of a generated CRD, from its file name ``<group>_<plural>.yaml``."""
        group, plural = path.stem.split("_", 1)
        return f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{group}"

    def _apply(self, ctx: Context, pki: Pki, ports: Ports, path: str, body: str) -> None:
        """Server-side apply of one object (YAML or JSON) as the stack's field manager."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.server(ports)}{path}?fieldManager=biomage-devstack&force=true",
            data=body.encode("utf-8"),
            method="PATCH",
            headers={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        )
        answer = ""
        try:
            with urllib.request.urlopen(request, timeout=30, context=admin_ssl_context(pki)):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode("utf-8", "replace")[:2000]
        except OSError as exc:
            answer = str(exc)
        raise DevstackError(
            f"applying {path} to the local API server failed: {answer}\n"
            f"API server log tail ({ctx.log_file(APISERVER)}):\n{log_tail(ctx.log_file(APISERVER))}"
        )

    @staticmethod
    def _condition_true(item: dict[str, object], kind: str) -> bool:
        conditions = (item.get("status") or {}).get("conditions") or []  # type: ignore[union-attr]
        return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)

    def _crds_established(self, pki: Pki, ports: Ports) -> bool:
        """Every generated CRD (file ``<group>_<plural>.yaml``) is served."""
        listing = self._get(pki, ports, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        if listing is None:
            return False
        established = {
            item["metadata"]["name"]  # type: ignore[index]
            for item in listing["items"]  # type: ignore[union-attr]
            if self._condition_true(item, "Established")
        }
        wanted = {self._crd_path(path).rsplit("/", 1)[1] for path in crd_files()}
        return wanted <= established

    def _nodes_ready(self, pki: Pki, ports: Ports) -> bool:
        listing = self._get(pki, ports, "/api/v1/nodes")
        if listing is None:
            return False
        nodes = listing["items"]  # type: ignore[index]
        return len(nodes) >= KWOK_NODE_COUNT and all(self._condition_true(node, "Ready") for node in nodes)

    def _start_lb_standin(self, ctx: Context) -> None:
        ready_file = self._spawn_lb_standin(ctx)
        ctx.wait_until(ready_file.exists, "the load-balancer stand-in watching Services", LB_STANDIN)

    def _spawn_lb_standin(self, ctx: Context) -> Path:
        """Start the stand-in; return the file it creates once it watches Services."""
        ready_file = self.folder(ctx) / "lb-standin.ready"
        ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "devstack.lb_standin",
            f"--kubeconfig={self.kubeconfig(ctx)}",
            f"--delay={os.environ.get('BIOMAGE_LB_DELAY', DEFAULT_LB_DELAY)}",
            f"--region={ctx.region}",
            f"--ready-file={ready_file}",
        ]
        env = _tools_pythonpath()
        if ctx.env.get("AWS_ENDPOINT_URL"):
            # the AWS emulator runs: register each load balancer there too (see lb_standin's doc)
            env.update({key: value for key, value in ctx.env.items() if key.startswith("AWS_")})
            argv.append("--register-in-aws-emulator")
        ctx.spawn(LB_STANDIN, argv, env=env)
        self._standin_endpoint(ctx).write_text(ctx.env.get("AWS_ENDPOINT_URL", ""), encoding="utf-8")
        return ready_file

    def stop(self, ctx: Context) -> bool:
        stopped = [ctx.terminate(name) for name in PROCESSES]
        self._ports_file(ctx).unlink(missing_ok=True)
        return any(stopped)
