"""The AWS API emulator of the local stack: a moto server on a loopback port."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import boto3
import yaml

from .core import LOOPBACK, REPO_ROOT, Component, Context, DevstackError, http_ok, port_in_use, wanted_port

# Dummy credentials: moto accepts any; real ones must never be sent to the emulator. They live in a
# credentials file of the stack's own (profile PROFILE), never in environment variables, so that no
# key is ever part of a command line or task environment that Ansible prints at -vvv.
DUMMY_KEY = "testing"
PROFILE = "biomage-devstack"
# The development account's public hosted zone. In AWS a platform's zone exists before any run points records
# in it (route53_dns reads it and never creates one); the emulator starts empty, so the stack gives it the
# zone the development inventory names, as the real account has it.
DEVELOPMENT_DNS_VARS = REPO_ROOT / "inventories/development/group_vars/all/route53_dns.yml"


def development_hosted_zone() -> str:
    """The hosted zone the development inventory names (``route53_dns_hosted_zone_name``), ending in a dot."""
    data = yaml.safe_load(DEVELOPMENT_DNS_VARS.read_text(encoding="utf-8")) or {}
    name = str(data.get("route53_dns_hosted_zone_name") or "")
    if not name:
        raise DevstackError(
            f"{DEVELOPMENT_DNS_VARS.relative_to(REPO_ROOT)} names no route53_dns_hosted_zone_name. "
            "Fix: name the development account's hosted zone there (biomage.test)."
        )
    return name.rstrip(".") + "."


def _moto_server_argv(port: int) -> list[str]:
    """moto's server with the stack's labelled patches (devstack/moto_ext.py) applied."""
    if importlib.util.find_spec("moto") is None:
        raise DevstackError("moto[server] is not installed. Fix: run `make setup`.")
    launcher = Path(__file__).with_name("moto_server.py")
    return [sys.executable, str(launcher), "-H", LOOPBACK, "-p", str(port)]


class Moto(Component):
    name = "moto"

    def _port_file(self, ctx: Context) -> Path:
        return ctx.path("moto.port")

    def _recorded_port(self, ctx: Context) -> int | None:
        try:
            return int(self._port_file(ctx).read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def url(port: int) -> str:
        return f"http://{LOOPBACK}:{port}"

    def _healthy(self, port: int) -> bool:
        return http_ok(f"{self.url(port)}/moto-api/")

    def start(self, ctx: Context) -> dict[str, str]:
        pid = ctx.read_pid(self.name)
        port = self._recorded_port(ctx)
        if pid is not None and port is not None:
            if not self._healthy(port):
                raise DevstackError(
                    f"moto server (pid {pid}) runs but does not answer on {self.url(port)}. "
                    "Fix: run `make dev-down` then `make dev-up`."
                )
        else:
            # a port recorded without a running server: the emulator died (killed, crashed, reboot)
            # without `make dev-down`; its state, in memory only, died with it
            previous = port
            if previous is not None and previous > 1024 and not os.environ.get("BIOMAGE_MOTO_PORT"):
                # the same endpoint when it is free: the env file and the running stand-ins stay valid
                port = previous if not port_in_use(previous) else wanted_port("BIOMAGE_MOTO_PORT")
            else:
                port = wanted_port("BIOMAGE_MOTO_PORT")
            ctx.spawn(self.name, _moto_server_argv(port))
            self._port_file(ctx).write_text(f"{port}\n", encoding="ascii")
            ctx.wait_until(lambda: self._healthy(port), f"answering on {self.url(port)}", self.name)
            if previous is not None:
                ctx.notices.append(
                    f"the AWS emulator had stopped (it served {self.url(previous)}); a new one serves "
                    f"{self.url(port)} and is EMPTY: the stacks, roles, load balancers and environment locks of "
                    "earlier runs are gone (moto keeps its state in memory only). Fix: run `make demo` (or the "
                    "playbooks you ran) again to re-create them."
                )
        credentials, config = self._write_profile(ctx, port)
        self._seed_account(ctx, port)
        return {
            "AWS_ENDPOINT_URL": self.url(port),
            "AWS_REGION": ctx.region,
            "AWS_DEFAULT_REGION": ctx.region,
            "AWS_PROFILE": PROFILE,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_CONFIG_FILE": str(config),
        }

    def _seed_account(self, ctx: Context, port: int) -> None:
        """What the development account holds before any playbook runs: its hosted zone (once)."""
        route53 = boto3.client(
            "route53",
            endpoint_url=self.url(port),
            region_name=ctx.region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        zone = development_hosted_zone()
        listed = route53.list_hosted_zones_by_name(DNSName=zone, MaxItems="1")["HostedZones"]
        if not any(item["Name"] == zone for item in listed):
            route53.create_hosted_zone(
                Name=zone,
                CallerReference=f"biomage-devstack-{zone}",
                HostedZoneConfig={"Comment": "the development account's zone (local stack)", "PrivateZone": False},
            )

    def _write_profile(self, ctx: Context, port: int) -> tuple[Path, Path]:
        folder = ctx.path("aws")
        folder.mkdir(parents=True, exist_ok=True)
        credentials, config = folder / "credentials", folder / "config"
        credentials.write_text(
            f"[{PROFILE}]\naws_access_key_id = {DUMMY_KEY}\naws_secret_access_key = {DUMMY_KEY}\n", encoding="utf-8"
        )
        credentials.chmod(0o600)
        config.write_text(
            f"[profile {PROFILE}]\nregion = {ctx.region}\nendpoint_url = {self.url(port)}\n", encoding="utf-8"
        )
        return credentials, config

    def stop(self, ctx: Context) -> bool:
        stopped = ctx.terminate(self.name)
        self._port_file(ctx).unlink(missing_ok=True)
        return stopped
