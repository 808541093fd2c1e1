"""Templates over 51,200 bytes: refused with the fix without a bucket, otherwise uploaded to S3 once per
version and deployed by TemplateURL; the bucket is created (private, encrypted) only when allowed, and
check mode neither creates nor uploads anything."""

from __future__ import annotations

import pytest
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError, ValidationFailed
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.upload import TemplateUploader, template_key

from tests.lib.cfn_scenarios import ENV, GROUP, REGION, item, queue_template, runner
from tests.lib.fake_cfn import FakeCfn, FakeS3

BUCKET = "biomage-iac-templates-test"


def large_template(queue: str = "big") -> str:
    """A valid template over 51,200 bytes (a long description of the queue)."""
    padding = "".join(f"\n      # {'padding ' * 12}line {i}" for i in range(700))
    body = queue_template(queue) + padding + "\n"
    assert len(body.encode()) > 51200
    return body


def deploy(fake: FakeCfn, s3: FakeS3, items: list[dict], check_mode: bool = False, create: bool = False):
    uploader = TemplateUploader(s3, BUCKET, REGION, create=create, check_mode=check_mode)
    run = runner(fake, check_mode=check_mode, deploy_method="change_set", uploader=uploader)
    run.plan(prepare(items, ENV, GROUP, REGION, template_bucket=BUCKET))
    run.apply()
    return run


def test_without_a_bucket_a_large_template_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationFailed) as failure:
        prepare([item("big", large_template())], ENV, GROUP, REGION)
    (problem,) = failure.value.problems
    assert problem.startswith("cf/big.yaml: the template is ") and "at most 51200 in a request body" in problem
    assert "Fix: give an S3 bucket for large templates (module option template_bucket;" in problem
    assert "aws_resources_template_bucket" in problem


def test_a_template_over_a_megabyte_is_refused_even_with_a_bucket() -> None:
    body = queue_template() + "\n# " + "x" * 1048576 + "\n"
    with pytest.raises(ValidationFailed, match=r"even from S3\. Fix: split it"):
        prepare([item("huge", body)], ENV, GROUP, REGION, template_bucket=BUCKET)


def test_a_large_template_is_uploaded_once_and_deployed_by_url() -> None:
    fake = FakeCfn()
    s3 = FakeS3(fake, buckets=(BUCKET,))
    body = large_template()
    run = deploy(fake, s3, [item("big", body), item("small", queue_template("small"))])
    assert run.results["big"].status == "CREATE_COMPLETE" and run.results["small"].status == "CREATE_COMPLETE"
    big = next(kw for op, kw in fake.calls if op == "create_change_set" and kw["StackName"] == "big")
    small = next(kw for op, kw in fake.calls if op == "create_change_set" and kw["StackName"] == "small")
    key = template_key("big", body)
    assert big["TemplateURL"] == f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{key}" and "TemplateBody" not in big
    assert "TemplateURL" not in small and small["TemplateBody"]
    assert key.startswith("biomage-iac/cloudformation/big/") and s3.buckets[BUCKET][key] == body.encode()
    assert fake.stacks["big"]["_template"] == body

    edited = body.replace("big-${Environment}", "bigger-${Environment}")
    run = deploy(fake, s3, [item("big", edited), item("small", queue_template("small"))])
    assert run.results["big"].action == "update" and fake.stacks["big"]["_template"] == edited
    assert s3.calls.count("put_object") == 2 and "create_bucket" not in s3.calls
    assert deploy(fake, s3, [item("big", edited)]).results["big"].action == "unchanged"
    assert s3.calls.count("put_object") == 2  # an unchanged stack uploads nothing


def test_the_bucket_is_created_private_and_encrypted_when_allowed() -> None:
    fake = FakeCfn()
    s3 = FakeS3(fake)
    run = deploy(fake, s3, [item("big", large_template())], create=True)
    assert run.results["big"].status == "CREATE_COMPLETE"
    bucket = s3.buckets[BUCKET]
    assert bucket["_config"] == {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
    assert all(bucket["_public_access_block"]["PublicAccessBlockConfiguration"].values())
    rule = bucket["_encryption"]["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert run.plan_entries()[0] == {
        "kind": "S3 bucket",
        "name": BUCKET,
        "action": "create",
        "reason": "holds templates over 51,200 bytes",
    }


def test_a_missing_bucket_that_may_not_be_created_stops_the_run_before_any_change() -> None:
    fake = FakeCfn()
    s3 = FakeS3(fake)
    with pytest.raises(CfnError) as failure:
        deploy(fake, s3, [item("big", large_template()), item("small", queue_template("small"))])
    assert f"the S3 bucket {BUCKET} for templates over 51,200 bytes does not exist" in str(failure.value)
    assert "Fix: create it, or let the module create it (template_bucket_create: true)" in str(failure.value)
    assert fake.writes() == [] and "create_bucket" not in s3.calls


def test_check_mode_creates_and_uploads_nothing() -> None:
    fake = FakeCfn()
    s3 = FakeS3(fake)
    run = deploy(fake, s3, [item("big", large_template())], check_mode=True, create=True)
    assert run.results["big"].action == "create"
    assert [e["action"] for e in run.plan_entries()] == ["create", "create"]  # the bucket, then the stack
    assert s3.calls == ["head_bucket"] and s3.buckets == {} and fake.writes() == []


def test_check_mode_plans_a_large_update_from_the_template() -> None:
    fake = FakeCfn()
    s3 = FakeS3(fake, buckets=(BUCKET,))
    body = large_template()
    deploy(fake, s3, [item("big", body)])
    writes = len(fake.writes())
    run = deploy(fake, s3, [item("big", body + "      DelaySeconds: 5\n")], check_mode=True)
    result = run.results["big"]
    assert result.action == "update" and result.changes[0]["action"] == "Modify"
    assert any("uploaded to S3 only when applied" in n for n in result.notes)
    assert len(fake.writes()) == writes and s3.calls.count("put_object") == 1
