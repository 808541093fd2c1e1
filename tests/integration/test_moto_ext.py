"""The local stack's moto patches (tools/devstack/moto_ext.py), each pinned against the running
emulator with the AWS behaviour it reproduces. Development deploys by change set like staging and
production only because these hold."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT

pytestmark = pytest.mark.slow

QUEUE = """---
Description: {description}
Parameters:
  Suffix:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "moto-ext-${{Suffix}}"
Outputs:
  Suffix:
    Value: !Ref Suffix
"""
ROLE = """---
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      {name}AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{Service: ec2.amazonaws.com}}
            Action: sts:AssumeRole
"""


EXPORTER = """---
Parameters:
  Suffix:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "moto-ext-${Suffix}"
Outputs:
  Arn:
    Value: !GetAtt Queue.Arn
    Export:
      Name: !Sub "moto-ext-${Suffix}-arn"
"""
IMPORTER = """---
Parameters:
  Suffix:
    Type: String
Resources:
  Imported:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/moto-ext/${Suffix}"
      Type: String
      Value: !ImportValue {"Fn::Sub": "moto-ext-${Suffix}-arn"}
"""
REDIS = """---
Parameters:
  Suffix:
    Type: String
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.1.0/24
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.2.0/24
  Token:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "moto-ext-${Suffix}"
      GenerateSecretString:
        PasswordLength: 40
        ExcludePunctuation: true
  Plain:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "moto-ext-plain-${Suffix}"
      SecretString: s3cr3t
  Subnets:
    Type: AWS::ElastiCache::SubnetGroup
    Properties:
      Description: moto-ext
      SubnetIds: !Split [",", !Join [",", [!Ref SubnetA, !Ref SubnetB]]]
  Group:
    Type: AWS::ElastiCache::ReplicationGroup
    Properties:
      ReplicationGroupDescription: !Sub "token {{resolve:secretsmanager:${Plain}:SecretString}}"
      Engine: redis
      CacheNodeType: cache.t4g.small
      NumCacheClusters: 2
      AutomaticFailoverEnabled: true
      TransitEncryptionEnabled: true
      AtRestEncryptionEnabled: true
      AuthToken: !Sub "{{resolve:secretsmanager:${Token}:SecretString}}"
      CacheSubnetGroupName: !Ref Subnets
Outputs:
  Primary:
    Value: !GetAtt Group.PrimaryEndPoint.Address
  Reader:
    Value: !GetAtt [Group, ReaderEndPoint.Address]
  Port:
    Value: {"Fn::GetAtt": [Group, PrimaryEndPoint.Port]}
  TokenArn:
    Value: !Ref Token
  SubnetGroupName:
    Value: !Ref Subnets
