"""module_utils/kube/discovery.py against real kube-apiservers: discovery of version and issuer, and the
removal of LoadBalancer Services that ``eksctl_cluster`` (state absent) does before deleting a cluster.

The removal deletes *every* LoadBalancer Service of a cluster, so it runs on a control plane of its
own (kube component only), not on the session's shared one. Its load-balancer stand-in holds
``service.kubernetes.io/load-balancer-cleanup`` on each such Service for BIOMAGE_LB_DELAY seconds
after deletion, as the cloud controller does while it deletes the load balancer.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.kube.client import KubeError
from ansible_collections.biomage.iac.plugins.module_utils.kube.discovery import (
    cluster_info,
    delete_load_balancer_services,
)
from devstack import Stack
from devstack.kube import SERVICE_ACCOUNT_ISSUER
from devstack.kube_pki import Pki, user_credentials
from devstack.lb_standin import CLEANUP_FINALIZER
from kubernetes import client, config

from tests.lib.ansible_run import run_playbook
from tests.lib.aws import EMULATOR_ACCOUNT_VARS
from tests.lib.eks_scenarios import desired, live
from tests.lib.fake_eksctl import MUTATING, install, logged_argv
from tests.lib.kubeconfig import dead as dead_kubeconfig
from tests.lib.kubeconfig import variant as kubeconfig_variant
from tests.lib.tags import skip_tags

pytestmark = pytest.mark.slow
HOLD = "biomage.test/hold"  # a finalizer nobody removes: a Service that never goes


def test_cluster_info_reads_version_and_issuer(devstack: dict[str, str]) -> None:
    info = cluster_info(devstack["KUBECONFIG"])
    assert info == {
        "endpoint": devstack["BIOMAGE_KUBE_SERVER"],
        "version": devstack["BIOMAGE_KUBE_VERSION"],
        "oidc_issuer": SERVICE_ACCOUNT_ISSUER,
    }


def test_an_issuer_the_identity_may_not_read_is_none(devstack: dict[str, str], tmp_path: Path) -> None:
    # /version is public to every authenticated user; issuer discovery only to service accounts and admins
    cert, key = user_credentials(Pki(Path(devstack["KUBECONFIG"]).parent / "pki"), "biomage-test-nobody")
    kubeconfig = kubeconfig_variant(
        devstack["KUBECONFIG"],
        tmp_path / "nobody.kubeconfig",
        **{
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
    )
    info = cluster_info(str(kubeconfig))
    assert info["version"] == devstack["BIOMAGE_KUBE_VERSION"] and info["oidc_issuer"] is None


def test_a_silent_api_server_is_named_with_the_fix(devstack: dict[str, str], tmp_path: Path) -> None:
    kubeconfig = dead_kubeconfig(devstack["KUBECONFIG"], tmp_path / "dead.kubeconfig")
    with pytest.raises(KubeError) as failure:
        cluster_info(str(kubeconfig), timeout=2)
    assert "the Kubernetes API server at https://127.0.0.1:" in str(failure.value)
    assert "does not answer" in str(failure.value) and "make dev-up" in str(failure.value)


def test_a_bad_kubeconfig_is_named(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(KubeError, match="cannot load the kubeconfig"):
        cluster_info(str(tmp_path / "kubeconfig"))


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, client.CoreV1Api]]:
    """A control plane of this module's own (kubeconfig, CoreV1Api), stopped afterwards."""
    stack = Stack(tmp_path_factory.mktemp("own-kube"), ["kube"])
    env = stack.up()
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    try:
        yield env["KUBECONFIG"], client.CoreV1Api(api)
    finally:
        api.close()
        stack.down()


def _service(core: client.CoreV1Api, namespace: str, name: str, kind: str, finalizers: list[str] | None = None) -> None:
    if namespace not in {ns.metadata.name for ns in core.list_namespace().items}:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=name, finalizers=finalizers),
            spec=client.V1ServiceSpec(type=kind, ports=[client.V1ServicePort(port=443, target_port=443)]),
        ),
    )


