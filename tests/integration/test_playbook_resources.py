"""playbooks/resources.yml against the session's local stack (moto): deploy by change set after the
cluster (IRSA issuer and Redis network read from it), idempotence, honest check/diff, template edits,
orphans and pruning, adopting the original pipeline's stacks, large templates through S3, IRSA issuer
changes, validation before change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import free_port

from tests.lib import aws
from tests.lib.ansible_run import (
    BIN_DIR,
    REPO_ROOT,
    PlaybookResult,
    ansible_env,
    converge_local_cluster,
    run_playbook,
)
from tests.lib.cfn_scenarios import queue_template

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/resources.yml"
ACCOUNT = "123456789012"
# the local API server's service-account issuer, read from the cluster (issue 11: no fixed fake issuer)
DEV_PROVIDER = "kubernetes.default.svc.cluster.local"
RESOURCE_STACKS = [
    "biomage-dynamo-development",
    "biomage-redis-development",
    "biomage-s3-development",
    "biomage-sns-development",
    "biomage-sqs-development",
]
IRSA_STACKS = [f"biomage-irsa-{app}-role-development" for app in ("api", "pipeline", "ui", "worker")]
EXTRA_TEMPLATE = queue_template(
    "itest-extra", description="A test-only template (an extra queue) for the orphan and prune tests.", secret=False
)


SUMMARY_LINE = re.compile(r"^\s+- (biomage-\S+) (\w+) (\S+)$", re.MULTILINE)


def run(env: dict[str, str], **kwargs: object) -> PlaybookResult:
    return run_playbook(PLAYBOOK, env=env, **kwargs)


def actions(result: PlaybookResult) -> dict[str, str]:
    """Stack name -> action, from the playbook's summary."""
    return {m[1]: m[2] for m in SUMMARY_LINE.finditer(result.stdout)}


def api_calls(result: PlaybookResult, role: str) -> str:
    line = next(line for line in result.stdout.splitlines() if f"API calls {role}:" in line)
    return line.split(": ", 1)[1].strip("'\"")


@pytest.fixture(scope="module")
def applied(stack_ansible_env: dict[str, str]) -> PlaybookResult:
    converge_local_cluster(stack_ansible_env)
    return run(stack_ansible_env).assert_ok()