"""


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def stack_of(cfn: object, stack_name: str) -> dict:
    return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]


def execute(cfn: object, stack_name: str, body: str, suffix: str, tags: list[dict], **extra: object) -> str:
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name("cs"),
        ChangeSetType="UPDATE",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": suffix}],
        Tags=tags,
        **extra,
    )["Id"]
    cfn.execute_change_set(ChangeSetName=change_set)
    return change_set


def test_the_server_lists_its_patches() -> None:
    listed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools/devstack/moto_server.py"), "--patches"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {line.split(":")[0] for line in listed.splitlines()} == {
        "insufficient-capabilities",
        "capabilities-reported",
        "execute-change-set-records-the-stack",
        "change-set-without-changes",
        "create-stack-atomic",
        "change-set-stacks-export",
        "stack-tags-are-a-change",
        "stack-updates-are-dated",
        "eks-cluster-reports-its-issuer",
        "cloudformation-elasticache-and-secrets",
        "short-form-intrinsics",
        "resource-types-moto-lacks",
        "list-change-sets-of-the-stack",
    }


def test_an_executed_change_set_leaves_its_parameters_tags_outputs_and_description(devstack: dict) -> None:
    # AWS: after ExecuteChangeSet, DescribeStacks shows the change set's parameter values, tags,
    # outputs and template description, exactly as after UpdateStack
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=QUEUE.format(description="one"),
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}],
        Tags=[{"Key": "owner", "Value": "first"}],
    )
    change_set = execute(cfn, stack_name, QUEUE.format(description="two"), "b", [{"Key": "owner", "Value": "second"}])
    described = cfn.describe_change_set(ChangeSetName=change_set)
    assert described["Tags"] == [{"Key": "owner", "Value": "second"}]
    stack = stack_of(cfn, stack_name)
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Parameters"] == [{"ParameterKey": "Suffix", "ParameterValue": "b"}]
    assert stack["Tags"] == [{"Key": "owner", "Value": "second"}]
    assert stack["Outputs"][0]["OutputValue"] == "b"
    assert stack["Description"] == "two"


def test_updates_are_dated_and_retire_the_other_change_sets(devstack: dict) -> None:
    # AWS: DescribeStacks reports LastUpdatedTime after an update; ExecuteChangeSet deletes the stack's
    # other change sets, and after an UpdateStack they are OBSOLETE (ExecutionStatus)
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=QUEUE.format(description="one"),
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}],
    )
    assert "LastUpdatedTime" not in stack_of(cfn, stack_name)

    def change_set(suffix: str) -> str:
        return cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=name("cs"),
            ChangeSetType="UPDATE",
            TemplateBody=QUEUE.format(description="one"),
            Parameters=[{"ParameterKey": "Suffix", "ParameterValue": suffix}],
        )["Id"]

    other, executed = change_set("b"), change_set("c")
    cfn.execute_change_set(ChangeSetName=executed)
    first = stack_of(cfn, stack_name)["LastUpdatedTime"]
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.describe_change_set(ChangeSetName=other)
    assert cfn.describe_change_set(ChangeSetName=executed)["ExecutionStatus"] == "EXECUTE_COMPLETE"

    pending = change_set("d")
    cfn.update_stack(
        StackName=stack_name,
        TemplateBody=QUEUE.format(description="two"),
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "e"}],
    )
    assert stack_of(cfn, stack_name)["LastUpdatedTime"] > first
    assert cfn.describe_change_set(ChangeSetName=pending)["ExecutionStatus"] == "OBSOLETE"


def test_a_second_change_set_with_the_same_inputs_has_no_changes(devstack: dict) -> None:
    # AWS: CreateChangeSet with the stack's own template and parameters ends FAILED with
    # "The submitted information didn't contain changes."
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext")
    body = QUEUE.format(description="same")
    cfn.create_stack(
        StackName=stack_name, TemplateBody=body, Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "a"}]
    )
    execute(cfn, stack_name, body, "b", [])
    again = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name("cs"),
        ChangeSetType="UPDATE",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "b"}],
    )["Id"]
    described = cfn.describe_change_set(ChangeSetName=again)
    assert described["Status"] == "FAILED"
    assert "didn't contain changes" in described["StatusReason"]
    # UpdateStack is the call that answers with an error
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        cfn.update_stack(
            StackName=stack_name, TemplateBody=body, Parameters=[{"ParameterKey": "Suffix", "ParameterValue": "b"}]
        )
    assert refused.value.response["Error"]["Message"] == "No updates are to be performed."


@pytest.mark.parametrize(
    ("role_name", "given", "needed"),
    [
        ("", [], "CAPABILITY_IAM"),
        ("RoleName: named-role\n      ", [], "CAPABILITY_NAMED_IAM"),
        ("RoleName: named-role\n      ", ["CAPABILITY_IAM"], "CAPABILITY_NAMED_IAM"),
    ],
)
def test_iam_resources_need_their_capability(devstack: dict, role_name: str, given: list, needed: str) -> None:
    # AWS: a template with IAM resources is refused unless the request acknowledges them;
    # a named IAM resource needs CAPABILITY_NAMED_IAM
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext-iam")
    body = ROLE.format(name=role_name.replace("named-role", stack_name))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=given)
    assert refused.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert refused.value.response["Error"]["Message"] == f"Requires capabilities : [{needed}]"
    with pytest.raises(botocore.exceptions.ClientError):
        cfn.create_change_set(
            StackName=stack_name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=body, Capabilities=given
        )
    cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=[needed])
    assert stack_of(cfn, stack_name)["StackStatus"] == "CREATE_COMPLETE"


def test_capabilities_are_reported(devstack: dict) -> None:
    # AWS: DescribeStacks and DescribeChangeSet return the request's Capabilities
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext-iam")
    body = ROLE.format(name="")
    cfn.create_stack(StackName=stack_name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert stack_of(cfn, stack_name)["Capabilities"] == ["CAPABILITY_IAM"]
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName="cs",
        ChangeSetType="UPDATE",
        TemplateBody=body.replace("ec2.amazonaws.com", "lambda.amazonaws.com"),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )["Id"]
    assert cfn.describe_change_set(ChangeSetName=change_set)["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    cfn.execute_change_set(ChangeSetName=change_set)
    assert stack_of(cfn, stack_name)["Capabilities"] == ["CAPABILITY_NAMED_IAM"]


EXPORTING = """---
Resources:
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  Arn:
    Value: !Ref Topic
    Export:
      Name: {export}
