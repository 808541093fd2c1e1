"""STAND-IN for the cloud load-balancer controller of the local Kubernetes API server.

On EKS, the AWS cloud controller (or the AWS Load Balancer Controller) provisions a load balancer
for every Service of ``type: LoadBalancer`` and, some time later, writes its DNS name into
``status.loadBalancer.ingress[0].hostname``. The local API server has no nodes and no cloud, so
nothing would ever do that. This small process does only that last step: it polls Services and,
``--delay`` seconds after first seeing one of type LoadBalancer without an ingress, writes an
ELB-shaped hostname (``a<uid>-<hash>.elb.<region>.amazonaws.com``, as the in-tree AWS provider names
NLBs). No load balancer exists behind that name. It is a test helper, not a controller to trust.

Like the cloud's service controller, it puts the finalizer ``service.kubernetes.io/load-balancer-cleanup``
on a Service when it gives it a load balancer, and removes it ``--delay`` seconds after the Service
is deleted (or stops being of type LoadBalancer): a deleted LoadBalancer Service stays visible,
with a deletion timestamp, while its load balancer goes, exactly as code that waits for that
(e.g. ``eksctl_cluster`` with ``state: absent``) must expect.

With ``--register-in-aws-emulator`` (the devstack passes it when the moto component runs), it also
creates a network load balancer of that name (``a`` + the Service uid) in the local AWS emulator
and writes the emulator's DNS name instead, so that roles which look the load balancer up in
ELBv2 (e.g. for a Route53 alias record's hosted zone id) find it, and deletes it there before it
releases a deleted Service. It refuses any endpoint other than a loopback one: it never creates a
real load balancer.
When the emulator restarted (empty), a Service's load balancer is gone while the Service keeps the old
hostname: the stand-in sees that on its next pass and provisions it again, with the new name.

Run by the devstack ``kube`` component: ``python -m devstack.lb_standin --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from devstack.core import StopSignal

POLL_SECONDS = 0.25
# the finalizer Kubernetes' service controller puts on a Service it provisioned a load balancer for
CLEANUP_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
# An orphan (its API server gone for this long, or its kubeconfig deleted) exits by itself.
ORPHAN_SECONDS = 60.0


def elb_hostname(uid: str, region: str) -> str:
    """The hostname the in-tree AWS provider would give an NLB for the Service with this uid."""
    name = load_balancer_name(uid)
    suffix = hashlib.sha256(uid.encode("ascii")).hexdigest()[:16]
    return f"{name}-{suffix}.elb.{region}.amazonaws.com"


def load_balancer_name(uid: str) -> str:
    """The in-tree AWS provider's load-balancer name: ``a`` + the Service uid without dashes, 32 chars."""
    return ("a" + uid.replace("-", ""))[:32]


class EmulatorLoadBalancers:
    """Creates (or finds) the Service's network load balancer in the local AWS emulator."""

    def __init__(self) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        host = urllib.parse.urlsplit(endpoint).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(
                f"lb-standin: refusing to create load balancers at AWS_ENDPOINT_URL={endpoint!r}: not loopback"
            )
        self.elbv2 = boto3.client("elbv2")
        self.ec2 = boto3.client("ec2")

    def _default_subnets(self) -> list[str]:
        vpcs = self.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise RuntimeError("the AWS emulator has no default VPC")
        subnets = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
        return [subnet["SubnetId"] for subnet in subnets]

    def hostname(self, service: Any) -> str:
        meta = service.metadata
        created = self.elbv2.create_load_balancer(  # idempotent for the same name and settings
            Name=load_balancer_name(meta.uid),
            Subnets=self._default_subnets(),
            Type="network",
            Scheme="internet-facing",
            Tags=[{"Key": "kubernetes.io/service-name", "Value": f"{meta.namespace}/{meta.name}"}],
        )
        return str(created["LoadBalancers"][0]["DNSName"])

    def exists(self, service: Any) -> bool:
        """Whether the Service's load balancer is in the emulator (it is gone after the emulator restarted)."""
        try:
            self.elbv2.describe_load_balancers(Names=[load_balancer_name(service.metadata.uid)])
        except self.elbv2.exceptions.LoadBalancerNotFoundException:
            return False
        return True

    def delete(self, service: Any) -> None:
        """Delete the Service's load balancer from the emulator (nothing when it has none)."""
        try:
            found = self.elbv2.describe_load_balancers(Names=[load_balancer_name(service.metadata.uid)])
        except self.elbv2.exceptions.LoadBalancerNotFoundException:
            return
        for balancer in found["LoadBalancers"]:
            self.elbv2.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])


def _finalizers(service: Any) -> list[str]:
    return list(service.metadata.finalizers or [])


def needs_hostname(service: Any) -> bool:
    if service.spec is None or service.spec.type != "LoadBalancer" or service.metadata.deletion_timestamp:
        return False
    ingress = service.status.load_balancer.ingress if service.status and service.status.load_balancer else None
    return not ingress or CLEANUP_FINALIZER not in _finalizers(service)


