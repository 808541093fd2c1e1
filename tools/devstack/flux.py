"""Flux's own controllers for the local stack, run as local processes beside the API server.

source-controller, kustomize-controller and helm-controller are the real controllers, built from
their Go modules (tools/kube/build.sh, versions in tools/kube/controllers/go.mod), run out of
cluster against the stack's API server (its admin kubeconfig), leader election off, each with its
metrics and health endpoints on free loopback ports. source-controller serves its artifacts on a
loopback port and advertises that address (``--storage-adv-addr``), so kustomize-controller and
helm-controller fetch what it produced exactly as they would from its in-cluster Service. They
watch all namespaces. kustomize-controller and helm-controller run with Flux's multi-tenancy lockdown,
the same arguments the flux role sets on the install manifest's Deployments in every environment
(``--default-service-account=release-deployer``, and ``--no-cross-namespace-refs=true`` for
kustomize-controller: plugins/module_utils/flux/lockdown.py, docs/tenants.md).

The component also serves Flux's install manifest on loopback (``FLUX_INSTALL_MANIFEST_URL``, with
its SHA-256 in ``FLUX_INSTALL_MANIFEST_SHA256``): the manifest rendered at build time from module
sources (tools/kube/controllers/render), with the structure of the release's ``install.yaml``. The
flux role applies it in development as it applies the release's in the cloud; its Deployments then
run as simulated Pods on KWOK's nodes while these processes do the work.

Layout under ``<state_dir>``: ``flux/ports``, ``flux/storage/`` (source-controller's artifacts,
wiped at every fresh start), ``flux/manifests/install.yaml``, ``flux/api-server`` (which API
server the controllers were started against) and one pid/log file per process:
``flux-source-controller``, ``flux-kustomize-controller``, ``flux-helm-controller``,
``flux-manifests``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .core import LOOPBACK, REPO_ROOT, Component, Context, DevstackError, http_ok
from .kube import API_READY, APISERVER, Binaries, ensure_binaries, free_ports

SOURCE, KUSTOMIZE, HELM = "flux-source-controller", "flux-kustomize-controller", "flux-helm-controller"
MANIFESTS = "flux-manifests"
CONTROLLERS = (SOURCE, KUSTOMIZE, HELM)
PROCESSES = (HELM, KUSTOMIZE, SOURCE, MANIFESTS)  # stop order
NAMESPACE = "flux-system"  # the install manifest's namespace (RUNTIME_NAMESPACE of the controllers)


@dataclass(frozen=True)
class FluxPorts:
    storage: int
    manifests: int
    health: dict[str, int]  # process name -> health port
    metrics: dict[str, int]

    def dump(self) -> str:
        return json.dumps(self.__dict__) + "\n"

    @classmethod
    def load(cls, path: Path) -> FluxPorts | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    @classmethod
    def choose(cls) -> FluxPorts:
        ports = free_ports(2 + 2 * len(CONTROLLERS))
        health = dict(zip(CONTROLLERS, ports[2:5], strict=True))
        metrics = dict(zip(CONTROLLERS, ports[5:8], strict=True))
        return cls(storage=ports[0], manifests=ports[1], health=health, metrics=metrics)


def lockdown_args(name: str) -> list[str]:
    """The multi-tenancy lockdown's arguments of one controller process: those the flux role sets on the
    install manifest's Deployment of that controller (one definition, the collection's)."""
    collections = str(REPO_ROOT / "collections")
    if collections not in sys.path:
        sys.path.append(collections)
    from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown  # noqa: PLC0415

    return lockdown.controller_args(name.removeprefix("flux-"))


def controller_argv(name: str, binaries: Binaries, ports: FluxPorts, storage: Path) -> list[str]:
    """One controller, out of cluster: no leader election, loopback endpoints, all namespaces, and Flux's
    multi-tenancy lockdown (:func:`lockdown_args`)."""
    binary = {
        SOURCE: binaries.source_controller,
        KUSTOMIZE: binaries.kustomize_controller,
        HELM: binaries.helm_controller,
    }[name]
    argv = [
        str(binary),
        "--enable-leader-election=false",
        "--watch-all-namespaces=true",
        f"--metrics-addr={LOOPBACK}:{ports.metrics[name]}",
        f"--health-addr={LOOPBACK}:{ports.health[name]}",
        "--events-addr=",  # no notification-controller runs: events go to the API server only
        "--log-level=info",
        "--log-encoding=json",
    ]
    if name == SOURCE:
        address = f"{LOOPBACK}:{ports.storage}"
        argv += [f"--storage-path={storage}", f"--storage-addr={address}", f"--storage-adv-addr={address}"]
    return argv + lockdown_args(name)


def manifests_argv(folder: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", LOOPBACK, "--directory", str(folder), str(port)]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Flux(Component):
    """source-controller, kustomize-controller, helm-controller and the install manifest's server."""

    name = "flux"
    after = (API_READY,)  # the API server answers and serves Flux's CRDs; the nodes may still come up

    @staticmethod
    def folder(ctx: Context) -> Path:
        return ctx.path("flux")

    def _ports_file(self, ctx: Context) -> Path:
        return self.folder(ctx) / "ports"

    def _api_server_file(self, ctx: Context) -> Path:
        return self.folder(ctx) / "api-server"

    def _manifest(self, ctx: Context) -> Path:
        return self.folder(ctx) / "manifests" / "install.yaml"

    @staticmethod
    def _api_server(ctx: Context) -> str:
        """Which API server (address and process) the controllers talk to: they restart with it."""
        kubeconfig = ctx.env.get("KUBECONFIG")
        if not kubeconfig:
            raise DevstackError(
                "the flux component runs Flux's controllers against the stack's API server, which is not started. "
                "Fix: start the kube component too (--components kube,flux; `make dev-up` starts both)."
            )
        return f"{ctx.env.get('BIOMAGE_KUBE_SERVER', '')} pid {ctx.read_pid(APISERVER)} {kubeconfig}"

    @staticmethod
    def _ready(port: int) -> bool:
        return http_ok(f"http://{LOOPBACK}:{port}/readyz", status_below=300)

    def _healthy(self, ctx: Context, ports: FluxPorts) -> bool:
        try:
            started_against = self._api_server_file(ctx).read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        return (
            started_against == self._api_server(ctx)
            and all(ctx.read_pid(name) is not None for name in PROCESSES)
            and all(self._ready(ports.health[name]) for name in CONTROLLERS)
            and http_ok(f"http://{LOOPBACK}:{ports.manifests}/install.yaml", status_below=300)
            and self._manifest(ctx).is_file()
        )

    def is_running(self, ctx: Context) -> bool:
        return all(ctx.read_pid(name) is not None for name in CONTROLLERS)

    def start(self, ctx: Context) -> dict[str, str]:
        binaries = ensure_binaries()
        api_server = self._api_server(ctx)
        ports = FluxPorts.load(self._ports_file(ctx))
        if ports is None or not self._healthy(ctx, ports):
            self.stop(ctx)
            ports = self._start_fresh(ctx, binaries, api_server)
        manifest = self._manifest(ctx)
        return {
            "FLUX_INSTALL_MANIFEST_URL": f"http://{LOOPBACK}:{ports.manifests}/install.yaml",
            "FLUX_INSTALL_MANIFEST_SHA256": sha256_of(manifest),
            "FLUX_ARTIFACT_URL": f"http://{LOOPBACK}:{ports.storage}",
            "FLUX_CONTROLLER_VERSIONS": ",".join(f"{k}={v}" for k, v in binaries.flux_versions.items()),
        }

    def _start_fresh(self, ctx: Context, binaries: Binaries, api_server: str) -> FluxPorts:
        folder = self.folder(ctx)
        storage = folder / "storage"
        shutil.rmtree(storage, ignore_errors=True)
        storage.mkdir(parents=True)
        manifest = self._manifest(ctx)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(binaries.flux_install_manifest, manifest)
        ports = FluxPorts.choose()
        self._ports_file(ctx).write_text(ports.dump(), encoding="utf-8")

        env = {"KUBECONFIG": ctx.env["KUBECONFIG"], "RUNTIME_NAMESPACE": NAMESPACE}
        for name in CONTROLLERS:
            ctx.spawn(name, controller_argv(name, binaries, ports, storage), env=env)
        ctx.spawn(MANIFESTS, manifests_argv(manifest.parent, ports.manifests))
        for name in CONTROLLERS:
            port = ports.health[name]
            ctx.wait_until(lambda port=port: self._ready(port), f"http://{LOOPBACK}:{port}/readyz", name)
        url = f"http://{LOOPBACK}:{ports.manifests}/install.yaml"
        ctx.wait_until(lambda: http_ok(url, status_below=300), url, MANIFESTS)
        self._api_server_file(ctx).write_text(api_server, encoding="utf-8")
        return ports

    def stop(self, ctx: Context) -> bool:
        stopped = [ctx.terminate(name) for name in PROCESSES]
        self._ports_file(ctx).unlink(missing_ok=True)
        self._api_server_file(ctx).unlink(missing_ok=True)
        return any(stopped)