"""


def test_a_create_stack_that_fails_creates_nothing(devstack: dict) -> None:
    cfn = aws.client(devstack, "cloudformation")
    export = name("export")
    first, second = name("exporting"), name("duplicate")
    cfn.create_stack(StackName=first, TemplateBody=EXPORTING.format(export=export))
    with pytest.raises(botocore.exceptions.ClientError, match="Export names must be unique"):
        cfn.create_stack(StackName=second, TemplateBody=EXPORTING.format(export=export))
    with pytest.raises(botocore.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=second)
    assert stack_of(cfn, first)["StackStatus"] == "CREATE_COMPLETE"


def test_concurrent_create_stacks_never_leave_create_pending(devstack: dict) -> None:
    cfn = aws.client(devstack, "cloudformation")
    names = [name("parallel") for _index in range(40)]

    def create(stack_name: str) -> None:
        cfn.create_stack(StackName=stack_name, TemplateBody=EXPORTING.format(export=f"{stack_name}-arn"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names))
    statuses = {stack_of(cfn, stack_name)["StackStatus"] for stack_name in names}
    assert statuses == {"CREATE_COMPLETE"}


def create_by_change_set(cfn: object, stack_name: str, body: str, suffix: str) -> dict:
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name("cs"),
        ChangeSetType="CREATE",
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": suffix}],
    )["Id"]
    cfn.execute_change_set(ChangeSetName=change_set)
    return stack_of(cfn, stack_name)


def test_change_set_stacks_publish_and_import_exports(devstack: dict) -> None:
    # AWS: a stack created by ExecuteChangeSet exports its outputs (ListExports) and a change set of
    # another stack imports them (Fn::ImportValue) as with CreateStack; importing a missing export fails
    # (the importer's short-form !ImportValue of a mapping reads as AWS reads it: short-form-intrinsics)
    cfn = aws.client(devstack, "cloudformation")
    suffix = name("x")
    exporter = create_by_change_set(cfn, f"moto-ext-exp-{suffix}", EXPORTER, suffix)
    exports = {e["Name"]: e for e in cfn.list_exports()["Exports"]}
    export = exports[f"moto-ext-{suffix}-arn"]
    assert export["ExportingStackId"] == exporter["StackId"] and export["Value"].endswith(f":moto-ext-{suffix}")
    create_by_change_set(cfn, f"moto-ext-imp-{suffix}", IMPORTER, suffix)
    imported = aws.client(devstack, "ssm").get_parameter(Name=f"/moto-ext/{suffix}")["Parameter"]["Value"]
    assert imported == export["Value"]
    cfn.delete_stack(StackName=f"moto-ext-imp-{suffix}")
    cfn.delete_stack(StackName=f"moto-ext-exp-{suffix}")
    assert f"moto-ext-{suffix}-arn" not in {e["Name"] for e in cfn.list_exports()["Exports"]}
    with pytest.raises(botocore.exceptions.ClientError):
        create_by_change_set(cfn, f"moto-ext-orphan-{suffix}", IMPORTER, suffix)


def test_a_change_of_the_stack_tags_alone_is_a_change(devstack: dict) -> None:
    # AWS: a change set changing only the stack's tags is created and, executed, tags the stack;
    # UpdateStack changing only the tags updates them
    cfn = aws.client(devstack, "cloudformation")
    stack_name = name("moto-ext-tags")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=QUEUE.format(description="tags"),
        Parameters=[{"ParameterKey": "Suffix", "ParameterValue": stack_name}],
    )
    keep = {"UsePreviousTemplate": True, "Parameters": [{"ParameterKey": "Suffix", "UsePreviousValue": True}]}
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName="tags",
        ChangeSetType="UPDATE",
        Tags=[{"Key": "owner", "Value": "a"}],
        **keep,
    )["Id"]
    assert cfn.describe_change_set(ChangeSetName=change_set)["Status"] == "CREATE_COMPLETE"
    cfn.execute_change_set(ChangeSetName=change_set)
    stack = stack_of(cfn, stack_name)
    assert stack["Tags"] == [{"Key": "owner", "Value": "a"}]
    assert stack["Parameters"] == [{"ParameterKey": "Suffix", "ParameterValue": stack_name}]
    cfn.update_stack(StackName=stack_name, Tags=[{"Key": "owner", "Value": "b"}], **keep)
    assert stack_of(cfn, stack_name)["Tags"] == [{"Key": "owner", "Value": "b"}]
    with pytest.raises(botocore.exceptions.ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=stack_name, Tags=[{"Key": "owner", "Value": "b"}], **keep)


def test_eks_reports_the_registered_clusters_own_issuer(devstack: dict) -> None:
    # AWS: DescribeCluster reports the cluster's own issuer and endpoint; the devstack's cluster is
    # the local API server, whose issuer and endpoint it registers as tags
    eks = aws.client(devstack, "eks")
    config = {"roleArn": "arn:aws:iam::123456789012:role/eks", "resourcesVpcConfig": {"subnetIds": []}}
    local = name("moto-ext-local")
    eks.create_cluster(
        name=local,
        tags={
            "biomage.devstack/oidc-issuer": "https://kubernetes.default.svc.cluster.local",
            "biomage.devstack/endpoint": "https://127.0.0.1:6443",
        },
        **config,
    )
    cluster = eks.describe_cluster(name=local)["cluster"]
    assert cluster["identity"]["oidc"]["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert cluster["endpoint"] == "https://127.0.0.1:6443"
    other = eks.create_cluster(name=name("moto-ext-other"), **config)["cluster"]
    assert other["identity"]["oidc"]["issuer"].startswith("https://oidc.eks.")


def test_cloudformation_creates_elasticache_and_secrets(devstack: dict) -> None:
    # AWS: CloudFormation creates Secrets Manager secrets (generated values included), ElastiCache subnet
    # groups and replication groups, resolves {{resolve:secretsmanager:...}} references, reports the
    # endpoints as attributes, and deletes all of them with the stack (the template's short forms,
    # !GetAtt Group.PrimaryEndPoint.Address and a nested !Split/!Join, read as AWS reads them)
    cfn = aws.client(devstack, "cloudformation")
    suffix = name("r")
    stack = create_by_change_set(cfn, f"moto-ext-redis-{suffix}", REDIS, suffix)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    secrets = aws.client(devstack, "secretsmanager")
    token = secrets.get_secret_value(SecretId=outputs["TokenArn"])["SecretString"]
    assert len(token) == 40 and token.isalnum()
    elasticache = aws.client(devstack, "elasticache")
    (group,) = [
        g
        for g in elasticache.describe_replication_groups()["ReplicationGroups"]
        if g["NodeGroups"][0]["PrimaryEndpoint"]["Address"] == outputs["Primary"]
    ]
    assert group["Description"] == "token s3cr3t"
    assert group["AuthTokenEnabled"] and group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"]
    assert outputs["Reader"].startswith("replica.") and outputs["Port"] == "6379"
    (subnet_group,) = elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=outputs["SubnetGroupName"])[
        "CacheSubnetGroups"
    ]
    assert len(subnet_group["Subnets"]) == 2
    cfn.delete_stack(StackName=f"moto-ext-redis-{suffix}")
    assert group["ReplicationGroupId"] not in {
        g["ReplicationGroupId"] for g in elasticache.describe_replication_groups()["ReplicationGroups"]
    }
    with pytest.raises(botocore.exceptions.ClientError):
        secrets.get_secret_value(SecretId=outputs["TokenArn"])


VAULT = """---
Parameters:
  Suffix:
    Type: String