def has_hostname(service: Any) -> bool:
    """A live LoadBalancer Service that was given an address (and holds the cleanup finalizer)."""
    if service.spec is None or service.spec.type != "LoadBalancer" or service.metadata.deletion_timestamp:
        return False
    ingress = service.status.load_balancer.ingress if service.status and service.status.load_balancer else None
    return bool(ingress) and CLEANUP_FINALIZER in _finalizers(service)


def needs_release(service: Any) -> bool:
    """Deleted, or no longer of type LoadBalancer, while still holding the cleanup finalizer."""
    if CLEANUP_FINALIZER not in _finalizers(service):
        return False
    return bool(service.metadata.deletion_timestamp) or service.spec is None or service.spec.type != "LoadBalancer"


class LoadBalancerStandIn:
    """Gives LoadBalancer Services a hostname and releases deleted ones, each after a delay (see module doc)."""

    def __init__(
        self, api: client.CoreV1Api, delay: float, region: str, emulator: EmulatorLoadBalancers | None = None
    ) -> None:
        self.api = api
        self.delay = delay
        self.region = region
        self.emulator = emulator
        self.first_seen: dict[tuple[str, str], float] = {}

    def poll_once(self, now: float) -> list[str]:
        """One pass over all Services; returns what was done, e.g. ``provisioned ns/name``."""
        done: list[str] = []
        waiting: dict[tuple[str, str], float] = {}
        for service in self.api.list_service_for_all_namespaces().items:
            if needs_release(service):
                step, act = "released", self._release
            elif needs_hostname(service):
                step, act = "provisioned", self._provision
            elif self.emulator is not None and has_hostname(service) and not self.emulator.exists(service):
                # the emulator restarted empty: a stale hostname would fail the next run's DNS lookup
                step, act = "re-provisioned (its load balancer vanished from the AWS emulator)", self._provision
            else:
                continue
            key = (step, service.metadata.uid)
            seen = self.first_seen.get(key, now)
            if now - seen >= self.delay and act(service):
                done.append(f"{step} {service.metadata.namespace}/{service.metadata.name}")
            else:
                waiting[key] = seen
        self.first_seen = waiting
        return done

    def _provision(self, service: Any) -> bool:
        meta = service.metadata
        held = _finalizers(service)
        # first the finalizer (as the service controller does): a load balancer never outlives its record
        if CLEANUP_FINALIZER not in held and not self._patch_finalizers(service, [*held, CLEANUP_FINALIZER]):
            return False
        hostname = self.emulator.hostname(service) if self.emulator else elb_hostname(meta.uid, self.region)
        body = {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}
        return self._call(self.api.patch_namespaced_service_status, meta.name, meta.namespace, body)

    def _release(self, service: Any) -> bool:
        if self.emulator is not None:
            self.emulator.delete(service)
        return self._patch_finalizers(service, [f for f in _finalizers(service) if f != CLEANUP_FINALIZER])

    def _patch_finalizers(self, service: Any, finalizers: list[str]) -> bool:
        """Set the finalizers, only if the Service is still the version read (a JSON patch with a test)."""
        meta = service.metadata
        body = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
            {"op": "add", "path": "/metadata/finalizers", "value": finalizers},
        ]
        return self._call(self.api.patch_namespaced_service, meta.name, meta.namespace, body)

    @staticmethod
    def _call(method: Any, *args: Any) -> bool:
        try:
            method(*args)
        except ApiException as exc:
            if exc.status in (404, 409, 422):  # deleted or changed meanwhile: the next pass decides again
                return False
            raise
        return True


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lb_standin", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before a hostname appears")
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--ready-file", type=Path, help="created once the first poll succeeded")
    parser.add_argument(
        "--orphan-after",
        type=float,
        default=ORPHAN_SECONDS,
        help="exit after this many seconds without reaching the API server",
    )
    parser.add_argument(
        "--register-in-aws-emulator",
        action="store_true",
        help="create each load balancer in the AWS emulator at AWS_ENDPOINT_URL (loopback only)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stopping = StopSignal()
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(args.kubeconfig), client_configuration=configuration)
    configuration.retries = 0  # this loop retries; a stop signal is seen within one poll
    api_client = client.ApiClient(configuration)
    emulator = EmulatorLoadBalancers() if args.register_in_aws_emulator else None
    standin = LoadBalancerStandIn(client.CoreV1Api(api_client), args.delay, args.region, emulator)
    where = " (load balancers registered in the AWS emulator)" if emulator else ""
    print(f"lb-standin: STAND-IN for the cloud load-balancer controller, delay {args.delay}s{where}", flush=True)
    last_ok = time.monotonic()
    while not stopping:
        try:
            for what in standin.poll_once(time.monotonic()):
                print(f"lb-standin: {what}", flush=True)
        except (
            ApiException,
            OSError,
            urllib3.exceptions.HTTPError,
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            RuntimeError,
        ) as exc:
            print(f"lb-standin: API error, retrying: {exc}", file=sys.stderr, flush=True)
            if time.monotonic() - last_ok > args.orphan_after or not args.kubeconfig.exists():
                print(f"lb-standin: no API server for {args.orphan_after:.0f}s: exiting", file=sys.stderr, flush=True)
                return 1
        else:
            last_ok = time.monotonic()
            if args.ready_file is not None and not args.ready_file.exists():
                args.ready_file.touch()
        time.sleep(POLL_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