@pytest.fixture
def template_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of cf/ (named cf, so stack tags keep the cf/<file> label) the test may edit."""
    copy = tmp_path / "cf"
    shutil.copytree(REPO_ROOT / "cf", copy)
    yield copy


def test_the_irsa_issuer_is_read_from_the_local_cluster(applied: PlaybookResult, devstack: dict[str, str]) -> None:
    # resources.yml runs no eksctl_cluster role: irsa read the issuer with eks:DescribeCluster, as in the cloud
    cluster = aws.client(devstack, "eks").describe_cluster(name="biomage-development")["cluster"]
    assert cluster["identity"]["oidc"]["issuer"] == f"https://{DEV_PROVIDER}"
    assert cluster["endpoint"] == devstack["BIOMAGE_KUBE_SERVER"]
    providers = aws.client(devstack, "iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert f"arn:aws:iam::{ACCOUNT}:oidc-provider/{DEV_PROVIDER}" in {p["Arn"] for p in providers}
    assert "OIDC provider trusted by the IRSA roles: " + DEV_PROVIDER in applied.stdout


def test_redis_is_in_the_clusters_network(applied: PlaybookResult, devstack: dict[str, str]) -> None:
    cfn = aws.client(devstack, "cloudformation")
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    cluster = "eksctl-biomage-development-cluster"

    def physical_id(logical_id: str) -> str:
        resource = cfn.describe_stack_resource(StackName="biomage-redis-development", LogicalResourceId=logical_id)
        return resource["StackResourceDetail"]["PhysicalResourceId"]

    elasticache = aws.client(devstack, "elasticache")
    (group,) = elasticache.describe_replication_groups(ReplicationGroupId=physical_id("ReplicationGroup"))[
        "ReplicationGroups"
    ]
    assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"] and group["AuthTokenEnabled"]
    (subnets,) = elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=physical_id("SubnetGroup"))[
        "CacheSubnetGroups"
    ]
    assert subnets["VpcId"] == exports[f"{cluster}::VPC"]
    assert sorted(s["SubnetIdentifier"] for s in subnets["Subnets"]) == sorted(
        exports[f"{cluster}::SubnetsPrivate"].split(",")
    )
    ec2 = aws.client(devstack, "ec2")
    (redis_group,) = ec2.describe_security_groups(GroupIds=[physical_id("SecurityGroup")])["SecurityGroups"]
    assert redis_group["VpcId"] == exports[f"{cluster}::VPC"]
    sources = {pair["GroupId"] for rule in redis_group["IpPermissions"] for pair in rule["UserIdGroupPairs"]}
    assert sources == {exports[f"{cluster}::ClusterSecurityGroupId"], exports[f"{cluster}::SharedNodeSecurityGroup"]}


def test_resources_exist_as_the_templates_describe(applied: PlaybookResult, devstack: dict[str, str]) -> None:
    dynamodb = aws.client(devstack, "dynamodb")
    tables = dynamodb.list_tables()["TableNames"]
    assert {"experiments-development", "plots-tables-development"} <= set(tables)
    plots = dynamodb.describe_table(TableName="plots-tables-development")["Table"]["KeySchema"]
    assert [(k["AttributeName"], k["KeyType"]) for k in plots] == [("plotUuid", "HASH"), ("experimentId", "RANGE")]

    s3 = aws.client(devstack, "s3")
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for prefix in ("biomage-source", "biomage-originals", "worker-results"):
        name = f"{prefix}-development-eu-west-1-{ACCOUNT}"
        assert name in buckets
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    topics = [t["TopicArn"] for t in aws.client(devstack, "sns").list_topics()["Topics"]]
    assert f"arn:aws:sns:eu-west-1:{ACCOUNT}:work-results-development" in topics

    sqs = aws.client(devstack, "sqs")
    for queue in ("pipeline-jobs-development", "worker-jobs-development"):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(f"{queue}-dlq")
        assert attributes["SqsManagedSseEnabled"] == "true"

    iam = aws.client(devstack, "iam")
    for app in ("api", "pipeline", "ui", "worker"):
        role = iam.get_role(RoleName=f"biomage-{app}-development-eu-west-1")["Role"]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        provider = statement["Principal"]["Federated"].split("oidc-provider/", 1)[1]
        assert statement["Principal"]["Federated"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                f"{provider}:aud": "sts.amazonaws.com",
                f"{provider}:sub": f"system:serviceaccount:{app}-development:deployment-runner",
            }
        }
    assert "OIDC provider trusted by the IRSA roles: " + DEV_PROVIDER in applied.stdout


def test_a_second_run_and_check_mode_report_no_change(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    again = run(stack_ansible_env).assert_ok()
    assert again.total("changed") == 0
    # one DescribeStacks page per page of the account's stacks (the session's other tests add to them),
    # one GetTemplate per deployed stack, nothing else
    pages = len(aws.stack_pages(aws.client(devstack, "cloudformation")))
    assert api_calls(again, "aws_resources") == f"DescribeStacks={pages} GetTemplate={len(RESOURCE_STACKS)}"
    assert api_calls(again, "irsa") == f"DescribeStacks={pages} GetTemplate={len(IRSA_STACKS)}"
    assert set(actions(again).values()) == {"unchanged"}  # issue 11: redis is deployed, no longer skipped
    check = run(stack_ansible_env, check=True, diff=True).assert_ok()
    assert check.total("changed") == 0


def test_a_template_edit_shows_in_check_diff_and_the_next_run_applies_it(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    sqs_template = template_copy / "sqs.yaml"
    sqs_template.write_text(sqs_template.read_text().replace("VisibilityTimeout: 300", "VisibilityTimeout: 600"))
    sqs = aws.client(devstack, "sqs")
    url = sqs.get_queue_url(QueueName="worker-jobs-development")["QueueUrl"]

    def timeout() -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]

    edited = {"aws_resources_template_dir": str(template_copy)}
    try:
        plan = run(stack_ansible_env, check=True, diff=True, extra_vars=edited).assert_ok()
        assert plan.total("changed") == 1
        assert "--- before: biomage-sqs-development (deployed template)" in plan.stdout
        assert "+++ after: biomage-sqs-development (cf/sqs.yaml)" in plan.stdout
        assert "  Modify WorkerJobsQueue (AWS::SQS::Queue)" in plan.stdout  # the change set's plan
        assert "-      VisibilityTimeout: 300" in plan.stdout and "+      VisibilityTimeout: 600" in plan.stdout
        assert timeout() == "300", "check mode changed the queue"

        applied_edit = run(stack_ansible_env, extra_vars=edited).assert_ok()
        assert actions(applied_edit)["biomage-sqs-development"] == "update"
        assert applied_edit.total("changed") == 1
        # by change set, as in staging and production (issue 11: development no longer deploys directly)
        said = " ".join(applied_edit.stdout.split())  # the YAML callback folds long lines
        calls = said.split("API calls aws_resources: ", 1)[1].split("'", 1)[0]
        assert "CreateChangeSet=1" in calls and "ExecuteChangeSet=1" in calls, calls
        assert "UpdateStack" not in calls, calls
        assert timeout() == "600"
        assert run(stack_ansible_env, extra_vars=edited).assert_ok().total("changed") == 0
    finally:
        restored = run(stack_ansible_env).assert_ok()
    assert restored.total("changed") == 1 and timeout() == "300"


def test_a_removed_template_is_an_orphan_until_pruned(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    cfn = aws.client(devstack, "cloudformation")
    (template_copy / "itestextra.yaml").write_text(EXTRA_TEMPLATE)
    with_extra = run(stack_ansible_env, extra_vars={"aws_resources_template_dir": str(template_copy)}).assert_ok()
    assert with_extra.total("changed") == 1
    assert (
        cfn.describe_stacks(StackName="biomage-itestextra-development")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    )

    (template_copy / "itestextra.yaml").unlink()
    without = run(stack_ansible_env, extra_vars={"aws_resources_template_dir": str(template_copy)}).assert_ok()
    assert without.total("changed") == 0
    assert "stack biomage-itestextra-development is an orphan (template cf/itestextra.yaml is gone)" in without.output
    assert "orphans: biomage-itestextra-development" in without.stdout
    assert cfn.describe_stacks(StackName="biomage-itestextra-development")["Stacks"]

    # a stack of the same naming that is not ours (no ownership tags) is never pruned
    cfn.create_stack(
        StackName="biomage-itestlegacy-development",
        TemplateBody=EXTRA_TEMPLATE.replace("itest-extra", "itest-legacy"),
        Parameters=[{"ParameterKey": "Environment", "ParameterValue": "development"}],
    )
    pruned = run(
        stack_ansible_env, extra_vars={"aws_resources_template_dir": str(template_copy), "aws_resources_prune": "true"}
    ).assert_ok()
    assert actions(pruned)["biomage-itestextra-development"] == "delete"
    assert "biomage-itestlegacy-development" not in actions(pruned)
    remaining = {s["StackName"] for s in aws.all_stacks(cfn) if s["StackStatus"] != "DELETE_COMPLETE"}
    assert "biomage-itestextra-development" not in remaining
    assert "biomage-itestlegacy-development" in remaining
    assert set(RESOURCE_STACKS + IRSA_STACKS) <= remaining
    cfn.delete_stack(StackName="biomage-itestlegacy-development")


def test_an_issuer_change_redeploys_the_irsa_stacks_only(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    new_provider = "oidc.eks.eu-west-1.amazonaws.com/id/NEWCLUSTER000000000000000000000000"
    cfn = aws.client(devstack, "cloudformation")

    def provider_of(stack: str) -> str:
        parameters = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]
        return next(p["ParameterValue"] for p in parameters if p["ParameterKey"] == "OIDCProvider")

    try:
        plan = run(
            stack_ansible_env, check=True, diff=True, extra_vars={"irsa_oidc_provider": new_provider}
        ).assert_ok()
        assert plan.total("changed") == 1  # one task: the IRSA stacks
        assert f'+  OIDCProvider: "{new_provider}"' in plan.stdout
        changed = run(stack_ansible_env, extra_vars={"irsa_oidc_provider": new_provider}).assert_ok()
        assert {actions(changed)[stack] for stack in IRSA_STACKS} == {"update"}
        assert {actions(changed)[stack] for stack in RESOURCE_STACKS} == {"unchanged"}
        assert {provider_of(stack) for stack in IRSA_STACKS} == {new_provider}
    finally:
        back = run(stack_ansible_env).assert_ok()
    assert back.total("changed") == 1
    assert {provider_of(stack) for stack in IRSA_STACKS} == {DEV_PROVIDER}


def test_the_irsa_role_reads_the_issuer_from_the_eks_cluster(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    eks = aws.client(devstack, "eks")
    cluster = eks.create_cluster(
        name="biomage-itest",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": []},
    )["cluster"]
    issuer = cluster["identity"]["oidc"]["issuer"]
    assert issuer.startswith("https://")
    extra = {"irsa_environment": "staging", "irsa_cluster_name": "biomage-itest", "irsa_oidc_provider": ""}
    result = run(stack_ansible_env, extra_vars=extra).assert_ok()
    assert "OIDC provider trusted by the IRSA roles: " + issuer.removeprefix("https://") in result.stdout
    stack = aws.client(devstack, "cloudformation").describe_stacks(StackName="biomage-irsa-api-role-staging")["Stacks"][
        0
    ]
    assert {"ParameterKey": "OIDCProvider", "ParameterValue": issuer.removeprefix("https://")} in stack["Parameters"]

    reported = "oidc.eks.eu-west-1.amazonaws.com/id/REPORTEDBYEKSCLUSTERROLE0000000000"
    from_fact = run(
        stack_ansible_env, extra_vars={**extra, "eks_cluster_oidc_issuer": f"https://{reported}"}
    ).assert_ok()
    assert "OIDC provider trusted by the IRSA roles: " + reported in from_fact.stdout

    missing = run(stack_ansible_env, extra_vars={**extra, "irsa_cluster_name": "biomage-nope"})
    assert missing.returncode != 0
    assert "EKS cluster biomage-nope does not exist" in missing.output and "irsa_oidc_provider" in missing.output


def test_a_bad_template_fails_the_run_before_any_change(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    (template_copy / "sqs.yaml").write_text((template_copy / "sqs.yaml").read_text().replace("300", "301"))
    shutil.copy(REPO_ROOT / "tests/fixtures/cf/bio009-admin-statement.yaml", template_copy / "admin.yaml")
    result = run(stack_ansible_env, extra_vars={"aws_resources_template_dir": str(template_copy)})
    assert result.returncode != 0
    assert "nothing was changed" in result.output
    assert (
        "cf/admin.yaml: Resources.Policy.Properties.PolicyDocument.Statement[0]: [BIO009 no-admin-statement]"
        in result.output
    )
    cfn = aws.client(devstack, "cloudformation")
    names = {s["StackName"] for s in aws.all_stacks(cfn)}
    assert "biomage-admin-development" not in names
    template = cfn.get_template(StackName="biomage-sqs-development")["TemplateBody"]
    assert "VisibilityTimeout: 301" not in template  # the valid edit next to the bad template was not applied


def test_a_bad_irsa_template_fails_the_run_before_the_resource_stacks_change(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    """The IRSA set is validated before aws_resources changes anything (one planned environment)."""
    (template_copy / "sqs.yaml").write_text((template_copy / "sqs.yaml").read_text().replace("300", "302"))
    shutil.copy(REPO_ROOT / "tests/fixtures/cf/irsa-bio006-no-aud.yaml", template_copy / "irsa-bad-role.yaml")
    result = run(
        stack_ansible_env,
        extra_vars={"aws_resources_template_dir": str(template_copy), "irsa_template_dir": str(template_copy)},
    )
    assert result.returncode != 0
    assert "nothing was changed" in result.output
    assert "cf/irsa-bad-role.yaml" in result.output and "[BIO006" in result.output
    assert "TASK [biomage.iac.aws_resources : Converge the stacks of development]" in result.stdout
    cfn = aws.client(devstack, "cloudformation")
    names = {s["StackName"] for s in aws.all_stacks(cfn)}
    assert "biomage-irsa-bad-role-development" not in names
    template = cfn.get_template(StackName="biomage-sqs-development")["TemplateBody"]
    assert "VisibilityTimeout: 302" not in template, "aws_resources applied its edit before the IRSA set was validated"


def test_a_stack_of_the_original_pipeline_is_adopted(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    cfn = aws.client(devstack, "cloudformation")
    dynamodb = aws.client(devstack, "dynamodb")
    name = "biomage-dynamo-development"
    # the account as the original pipeline left it: the stack of cf/dynamo.yaml without our tags
    cfn.delete_stack(StackName=name)
    for table in ("experiments-development", "plots-tables-development"):  # retained by the deleted stack
        dynamodb.delete_table(TableName=table)
    body = (REPO_ROOT / "cf/dynamo.yaml").read_text()
    parameters = [{"ParameterKey": "Environment", "ParameterValue": "development"}]
    change_set = cfn.create_change_set(
        StackName=name, ChangeSetName="pipeline", ChangeSetType="CREATE", TemplateBody=body, Parameters=parameters
    )["Id"]
    cfn.execute_change_set(ChangeSetName=change_set)
    before = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert not any(t["Key"].startswith("biomage:") for t in before.get("Tags", []))
    tables = {
        t: dynamodb.describe_table(TableName=t)["Table"]["TableArn"] for t in dynamodb.list_tables()["TableNames"]
    }

    plan = run(stack_ansible_env, check=True, diff=True).assert_ok()
    assert actions(plan)[name] == "adopt" and plan.total("changed") == 1
    assert f"{name}: adopt (adds the tags; template and parameters stay as deployed)" in plan.stdout
    assert '+biomage:managed-by: "biomage.iac"' in plan.stdout
    assert not any(
        t["Key"].startswith("biomage:") for t in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Tags", [])
    )

    adopted = run(stack_ansible_env).assert_ok()
    assert actions(adopted)[name] == "adopt" and adopted.total("changed") == 1
    after = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert {t["Key"]: t["Value"] for t in after["Tags"]} == {
        "biomage:managed-by": "biomage.iac",
        "biomage:environment": "development",
        "biomage:group": "aws-resources",
        "biomage:template": "cf/dynamo.yaml",
    }
    # nothing else changed: the template, the parameters, the outputs, the tables
    assert cfn.get_template(StackName=name)["TemplateBody"] == body
    assert after["Parameters"] == before["Parameters"] and after["Outputs"] == before["Outputs"]
    assert {t: dynamodb.describe_table(TableName=t)["Table"]["TableArn"] for t in tables} == tables

    assert run(stack_ansible_env).assert_ok().total("changed") == 0
    # managed from now on: without its template it is an orphan like any other
    (template_copy / "dynamo.yaml").unlink()
    without = run(stack_ansible_env, extra_vars={"aws_resources_template_dir": str(template_copy)}).assert_ok()
    assert f"orphans: {name}" in without.stdout


LARGE_TEMPLATE_PADDING = "".join(f"# {'a comment line to make the template large ' * 3}{i}\n" for i in range(420))


def test_a_template_over_51200_bytes_goes_through_s3_or_is_refused_with_the_fix(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str], template_copy: Path
) -> None:
    large = EXTRA_TEMPLATE.replace("itest-extra", "itest-large") + LARGE_TEMPLATE_PADDING
    assert len(large.encode()) > 51200
    (template_copy / "itestlarge.yaml").write_text(large)
    dirs = {"aws_resources_template_dir": str(template_copy)}
    cfn = aws.client(devstack, "cloudformation")

    refused = run(stack_ansible_env, extra_vars=dirs)
    assert refused.returncode != 0 and "nothing was changed" in refused.output
    assert "cf/itestlarge.yaml: the template is" in refused.output
    assert "Fix: give an S3 bucket for large templates" in refused.output
    assert "biomage-itestlarge-development" not in {s["StackName"] for s in aws.all_stacks(cfn)}

    bucket = "biomage-itest-templates"
    with_bucket = {**dirs, "aws_resources_template_bucket": bucket}
    plan = run(stack_ansible_env, extra_vars=with_bucket, check=True).assert_ok()
    assert actions(plan)["biomage-itestlarge-development"] == "create"
    s3 = aws.client(devstack, "s3")
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}, "check mode created the bucket"

    created = run(stack_ansible_env, extra_vars=with_bucket).assert_ok()
    assert actions(created)["biomage-itestlarge-development"] == "create"
    assert cfn.get_template(StackName="biomage-itestlarge-development")["TemplateBody"] == large
    (uploaded,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert uploaded["Key"].startswith("biomage-iac/cloudformation/biomage-itestlarge-development/")
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    assert run(stack_ansible_env, extra_vars=with_bucket).assert_ok().total("changed") == 0
    (template_copy / "itestlarge.yaml").unlink()
    pruned = run(stack_ansible_env, extra_vars={**dirs, "aws_resources_prune": "true"}).assert_ok()
    assert actions(pruned)["biomage-itestlarge-development"] == "delete"


def test_the_module_names_an_unreachable_endpoint_with_the_fix(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    args = {
        "environment": "development",
        "group": "aws-resources",
        "region": "eu-west-1",
        "endpoint_url": dead,
        "max_attempts": 1,
        "stacks": [
            {
                "name": "biomage-sqs-development",
                "template": str(REPO_ROOT / "cf/sqs.yaml"),
                "parameters": {"Environment": "development"},
            }
        ],
    }
    (tmp_path / "credentials").write_text("[dead]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env = ansible_env(
        AWS_PROFILE="dead",
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "credentials"),
    )
    proc = subprocess.run(
        [str(BIN_DIR / "ansible"), "localhost", "-m", "biomage.iac.cfn_stacks", "-a", json.dumps(args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"cannot reach AWS at {dead} while trying to list the CloudFormation stacks" in output
    assert "Fix: start the local AWS emulator with `make dev-up`" in output
