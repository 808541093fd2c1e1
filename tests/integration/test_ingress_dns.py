"""roles ingress (Traefik) and route53_dns against the session's local stack: the controller's objects on
the real API server (upstream CRDs and ClusterRoles included), its Pods Ready on the simulated nodes, the
stand-in's hostname, alias records in the emulator's hosted zone, a chart Ingress admitted with Traefik's
class, idempotence, check mode after apply, and the bounded wait's error when no hostname appears."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.lib import aws
from tests.lib.ansible_run import PlaybookResult, converge_local_cluster, playbook_in_checkout, run_playbook
from tests.lib.releases import render_chart, rendered_objects

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
    - role: biomage.iac.ingress
    - role: biomage.iac.route53_dns
  post_tasks:
    - name: Print the hostname
      ansible.builtin.debug:
        msg: "HOSTNAME={{ ingress_load_balancer_hostname }}"
"""


@pytest.fixture(scope="module")
def playbook() -> Iterator[Path]:
    with playbook_in_checkout("ingress", PLAY) as path:
        yield path


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
    service = client.CoreV1Api(api).read_namespaced_service("traefik", "traefik")
    assert service.spec.type == "LoadBalancer"
    assert service.metadata.annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert service.status.load_balancer.ingress[0].hostname == hostname(applied)
    ingress_class = client.NetworkingV1Api(api).read_ingress_class("traefik")
    assert ingress_class.spec.controller == "traefik.io/ingress-controller"
    assert ingress_class.metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"
    deployment = client.AppsV1Api(api).read_namespaced_deployment("traefik", "traefik")
    container = deployment.spec.template.spec.containers[0]
    assert re.fullmatch(r"docker\.io/library/traefik:v3\.7\.\d+@sha256:[0-9a-f]{64}", container.image)
    assert "--providers.kubernetesIngress.ingressClass=traefik" in container.args
    assert not [arg for arg in container.args if "kubernetesIngressNGINX" in arg], "no ingress-nginx class by default"
    # the simulated nodes run the Pods: the role waited for them
    assert deployment.status.ready_replicas == deployment.spec.replicas == 1
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("traefik", "traefik").spec.max_unavailable == 1
    crds = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
    assert {"middlewares.traefik.io", "ingressroutes.traefik.io", "tlsoptions.traefik.io"} <= crds
    rbac = client.RbacAuthorizationV1Api(api)
    binding = rbac.read_cluster_role_binding("traefik-ingress-controller")
    assert [(s.name, s.namespace) for s in binding.subjects] == [("traefik", "traefik")]
    rules = rbac.read_cluster_role("traefik-ingress-controller").rules
    assert all("*" not in (rule.verbs + rule.resources) for rule in rules)


def test_a_chart_ingress_is_admitted_with_traefiks_class(applied: PlaybookResult, kube_api: client.ApiClient) -> None:
    values = {
        "image": {"repository": "ui", "tag": "master-0123abc"},
        "kubernetes": {"env": "development"},
        "ingress": {"domainName": "scp.biomage.test", "subdomain": "ui"},
    }
    ingress = rendered_objects(render_chart(values, namespace="default"))["Ingress/ui"]
    networking = client.NetworkingV1Api(kube_api)
    admitted = networking.create_namespaced_ingress("default", ingress, dry_run="All")
    assert admitted.spec.ingress_class_name == "traefik"
    assert admitted.metadata.annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"
    # without a class, the API server gives it the default class: Traefik's
    del ingress["spec"]["ingressClassName"]
    assert networking.create_namespaced_ingress("default", ingress, dry_run="All").spec.ingress_class_name == "traefik"


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


def test_a_first_check_run_plans_the_objects_of_a_namespace_still_to_be_created(
    applied: PlaybookResult,
    playbook: Path,
    stack_ansible_env: dict[str, str],
    kube_api: client.ApiClient,
    tmp_path: Path,
) -> None:
    """One kubernetes.core.k8s call applies every object; in a first check run the dry run cannot judge the objects
    of the namespace it only plans, so they are planned as creations (and shown as diffs), and nothing is made."""
    env = {**stack_ansible_env, "BIOMAGE_PLAN_JSON": str(tmp_path / "plan.json")}
    check = run_playbook(
        playbook, env=env, check=True, diff=True, extra_vars={"ingress_namespace": "traefik-first"}
    ).assert_ok()
    changes = {(c["kind"], c["name"]): c["action"] for c in json.loads((tmp_path / "plan.json").read_text())["changes"]}
    for kind in ("ServiceAccount", "Deployment", "PodDisruptionBudget", "Service"):
        assert changes.get((kind, "traefik-first/traefik")) == "create", changes
    assert changes.get(("Namespace", "traefik-first")) == "create", changes
    assert "+++ after: Deployment traefik-first/traefik" in check.stdout
    assert re.search(r"HOSTNAME=$", check.stdout, re.MULTILINE), "no load balancer is known before its Service exists"
    names = [item.metadata.name for item in client.CoreV1Api(kube_api).list_namespace().items]
    assert "traefik-first" not in names, "a check run creates nothing"


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
                "ingress_namespace": "itest-no-lb",
                "ingress_load_balancer_wait_timeout": 3,
                "ingress_load_balancer_wait_delay": 1,
            },
            timeout=300,
        )
        assert result.returncode != 0
        message = " ".join(result.output.split())  # the callback wraps long messages
        assert "Service itest-no-lb/traefik (type LoadBalancer) has no" in message, message[-4000:]
        assert "after 3s" in message and "Fix:" in message and "ingress_load_balancer_wait_timeout" in message
        assert "Converge stack" not in message  # the DNS role never ran on a missing hostname
    finally:
        # the ClusterRoleBindings named the test's namespace: converge the real ones again
        run_playbook(playbook, env=stack_ansible_env).assert_ok()


def test_base_playbook_runs_both_roles_after_the_cluster(
    applied: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    # the other add-ons (cert_manager, flux) have tests of their own
    tags = ["--tags", "eks_cluster,ingress,route53_dns,ingress_nginx"]
    result = run_playbook("playbooks/base.yml", env=stack_ansible_env, args=tags).assert_ok()
    tasks = re.findall(r"^TASK \[biomage\.iac\.(\w+) :", result.stdout, re.MULTILINE)
    order = list(dict.fromkeys(tasks))
    # ingress-nginx's removal (state absent, nothing to remove here) comes after the records point at Traefik
    assert (
        order.index("eks_cluster") < order.index("ingress") < order.index("route53_dns") < order.index("ingress_nginx")
    )
    assert result.total("changed") == 0, result.stdout[-4000:]


def test_a_missing_kubeconfig_is_named_before_anything_is_applied(
    playbook: Path, stack_ansible_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "never-written.kubeconfig"
    result = run_playbook(playbook, env=stack_ansible_env, extra_vars={"ingress_kubeconfig": str(missing)})
    assert result.returncode != 0
    message = " ".join(result.output.split())
    assert f"No kubeconfig at {missing} (ingress_kubeconfig)" in message
    assert "Fix: run biomage.iac.eks_cluster first" in message
    assert "Apply Traefik's CRDs" not in result.stdout

    plan = run_playbook(
        playbook, env=stack_ansible_env, check=True, extra_vars={"ingress_kubeconfig": str(missing)}
    ).assert_ok()
    assert "the controller cannot be planned against it" in " ".join(plan.stdout.split())
    # the controller's tasks are skipped, none of them run against the cluster that cannot be read
    applied = re.search(r"Apply Traefik's CRDs[^\n]*\n(\S+)", plan.stdout)
    assert applied is not None and applied.group(1) == "skipping:", plan.stdout
