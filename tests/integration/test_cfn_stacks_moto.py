"""The planner with real boto3 clients against moto: the session's emulator for the change-set path,
check-mode previews and export ordering; an emulator in this process for ROLLBACK_COMPLETE, a state
moto never reaches by itself (the test forces it in the emulator's memory, so it must share the
test's process)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.aws import ApiCallCounter
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import PlanFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import RECREATE, UNCHANGED, UPDATE
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.stacks import CfnStacks
from devstack import moto_ext
from moto.cloudformation.models import cloudformation_backends
from moto.server import ThreadedMotoServer

from tests.lib import aws
from tests.lib.ansible_run import ansible_env, run_playbook

# moto warns about the resource types its CloudFormation cannot create (docs/aws-resources.md lists them)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Tried to parse AWS::")]
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def queue(name: str, export: str | None = None, import_: str | None = None, delay: int = 0) -> str:
    text = f"""---
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Environment:
    Type: String
    AllowedValues: [development, staging, production]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName:
        Fn::Sub: "{name}-${{Environment}}"
      DelaySeconds: {delay}
"""
    if import_:
        text += f"""      Tags:
        - Key: upstream
          Value:
            Fn::ImportValue: "{import_}"
"""
    if export:
        text += f"""Outputs:
  Arn:
    Value:
      Fn::GetAtt: [Queue, Arn]
    Export:
      Name: "{export}"