Resources:
  Vault:
    Type: AWS::Backup::BackupVault
    Properties:
      BackupVaultName: !Sub "vault-${Suffix}"
  Plan:
    Type: AWS::Backup::BackupPlan
    Properties:
      BackupPlan:
        BackupPlanName: nightly
        BackupPlanRule:
          - RuleName: nightly
            TargetBackupVault: !Ref Vault
Outputs:
  VaultName:
    Value: !Ref Vault
  VaultArn:
    Value: !GetAtt Vault.BackupVaultArn
  PlanId:
    Value: !GetAtt Plan.BackupPlanId
"""


def test_resource_types_moto_does_not_model_are_created_updated_and_deleted(devstack: dict) -> None:
    # AWS creates AWS::Backup resources like any other; the emulator keeps a placeholder whose Ref and
    # GetAtt answer as AWS's do in shape (a name, an ARN of it), and the stack lists the real types
    cfn = aws.client(devstack, "cloudformation")
    suffix = name("v")
    stack_name = f"moto-ext-vault-{suffix}"
    stack = create_by_change_set(cfn, stack_name, VAULT, suffix)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["VaultName"] == f"vault-{suffix}"
    assert outputs["VaultArn"] == f"arn:aws:backup:{devstack['AWS_REGION']}:123456789012:backupvault/vault-{suffix}"
    assert outputs["PlanId"].startswith(f"{stack_name}-Plan-")
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    assert sorted((r["LogicalResourceId"], r["ResourceType"]) for r in resources) == [
        ("Plan", "AWS::Backup::BackupPlan"),
        ("Vault", "AWS::Backup::BackupVault"),
    ]
    execute(cfn, stack_name, VAULT.replace('"vault-', '"renamed-'), suffix, [])
    renamed = {o["OutputKey"]: o["OutputValue"] for o in stack_of(cfn, stack_name)["Outputs"]}
    assert renamed["VaultName"] == f"renamed-{suffix}"
    stack_id = stack["StackId"]
    cfn.delete_stack(StackName=stack_name)
    assert stack_of(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_list_change_sets_lists_the_named_stacks_only(devstack: dict) -> None:
    # AWS: ListChangeSets (StackName required) returns that stack's change sets, by name or by id
    cfn = aws.client(devstack, "cloudformation")
    stacks = {}
    for label in ("one", "two"):
        stack_name = name(f"moto-ext-list-{label}")
        stack = create_by_change_set(cfn, stack_name, QUEUE.format(description=label), name("q"))
        cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=f"pending-{label}",
            ChangeSetType="UPDATE",
            TemplateBody=QUEUE.format(description=f"{label} again"),
            Parameters=[{"ParameterKey": "Suffix", "UsePreviousValue": True}],
        )
        stacks[label] = stack
    by_name = cfn.list_change_sets(StackName=stacks["one"]["StackName"])["Summaries"]
    assert {s["StackName"] for s in by_name} == {stacks["one"]["StackName"]}
    assert "pending-one" in {s["ChangeSetName"] for s in by_name}
    by_id = cfn.list_change_sets(StackName=stacks["two"]["StackId"])["Summaries"]
    assert {s["ChangeSetName"] for s in by_id if s["ChangeSetName"].startswith("pending-")} == {"pending-two"}
