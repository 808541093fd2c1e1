"""How results read: diffs of parameters and tags with NoEcho values masked, the summary, and
resource changes from a change set or from two templates."""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.render import change_of, template_changes
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import UPDATE
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.spec import prepare

from tests.lib.cfn_scenarios import ENV, GROUP, deployed, item, queue_template, runner
from tests.lib.fake_cfn import FakeCfn


def test_parameter_and_tag_changes_are_updates_with_a_readable_masked_diff() -> None:
    fake = FakeCfn()
    deployed(fake, "s", queue_template())
    fake.stacks["s"]["Tags"].append({"Key": "team", "Value": "old"})
    run = runner(fake, check_mode=True)
    run.plan(
        prepare(
            [item("s", queue_template(), tags={"team": "new"}, parameters={"Environment": ENV, "Secret": "hush"})],
            ENV,
            GROUP,
            "eu-west-1",
        )
    )
    result = run.results["s"]
    assert result.action == UPDATE
    assert result.reasons == ["tags: team"]  # NoEcho Secret is not compared
    diffs = [d for d in run.diffs() if "prepared" not in d]
    assert len(diffs) == 1  # template unchanged: only parameters and tags
    assert 'team: "new"' in diffs[0]["after"] and 'team: "old"' in diffs[0]["before"]
    assert "hush" not in diffs[0]["after"] and "Secret: ****" in diffs[0]["after"]


def test_the_summary_counts_actions_and_failures() -> None:
    fake = FakeCfn()
    deployed(fake, "same", queue_template())
    run = runner(fake, check_mode=True)
    run.plan(prepare([item("same", queue_template()), item("new", queue_template("n"))], ENV, GROUP, "eu-west-1"))
    run.results["new"].error = "boom"
    assert run.summary() == {"failed": 1, "unchanged": 1}


def test_template_changes_list_added_removed_and_modified_resources() -> None:
    before = {"Resources": {"Kept": {"Type": "AWS::SQS::Queue"}, "Old": {"Type": "AWS::SNS::Topic"}}}
    after = {
        "Resources": {
            "Kept": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": 5}},
            "New": {"Type": "AWS::S3::Bucket"},
        }
    }
    assert template_changes(before, after) == [
        {"action": "Modify", "logical_id": "Kept", "type": "AWS::SQS::Queue", "source": "template"},
        {"action": "Add", "logical_id": "New", "type": "AWS::S3::Bucket", "source": "template"},
        {"action": "Remove", "logical_id": "Old", "type": "AWS::SNS::Topic", "source": "template"},
    ]
    assert template_changes(after, after) == []


def test_a_change_set_change_keeps_replacement_and_scope_only_when_given() -> None:
    change = {
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "Role",
            "ResourceType": "AWS::IAM::Role",
            "Replacement": "False",
            "Scope": ["Properties"],
        }
    }
    assert change_of(change) == {
        "action": "Modify",
        "logical_id": "Role",
        "type": "AWS::IAM::Role",
        "replacement": "False",
        "scope": ["Properties"],
    }
    assert change_of({"ResourceChange": {"Action": "Add", "LogicalResourceId": "Q", "ResourceType": "T"}}) == {
        "action": "Add",
        "logical_id": "Q",
        "type": "T",
    }
