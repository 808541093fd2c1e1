"""STAND-IN for the cloud load-balancer controller of the local Kubernetes API server.

On EKS, the AWS cloud controller (or the AWS Load Balancer Controller) provisions a load balancer
for every Service of ``type: LoadBalancer`` and, some time later, writes its DNS name into
``status.loadBalancer.ingress[0].hostname``. The local API server has no nodes and no cloud, so
nothing would ever do that. This small process does only that last step: it polls Services and,
``--delay`` seconds after first seeing one of type LoadBalancer without an ingress, writes an
ELB-shaped hostname (``a<uid>-<hash>.elb.<region>.amazonaws.com``, as the in-tree AWS provider names
NLBs). No load balancer exists behind that name. It is a test helper, not a controller to trust.

Run by the devstack ``kube`` component: ``python -m devstack.lb_standin --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

POLL_SECONDS = 0.25


def elb_hostname(uid: str, region: str) -> str:
    """The hostname the in-tree AWS provider would give an NLB for the Service with this uid."""
    name = ("a" + uid.replace("-", ""))[:32]
    suffix = hashlib.sha256(uid.encode("ascii")).hexdigest()[:16]
    return f"{name}-{suffix}.elb.{region}.amazonaws.com"


def needs_hostname(service: Any) -> bool:
    if service.spec is None or service.spec.type != "LoadBalancer":
        return False
    ingress = service.status.load_balancer.ingress if service.status and service.status.load_balancer else None
    return not ingress


class LoadBalancerStandIn:
    """Writes a load-balancer hostname on LoadBalancer Services after a delay (see module doc)."""

    def __init__(self, api: client.CoreV1Api, delay: float, region: str) -> None:
        self.api = api
        self.delay = delay
        self.region = region
        self.first_seen: dict[str, float] = {}

    def poll_once(self, now: float) -> list[str]:
        """One pass over all Services; returns ``namespace/name`` of those given a hostname."""
        done: list[str] = []
        waiting: dict[str, float] = {}
        for service in self.api.list_service_for_all_namespaces().items:
            if not needs_hostname(service):
                continue
            uid = service.metadata.uid
            seen = self.first_seen.get(uid, now)
            waiting[uid] = seen
            if now - seen >= self.delay and self._write_hostname(service):
                done.append(f"{service.metadata.namespace}/{service.metadata.name}")
                waiting.pop(uid)
        self.first_seen = waiting
        return done

    def _write_hostname(self, service: Any) -> bool:
        hostname = elb_hostname(service.metadata.uid, self.region)
        body = {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}
        try:
            self.api.patch_namespaced_service_status(service.metadata.name, service.metadata.namespace, body)
        except ApiException as exc:
            if exc.status in (404, 409):  # deleted or changed meanwhile: the next pass decides again
                return False
            raise
        return True


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lb_standin", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before a hostname appears")
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--ready-file", type=Path, help="created once the first poll succeeded")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(args.kubeconfig)))
    standin = LoadBalancerStandIn(api, args.delay, args.region)
    print(f"lb-standin: STAND-IN for the cloud load-balancer controller, delay {args.delay}s", flush=True)
    while not stopping:
        try:
            for name in standin.poll_once(time.monotonic()):
                print(f"lb-standin: wrote a load-balancer hostname on Service {name}", flush=True)
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            print(f"lb-standin: API error, retrying: {exc}", file=sys.stderr, flush=True)
        else:
            if args.ready_file is not None and not args.ready_file.exists():
                args.ready_file.touch()
        time.sleep(POLL_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