def _wait_provisioned(core: client.CoreV1Api, namespace: str, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        service = core.read_namespaced_service(name, namespace)
        if CLEANUP_FINALIZER in (service.metadata.finalizers or []):
            return
        time.sleep(0.2)
    raise AssertionError(f"the load-balancer stand-in never provisioned {namespace}/{name}")


def test_only_load_balancer_services_are_deleted_and_waited_for(own_cluster: tuple[str, client.CoreV1Api]) -> None:
    kubeconfig, core = own_cluster
    _service(core, "ingress-nginx", "ingress-nginx-controller", "LoadBalancer")
    _service(core, "api-master", "api", "ClusterIP")
    _service(core, "ui-master", "ui-public", "LoadBalancer")
    for namespace, name in (("ingress-nginx", "ingress-nginx-controller"), ("ui-master", "ui-public")):
        _wait_provisioned(core, namespace, name)

    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        time.sleep(seconds)

    deleted = delete_load_balancer_services(kubeconfig, timeout=60, poll_interval=0.2, sleep=sleep)
    assert deleted == ["ingress-nginx/ingress-nginx-controller", "ui-master/ui-public"]
    remaining = [(s.metadata.namespace, s.metadata.name) for s in core.list_service_for_all_namespaces().items]
    assert ("api-master", "api") in remaining
    assert not [s for s in remaining if s[1] in ("ingress-nginx-controller", "ui-public")]
    assert polls, "it returned before the load balancers were released"


def test_load_balancers_that_never_go_stop_the_deletion(own_cluster: tuple[str, client.CoreV1Api]) -> None:
    kubeconfig, core = own_cluster
    _service(core, "stuck", "edge", "LoadBalancer", finalizers=[HOLD])
    _wait_provisioned(core, "stuck", "edge")
    ticks = iter(range(100))
    try:
        with pytest.raises(KubeError) as failure:
            delete_load_balancer_services(
                kubeconfig, timeout=3, poll_interval=0, sleep=lambda _s: time.sleep(0.1), clock=lambda: next(ticks)
            )
        assert "stuck/edge were still being deleted after 3s" in str(failure.value)
        assert "the cluster was not deleted" in str(failure.value)
        assert core.read_namespaced_service("edge", "stuck").metadata.deletion_timestamp
    finally:
        core.patch_namespaced_service(
            "edge", "stuck", [{"op": "remove", "path": f"/metadata/finalizers/{_index(core, HOLD)}"}]
        )


def _index(core: client.CoreV1Api, finalizer: str) -> int:
    return list(core.read_namespaced_service("edge", "stuck").metadata.finalizers).index(finalizer)


def test_state_absent_deletes_the_load_balancers_then_the_cluster(
    own_cluster: tuple[str, client.CoreV1Api], stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """playbooks/base.yml with eks_cluster_state=absent: the scripted eksctl's cluster is this real API server."""
    kubeconfig, core = own_cluster
    _service(core, "edge-absent", "edge", "LoadBalancer")
    _service(core, "edge-absent", "internal", "ClusterIP")
    _wait_provisioned(core, "edge-absent", "edge")
    state = live(desired())
    state["kubeconfig_of_api_server"] = kubeconfig
    install(tmp_path / "bin", state)
    env = {**stack_ansible_env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{stack_ansible_env['PATH']}"}
    extra = {
        "biomage_aws_endpoint_url": env["AWS_ENDPOINT_URL"],
        **EMULATOR_ACCOUNT_VARS,
        "eks_cluster_kubeconfig_path": str(tmp_path / "kube" / "biomage-staging.yaml"),
        "eks_cluster_state": "absent",
    }

    def services() -> list[str]:
        return sorted(s.metadata.name for s in core.list_namespaced_service("edge-absent").items)

    plan = run_playbook(
        "playbooks/base.yml", "inventories/staging", env=env, check=True, diff=True, extra_vars=extra, args=skip_tags()
    ).assert_ok()
    assert plan.total("changed") == 1 and "cluster: delete" in plan.stdout
    assert [argv for argv in logged_argv(tmp_path / "bin") if tuple(argv[1:3]) in MUTATING] == []
    assert services() == ["edge", "internal"], "check mode deleted a Service"

    result = run_playbook(
        "playbooks/base.yml", "inventories/staging", env=env, extra_vars=extra, args=skip_tags()
    ).assert_ok()
    assert services() == ["internal"], "only the LoadBalancer Service goes, and it is gone before the cluster"
    assert "edge-absent/edge" in result.stdout
    mutating = [argv[1:3] for argv in logged_argv(tmp_path / "bin") if tuple(argv[1:3]) in MUTATING]
    assert mutating[-1] == ["delete", "cluster"]
    assert json.loads((tmp_path / "bin" / "state.json").read_text())["cluster"] is None