"""
    return text


def stack(name: str, body: str) -> dict:
    return {
        "name": name,
        "template_body": body,
        "template_label": f"itest/{name}.yaml",
        "parameters": {"Environment": "staging"},
    }


def converge(client: object, items: list[dict], group: str, **options: object) -> CfnStacks:
    run = CfnStacks(client, "staging", group, poll_delay=0.05, max_workers=4, **options)
    run.plan(prepare(items, "staging", group, REGION))
    run.apply()
    return run


def counted_client(env: dict[str, str]) -> tuple[object, ApiCallCounter]:
    client = aws.client(env, "cloudformation")
    counter = ApiCallCounter()
    client.meta.events.register("before-call.cloudformation", counter)
    return client, counter


def test_change_set_deploys_converge_and_an_unchanged_set_costs_two_calls_a_stack(devstack: dict[str, str]) -> None:
    client, counter = counted_client(devstack)
    items = [stack(f"itest-cs-{i}", queue(f"itest-cs-{i}")) for i in range(3)]
    first = converge(client, items, "itest-cs", deploy_method="change_set")
    assert {r.status for r in first.results.values()} == {"CREATE_COMPLETE"}
    assert all(r.changes for r in first.results.values())  # the change sets' resource changes

    before = counter.total
    again = converge(client, items, "itest-cs", deploy_method="change_set")
    assert {r.action for r in again.results.values()} == {UNCHANGED}
    calls = counter.total - before
    assert calls <= 2 * len(items)
    assert counter.snapshot().get("CreateChangeSet") == len(items)  # only the first run's


def test_a_change_set_update_is_executed_and_leaves_no_change_set(devstack: dict[str, str]) -> None:
    client, counter = counted_client(devstack)
    converge(client, [stack("itest-csu", queue("itest-csu"))], "itest-csu", deploy_method="change_set")
    updated = converge(
        client, [stack("itest-csu", queue("itest-csu", delay=7))], "itest-csu", deploy_method="change_set"
    )
    result = updated.results["itest-csu"]
    assert (result.action, result.status, result.error) == (UPDATE, "UPDATE_COMPLETE", None)
    assert [(c["action"], c["logical_id"]) for c in result.changes] == [("Modify", "Queue")]
    assert "DelaySeconds: 7" in client.get_template(StackName="itest-csu")["TemplateBody"]
    assert counter.snapshot().get("ExecuteChangeSet") == 2  # the creation's and the update's
    pending = client.list_change_sets(StackName="itest-csu")["Summaries"]
    # (moto lists every stack's change sets whatever StackName says: only this stack's count)
    mine = [c for c in pending if c["StackName"] == "itest-csu"]
    assert [c["ChangeSetName"] for c in mine if c.get("ExecutionStatus") == "AVAILABLE"] == []


def test_check_mode_previews_an_update_and_leaves_nothing_behind(devstack: dict[str, str]) -> None:
    client, _counter = counted_client(devstack)
    converge(client, [stack("itest-preview", queue("itest-preview"))], "itest-preview", deploy_method="direct")
    edited = [stack("itest-preview", queue("itest-preview", delay=5))]
    plan = converge(client, edited, "itest-preview", check_mode=True)
    result = plan.results["itest-preview"]
    assert result.action == UPDATE
    assert [(c["action"], c["logical_id"]) for c in result.changes] == [("Modify", "Queue")]
    assert "DelaySeconds: 0" in client.get_template(StackName="itest-preview")["TemplateBody"]
    assert not [
        s for s in client.list_change_sets(StackName="itest-preview")["Summaries"] if s["StackName"] == "itest-preview"
    ]


def test_an_importer_is_deployed_after_its_exporter(devstack: dict[str, str]) -> None:
    client, _counter = counted_client(devstack)
    items = [
        stack("itest-consumer", queue("itest-consumer", import_="itest-producer-arn")),
        stack("itest-producer", queue("itest-producer", export="itest-producer-arn")),
    ]
    run = converge(client, items, "itest-deps", deploy_method="direct")
    assert {r.status for r in run.results.values()} == {"CREATE_COMPLETE"}
    assert run.results["itest-consumer"].spec.depends_on == {"itest-producer"}
    consumer = run.results["itest-consumer"]
    assert consumer.started >= run.results["itest-producer"].started + run.results["itest-producer"].duration


# -- ROLLBACK_COMPLETE, forced in an emulator of this process --------------------------------------
@pytest.fixture(scope="module")
def local_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_ext.apply()  # the stack's patched emulator (development deploys by change set), in this process
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    state = tmp_path_factory.mktemp("local-moto")
    (state / "credentials").write_text("[local]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    (state / "config").write_text(f"[profile local]\nregion = {REGION}\n")
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PROFILE": "local",
        "AWS_SHARED_CREDENTIALS_FILE": str(state / "credentials"),
        "AWS_CONFIG_FILE": str(state / "config"),
        "BIOMAGE_DEVSTACK_DIR": str(state),
    }
    (state / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    try:
        yield env
    finally:
        server.stop()


def force_status(name: str, status: str) -> None:
    backend = cloudformation_backends[ACCOUNT][REGION]
    (target,) = [s for s in backend.stacks.values() if s.name == name]
    target.status = status


def test_rollback_complete_is_recovered_only_when_asked(local_moto: dict[str, str]) -> None:
    client, _counter = counted_client(local_moto)
    items = [stack("itest-failed", queue("itest-failed"))]
    converge(client, items, "itest-rollback", deploy_method="direct")
    first_id = client.describe_stacks(StackName="itest-failed")["Stacks"][0]["StackId"]
    force_status("itest-failed", "ROLLBACK_COMPLETE")

    with pytest.raises(PlanFailed) as failure:
        converge(client, items, "itest-rollback", deploy_method="direct")
    assert "recreate_rollback_complete: true" in failure.value.problems[0]

    run = converge(client, items, "itest-rollback", deploy_method="direct", recreate_rollback_complete=True)
    assert run.results["itest-failed"].action == RECREATE
    recreated = client.describe_stacks(StackName="itest-failed")["Stacks"][0]
    assert recreated["StackStatus"] == "CREATE_COMPLETE" and recreated["StackId"] != first_id


# this emulator has no cluster (no Kubernetes API server in this test): the issuer is given and Redis,
# which needs the cluster's network, is left out
NO_CLUSTER = {"irsa_oidc_provider": "kubernetes.default.svc.cluster.local", "aws_resources_skip_templates": ["redis"]}


def test_the_playbook_recovers_a_rollback_complete_stack_on_request(local_moto: dict[str, str], tmp_path: Path) -> None:
    env = ansible_env(local_moto)
    run_playbook("playbooks/resources.yml", env=env, extra_vars=NO_CLUSTER).assert_ok()
    force_status("biomage-sqs-development", "ROLLBACK_COMPLETE")

    blocked = run_playbook("playbooks/resources.yml", env=env, extra_vars=NO_CLUSTER)
    assert blocked.returncode != 0
    assert "biomage-sqs-development: the stack is ROLLBACK_COMPLETE" in blocked.output
    assert "Fix: set aws_resources_recreate_rollback_complete: true" in blocked.output

    recovered = run_playbook(
        "playbooks/resources.yml",
        env=env,
        extra_vars={**NO_CLUSTER, "aws_resources_recreate_rollback_complete": "true"},
    ).assert_ok()
    assert "biomage-sqs-development recreate CREATE_COMPLETE" in recovered.stdout
    assert run_playbook("playbooks/resources.yml", env=env, extra_vars=NO_CLUSTER).assert_ok().total("changed") == 0
