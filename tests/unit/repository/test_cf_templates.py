"""What the cf/ templates promise, checked on the templates themselves (moto's CloudFormation
does not apply S3 public access blocks, lifecycles or bucket policies or SNS subscriptions, and keeps
no ElastiCache encryption or security group rules, so the integration tests cannot see these)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    evaluate_condition,
    load_template,
)

CF = Path(__file__).resolve().parents[3] / "cf"


def template(name: str) -> dict:
    return load_template((CF / f"{name}.yaml").read_text(), f"cf/{name}.yaml")


def resources(name: str, rtype: str) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in template(name)["Resources"].items() if v["Type"] == rtype}


@pytest.mark.parametrize("path", sorted(CF.glob("*.yaml")), ids=lambda p: p.name)
def test_every_template_exports_its_outputs_under_its_stack_name(path: Path) -> None:
    outputs = load_template(path.read_text(), path.name)["Outputs"]
    assert outputs
    for key, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{key}"}


def test_buckets_are_encrypted_private_and_named_per_account_and_region() -> None:
    buckets = resources("s3", "AWS::S3::Bucket")
    assert len(buckets) == 3
    for props in buckets.values():
        assert re.fullmatch(
            r"[a-z-]+-\$\{Environment\}-\$\{AWS::Region\}-\$\{AWS::AccountId\}", props["BucketName"]["Fn::Sub"]
        )
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rules = buckets["WorkerResultsBucket"]["LifecycleConfiguration"]["Rules"]
    assert {"Ref": "WorkerResultsExpirationDays"} in [r.get("ExpirationInDays") for r in rules]
    policies = resources("s3", "AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_redis_encrypts_in_transit_and_takes_its_token_from_a_secret_it_declares() -> None:
    redis = template("redis")
    (group,) = resources("redis", "AWS::ElastiCache::ReplicationGroup").values()
    assert group["TransitEncryptionEnabled"] is True and group["AtRestEncryptionEnabled"] is True
    assert group["AuthToken"] == {"Fn::Sub": "{{resolve:secretsmanager:${AuthTokenSecret}:SecretString}}"}
    secret = redis["Resources"]["AuthTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret" and secret["Properties"]["GenerateSecretString"]


def eksctl_export(name: str) -> dict:
    return {"Fn::ImportValue": {"Fn::Sub": f"eksctl-${{ClusterName}}-cluster::{name}"}}


def test_redis_lives_in_the_clusters_network_from_eksctls_exports() -> None:
    # issue 11 changed this: no network parameters to fill in by hand, in any environment
    redis = template("redis")
    assert set(redis["Parameters"]) == {"Environment", "ClusterName", "NodeType", "NumCacheClusters", "EngineVersion"}
    (subnets,) = resources("redis", "AWS::ElastiCache::SubnetGroup").values()
    assert subnets["SubnetIds"] == {"Fn::Split": [",", eksctl_export("SubnetsPrivate")]}
    (security_group,) = resources("redis", "AWS::EC2::SecurityGroup").values()
    assert security_group["VpcId"] == eksctl_export("VPC")
    ingress = resources("redis", "AWS::EC2::SecurityGroupIngress").values()
    # managed node groups and Fargate pods carry EKS's cluster security group; self-managed ones eksctl's shared one
    assert sorted(json.dumps(i["SourceSecurityGroupId"]) for i in ingress) == sorted(
        json.dumps(eksctl_export(n)) for n in ("ClusterSecurityGroupId", "SharedNodeSecurityGroup")
    )
    assert {(i["IpProtocol"], i["FromPort"], i["ToPort"]) for i in ingress} == {("tcp", 6379, 6379)}
    (group,) = resources("redis", "AWS::ElastiCache::ReplicationGroup").values()
    assert group["CacheSubnetGroupName"] == {"Ref": "SubnetGroup"}
    assert group["SecurityGroupIds"] == [{"Fn::GetAtt": ["SecurityGroup", "GroupId"]}]


def resolve_ifs(node: object, parameters: dict[str, str], conditions: dict) -> object:
    """``node`` with every Fn::If replaced by the branch its condition picks for ``parameters``."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            condition, when_true, when_false = node["Fn::If"]
            chosen = evaluate_condition({"Condition": condition}, parameters, conditions)
            assert chosen is not None, f"condition {condition} is undecided for {parameters}"
            return resolve_ifs(when_true if chosen else when_false, parameters, conditions)
        return {k: resolve_ifs(v, parameters, conditions) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_ifs(v, parameters, conditions) for v in node]
    return node


@pytest.mark.parametrize(
    ("environment", "sandbox", "protocol", "endpoint", "topic"),
    [
        ("development", "", "http", "http://${DevelopmentApiHost}${WorkResultsPath}", "work-results-${Environment}"),
        ("staging", "", "https", "https://api.${DomainName}${WorkResultsPath}", "work-results-${Environment}"),
        ("production", "", "https", "https://api.${DomainName}${WorkResultsPath}", "work-results-${Environment}"),
        (
            "staging",
            "my-sandbox",
            "https",
            "https://api-${Sandbox}.${DomainName}${WorkResultsPath}",
            "work-results-${Environment}-${Sandbox}",
        ),
        (
            "development",
            "my-sandbox",
            "http",
            "http://${DevelopmentApiHost}${WorkResultsPath}",
            "work-results-${Environment}-${Sandbox}",
        ),
    ],
)
def test_the_work_results_subscription_protocol_matches_its_endpoint(
    environment: str, sandbox: str, protocol: str, endpoint: str, topic: str
) -> None:
    sns = template("sns")
    parameters = {"Environment": environment, "Sandbox": sandbox}
    (subscription,) = resources("sns", "AWS::SNS::Subscription").values()
    (topic_props,) = resources("sns", "AWS::SNS::Topic").values()
    # the protocol and the endpoint are picked by the same condition, so they cannot disagree
    assert subscription["Protocol"]["Fn::If"][0] == subscription["Endpoint"]["Fn::If"][0] == "IsDevelopment"
    chosen = resolve_ifs(subscription, parameters, sns["Conditions"])
    assert (chosen["Protocol"], chosen["Endpoint"]["Fn::Sub"]) == (protocol, endpoint)
    assert chosen["Endpoint"]["Fn::Sub"].startswith(f"{protocol}://")
    assert resolve_ifs(topic_props, parameters, sns["Conditions"])["TopicName"] == {"Fn::Sub": topic}
    assert subscription["DeliveryPolicy"]["healthyRetryPolicy"]["numRetries"] > 0


