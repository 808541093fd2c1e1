"""roles ingress_nginx and route53_dns against the session's local stack: the controller's objects on
the real API server, the stand-in's hostname, alias records in the emulator's hosted zone, idempotence,
check mode after apply, and the bounded wait's error when no hostname appears."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, converge_local_cluster, run_playbook

pytestmark = pytest.mark.slow
PLAY = """---
- name: Ingress and DNS
  hosts: platform
  gather_facts: false
  environment: "{{ biomage_task_environment }}"
  module_defaults:
    group/biomage.iac.aws:
      region: "{{ biomage_region }}"
  roles:
    - role: biomage.iac.ingress_nginx
    - role: biomage.iac.route53_dns
  post_tasks:
    - name: Print the hostname
      ansible.builtin.debug:
        msg: "HOSTNAME={{ ingress_nginx_load_balancer_hostname }}"
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # inside the checkout so that ansible.cfg's collection path resolves the roles
    path = REPO_ROOT / "playbooks" / f".itest-ingress-{os.getpid()}.yml"
    path.write_text(PLAY, encoding="utf-8")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def applied(playbook: Path, stack_ansible_env: dict[str, str]) -> PlaybookResult:
    # the cluster first, as in the cloud (in development it registers the local API server with the emulator)
    converge_local_cluster(stack_ansible_env)
    return run_playbook(playbook, env=stack_ansible_env).assert_ok()


def hostname(result: PlaybookResult) -> str:
    found = re.search(r"HOSTNAME=([A-Za-z0-9.-]+)", result.stdout)
    assert found, result.stdout[-3000:]
    return found[1]


def test_controller_objects_are_on_the_api_server(applied: PlaybookResult, kube_api: client.ApiClient) -> None:
    api = kube_api
    service = client.CoreV1Api(api).read_namespaced_service("ingress-nginx-controller", "ingress-nginx")
    assert service.spec.type == "LoadBalancer"
    assert service.metadata.annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert service.status.load_balancer.ingress[0].hostname == hostname(applied)
    ingress_class = client.NetworkingV1Api(api).read_ingress_class("nginx")
    assert ingress_class.spec.controller == "k8s.io/ingress-nginx"
    deployment = client.AppsV1Api(api).read_namespaced_deployment("ingress-nginx-controller", "ingress-nginx")
    assert "@sha256:" in deployment.spec.template.spec.containers[0].image
    rules = client.RbacAuthorizationV1Api(api).read_cluster_role("ingress-nginx").rules
    assert all("*" not in (rule.verbs + rule.resources) for rule in rules)


def test_alias_records_point_at_the_load_balancer(applied: PlaybookResult, devstack: dict[str, str]) -> None:
    route53 = aws.client(devstack, "route53")
    zones = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == "biomage.test."]
    assert len(zones) == 1
    records = route53.list_resource_record_sets(HostedZoneId=zones[0]["Id"])["ResourceRecordSets"]
    aliases = {r["Name"].rstrip("."): r["AliasTarget"] for r in records if r["Type"] == "A" and "AliasTarget" in r}
    assert set(aliases) == {"scp.biomage.test", "*.scp.biomage.test"}
    lb = aws.client(devstack, "elbv2").describe_load_balancers()["LoadBalancers"]
    zone_of = {b["DNSName"]: b["CanonicalHostedZoneId"] for b in lb}
    for target in aliases.values():
        assert target["DNSName"].rstrip(".") == hostname(applied)
        assert target["HostedZoneId"] == zone_of[hostname(applied)]
    stack = aws.client(devstack, "cloudformation").describe_stacks(StackName="biomage-route53-development")["Stacks"][0]
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["biomage:template"] == "infra/cf-route53.yaml"


def test_second_run_and_check_mode_change_nothing(
    applied: PlaybookResult, playbook: Path, stack_ansible_env: dict[str, str]
) -> None:
    again = run_playbook(playbook, env=stack_ansible_env).assert_ok()
    assert again.total("changed") == 0, again.stdout[-4000:]
    check = run_playbook(playbook, env=stack_ansible_env, check=True, diff=True).assert_ok()
    assert check.total("changed") == 0, check.stdout[-4000:]
    assert hostname(check) == hostname(applied)


@pytest.fixture
def paused_standin(devstack: dict[str, str], stack_ansible_env: dict[str, str]) -> Iterator[None]:
    """The session's load-balancer stand-in, stopped (SIGSTOP) for one test and resumed after it."""
    pid = int(Path(stack_ansible_env["BIOMAGE_DEVSTACK_DIR"], "kube-lb-standin.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_hostname_that_never_appears_fails_with_the_fix(
    applied: PlaybookResult, playbook: Path, stack_ansible_env: dict[str, str], paused_standin: None
) -> None:
    try:
        result = run_playbook(
            playbook,
            env=stack_ansible_env,
            extra_vars={
                "ingress_nginx_namespace": "itest-no-lb",
                "ingress_nginx_load_balancer_wait_timeout": 3,
                "ingress_nginx_load_balancer_wait_delay": 1,
            },
            timeout=300,
        )
        assert result.returncode != 0
        message = " ".join(result.output.split())  # the callback wraps long messages
        assert "Service itest-no-lb/ingress-nginx-controller (type LoadBalancer) has no" in message, message[-4000:]
        assert "after 3s" in message and "Fix:" in message and "ingress_nginx_load_balancer_wait_timeout" in message
        assert "Converge stack" not in message  # the DNS role never ran on a missing hostname
    finally:
        # the ClusterRoleBinding named the test's namespace: converge the real one again
        run_playbook(playbook, env=stack_ansible_env).assert_ok()


def test_base_playbook_runs_both_roles_after_the_cluster(
    applied: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    # the other add-ons (cert_manager, flux) have tests of their own
    tags = ["--tags", "eks_cluster,ingress_nginx,route53_dns"]
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, args=tags).assert_ok()
    tasks = re.findall(r"^TASK \[biomage\.iac\.(\w+) :", result.stdout, re.MULTILINE)
    order = list(dict.fromkeys(tasks))
    assert order.index("eks_cluster") < order.index("ingress_nginx") < order.index("route53_dns"), order
    assert result.total("changed") == 0, result.stdout[-4000:]


def test_a_missing_kubeconfig_is_named_before_anything_is_applied(
    playbook: Path, stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "never-written.kubeconfig"
    result = run_playbook(playbook, env=stack_ansible_env, extra_vars={"ingress_nginx_kubeconfig": str(missing)})
    assert result.returncode != 0
    message = " ".join(result.output.split())
    assert f"No kubeconfig at {missing} (ingress_nginx_kubeconfig)" in message
    assert "Fix: run biomage.iac.eks_cluster first" in message
    assert "Apply the namespace" not in result.stdout

    plan = run_playbook(
        playbook, env=stack_ansible_env, check=True, extra_vars={"ingress_nginx_kubeconfig": str(missing)}
    ).assert_ok()
    assert "the controller cannot be planned against it" in " ".join(plan.stdout.split())
    assert "Apply the namespace" not in plan.stdout