def test_the_sandbox_parameter_is_optional_and_refused_in_production() -> None:
    sns = template("sns")
    sandbox = sns["Parameters"]["Sandbox"]
    assert sandbox["Default"] == ""
    assert sandbox["MaxLength"] == 20
    pattern = re.compile(sandbox["AllowedPattern"])
    for good in ("", "a", "my-sandbox", "x" * 20):
        assert pattern.fullmatch(good), good
    for bad in ("-a", "a-", "A", "my_sandbox", "a.b"):
        assert not pattern.fullmatch(bad), bad
    rule = sns["Rules"]["NoSandboxInProduction"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Environment"}, "production"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "Sandbox"}, ""]}


def test_every_job_queue_has_a_dead_letter_queue() -> None:
    queues = resources("sqs", "AWS::SQS::Queue")
    jobs = {k: v for k, v in queues.items() if not k.endswith("DeadLetterQueue")}
    assert len(jobs) == 2
    for logical_id, props in jobs.items():
        assert props["RedrivePolicy"]["deadLetterTargetArn"] == {
            "Fn::GetAtt": [f"{logical_id.removesuffix('Queue')}DeadLetterQueue", "Arn"]
        }


def declared_names() -> set[str]:
    """Names the resource templates give their resources (with ${Environment} left in)."""
    names = set()
    for name in ("dynamo", "s3", "sqs", "sns", "redis"):
        for resource in template(name)["Resources"].values():
            for key in ("TableName", "BucketName", "QueueName", "TopicName", "Name"):
                value = (resource.get("Properties") or {}).get(key)
                # a name chosen by a condition (sns: the sandbox's topic or the environment's) counts both ways
                branches = value["Fn::If"][1:] if isinstance(value, dict) and "Fn::If" in value else [value]
                for branch in branches:
                    if isinstance(branch, dict) and "Fn::Sub" in branch:
                        names.add(branch["Fn::Sub"])
    return names


ARN = re.compile(r"^arn:P:(?P<service>[a-z0-9-]+):R?:A?:(?:table/|secret:)?(?P<name>[^/]+?)(?:-\?{6})?(?:/.*)?$")


def resource_name_of(arn: str) -> str:
    simple = arn.replace("${AWS::Partition}", "P").replace("${AWS::Region}", "R").replace("${AWS::AccountId}", "A")
    match = ARN.match(simple)
    assert match, arn
    return match["name"].replace("-R-A", "-${AWS::Region}-${AWS::AccountId}")


def sandbox_wildcard_of(name: str) -> str:
    """A staging sandbox's resources are ``<name>-${Sandbox}``; a policy grants them as ``<name>-*``."""
    return name.replace("-${Sandbox}", "-*")


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
@pytest.mark.parametrize("app", ["api", "pipeline", "ui", "worker"])
def test_irsa_permissions_name_only_this_environments_declared_resources(app: str, environment: str) -> None:
    irsa = template(f"irsa-{app}-role")
    (role,) = resources(f"irsa-{app}-role", "AWS::IAM::Role").values()
    role = resolve_ifs(role, {"Environment": environment}, irsa.get("Conditions", {}))
    names = declared_names()
    names |= {sandbox_wildcard_of(n) for n in names if "${Sandbox}" in n and environment == "staging"}
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow" and "*" not in statement["Action"]
            for resource in statement["Resource"]:
                if resource == {"Ref": "AWS::NoValue"}:
                    continue
                if resource == "*":
                    assert all(a.startswith("xray:") for a in statement["Action"]), statement
                    continue
                arn = resource["Fn::Sub"]
                assert arn.startswith("arn:${AWS::Partition}:")
                resource_name = resource_name_of(arn)
                assert "${Environment}" in resource_name, arn
                assert resource_name in names, f"{app}: {arn} names nothing the {environment} templates declare"


@pytest.mark.parametrize("app", ["pipeline", "worker"])
def test_only_staging_roles_publish_to_sandbox_topics(app: str) -> None:
    irsa = template(f"irsa-{app}-role")
    (role,) = resources(f"irsa-{app}-role", "AWS::IAM::Role").values()

    def topics(environment: str) -> list[str]:
        resolved = resolve_ifs(role, {"Environment": environment}, irsa["Conditions"])
        return [
            r["Fn::Sub"].rsplit(":", 1)[-1]
            for policy in resolved["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if statement["Action"] == ["sns:Publish"]
            for r in statement["Resource"]
            if "Fn::Sub" in r
        ]

    assert topics("staging") == ["work-results-${Environment}", "work-results-${Environment}-*"]
    assert topics("production") == topics("development") == ["work-results-${Environment}"]
