"""An in-memory CloudFormation client for unit tests of the planner: it records every call and can
be scripted into the states moto never reaches (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, stacks
left *_IN_PROGRESS by someone else, failed updates)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

WRITES = {
    "create_stack",
    "update_stack",
    "delete_stack",
    "continue_update_rollback",
    "create_change_set",
    "execute_change_set",
    "delete_change_set",
}


def client_error(operation: str, message: str, code: str = "ValidationError") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeCfn:
    page_size = 2

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.status_script: dict[str, list[str]] = {}
        self.fail_on: dict[tuple[str, str], str] = {}  # (operation, stack) -> final status
        self.change_sets: dict[str, dict[str, Any]] = {}
        self.exports: list[str] = []
        self.order: list[str] = []
        self.refuse_empty_change_sets = False  # moto's behaviour: ValidationError instead of a FAILED change set
        self.templates_in_s3: dict[str, str] = {}  # TemplateURL -> body (written by FakeS3)
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------
    def add(self, name: str, template: str, parameters: dict[str, str], tags: dict[str, str], **extra: Any) -> None:
        self.stacks[name] = {
            "StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/id",
            "StackName": name,
            "StackStatus": extra.pop("status", "CREATE_COMPLETE"),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            "Outputs": extra.pop("outputs", []),
            "_template": template,
            **extra,
        }

    def ops(self) -> list[str]:
        return [op for op, _kwargs in self.calls]

    def writes(self) -> list[str]:
        return [op for op, _kwargs in self.calls if op in WRITES]

    def _record(self, op: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((op, kwargs))

    def _find(self, op: str, name_or_id: str) -> dict[str, Any]:
        for stack in self.stacks.values():
            if name_or_id in (stack["StackName"], stack["StackId"]):
                return stack
        raise client_error(op, f"Stack with id {name_or_id} does not exist")

    def _public(self, stack: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in stack.items() if not k.startswith("_")}

    def _resolved(self, stack: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with UsePreviousTemplate/UsePreviousValue replaced by the stack's template and values,
        and a TemplateURL by the uploaded body."""
        out = dict(kwargs)
        if "TemplateURL" in out:
            if len(self.templates_in_s3.get(out["TemplateURL"], "")) == 0:
                raise client_error("CreateStack", f"S3 error: Access Denied for {out['TemplateURL']}")
            out["TemplateBody"] = self.templates_in_s3[out.pop("TemplateURL")]
        elif "TemplateBody" in out and len(out["TemplateBody"].encode()) > 51200:
            raise client_error(
                "CreateStack",
                "1 validation error detected: Value at 'templateBody' failed to satisfy "
                "constraint: Member must have length less than or equal to 51200",
            )
        if out.pop("UsePreviousTemplate", False):
            out["TemplateBody"] = stack["_template"]
        previous = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}
        out["Parameters"] = [
            {"ParameterKey": p["ParameterKey"], "ParameterValue": previous[p["ParameterKey"]]}
            if p.get("UsePreviousValue")
            else p
            for p in out.get("Parameters", [])
        ]
        return out

    def _apply(self, op: str, name: str, stack: dict[str, Any], success: str) -> None:
        stack["StackStatus"] = self.fail_on.get((op, name), success)
        with self._lock:
            self.order.append(name)

    # -- API -----------------------------------------------------------------------------------
    def describe_stacks(self, StackName: str | None = None, NextToken: str | None = None) -> dict[str, Any]:
        self._record("describe_stacks", {"StackName": StackName, "NextToken": NextToken})
        if StackName:
            stack = self._find("DescribeStacks", StackName)
            script = self.status_script.get(stack["StackName"])
            if script:
                stack["StackStatus"] = script.pop(0)
            return {"Stacks": [self._public(stack)]}
        names = sorted(self.stacks)
        start = int(NextToken or 0)
        page = names[start : start + self.page_size]
        out: dict[str, Any] = {"Stacks": [self._public(self.stacks[n]) for n in page]}
        if start + self.page_size < len(names):
            out["NextToken"] = str(start + self.page_size)
        return out

    def get_template(self, StackName: str, TemplateStage: str = "Original") -> dict[str, Any]:
        self._record("get_template", {"StackName": StackName, "TemplateStage": TemplateStage})
        return {"TemplateBody": self._find("GetTemplate", StackName)["_template"]}

    def create_stack(self, **kwargs: Any) -> dict[str, Any]:
        self._record("create_stack", kwargs)
        kwargs = self._resolved(None, kwargs)
        name = kwargs["StackName"]
        self.add(
            name,
            kwargs["TemplateBody"],
            {p["ParameterKey"]: p["ParameterValue"] for p in kwargs.get("Parameters", [])},
            {t["Key"]: t["Value"] for t in kwargs.get("Tags", [])},
            Capabilities=kwargs.get("Capabilities", []),
        )
        self._apply("create_stack", name, self.stacks[name], "CREATE_COMPLETE")
        return {"StackId": self.stacks[name]["StackId"]}

    def update_stack(self, **kwargs: Any) -> dict[str, Any]:
        self._record("update_stack", kwargs)
        stack = self._find("UpdateStack", kwargs["StackName"])
        kwargs = self._resolved(stack, kwargs)
        if stack["StackStatus"] == "ROLLBACK_COMPLETE":
            raise client_error("UpdateStack", "is in ROLLBACK_COMPLETE state and can not be updated")
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in kwargs.get("Parameters", [])}
        tags = {t["Key"]: t["Value"] for t in kwargs.get("Tags", [])}
        if (
            stack["_template"] == kwargs["TemplateBody"]
            and parameters == {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
            and tags == {t["Key"]: t["Value"] for t in stack["Tags"]}
        ):
            raise client_error("UpdateStack", "No updates are to be performed.")
        stack["_template"] = kwargs["TemplateBody"]
        stack["Parameters"] = kwargs.get("Parameters", [])
        stack["Tags"] = kwargs.get("Tags", [])
        stack["Capabilities"] = kwargs.get("Capabilities", [])
        self._apply("update_stack", stack["StackName"], stack, "UPDATE_COMPLETE")
        return {"StackId": stack["StackId"]}

    def delete_stack(self, StackName: str) -> dict[str, Any]:
        self._record("delete_stack", {"StackName": StackName})
        stack = self._find("DeleteStack", StackName)
        with self._lock:
            self.order.append(f"delete:{stack['StackName']}")
        del self.stacks[stack["StackName"]]
        return {}

    def continue_update_rollback(self, StackName: str) -> dict[str, Any]:
        self._record("continue_update_rollback", {"StackName": StackName})
        stack = self._find("ContinueUpdateRollback", StackName)
        stack["StackStatus"] = "UPDATE_ROLLBACK_COMPLETE"
        return {}

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self._record("create_change_set", kwargs)
        name = kwargs["StackName"]
        stack = self._find("CreateChangeSet", name) if kwargs["ChangeSetType"] == "UPDATE" else None
        kwargs = self._resolved(stack, kwargs)
        if self.refuse_empty_change_sets and kwargs["ChangeSetType"] == "UPDATE":
            stack = self._find("CreateChangeSet", name)
            if stack["_template"] == kwargs["TemplateBody"]:
                raise client_error("CreateChangeSet", "No updates are to be performed.")
        if kwargs["ChangeSetType"] == "CREATE":
            self.add(name, "", {}, {}, status="REVIEW_IN_PROGRESS")
        self.change_sets[kwargs["ChangeSetName"]] = {
            "Status": "CREATE_COMPLETE",
            "ExecutionStatus": "AVAILABLE",
            "StackId": self.stacks[name]["StackId"],
            "Changes": [
                {
                    "ResourceChange": {
                        "Action": "Modify",
                        "LogicalResourceId": "Queue",
                        "ResourceType": "AWS::SQS::Queue",
                    }
                }
            ],
            "_kwargs": kwargs,
        }
        return {"Id": kwargs["ChangeSetName"], "StackId": self.stacks[name]["StackId"]}

    def describe_change_set(self, StackName: str, ChangeSetName: str, NextToken: str | None = None) -> dict[str, Any]:
        self._record("describe_change_set", {"StackName": StackName, "ChangeSetName": ChangeSetName})
        if ChangeSetName not in self.change_sets:
            raise client_error("DescribeChangeSet", f"ChangeSet [{ChangeSetName}] does not exist", "ChangeSetNotFound")
        return {k: v for k, v in self.change_sets[ChangeSetName].items() if not k.startswith("_")}

    def execute_change_set(self, StackName: str, ChangeSetName: str) -> dict[str, Any]:
        self._record("execute_change_set", {"StackName": StackName, "ChangeSetName": ChangeSetName})
        kwargs = self.change_sets.pop(ChangeSetName)["_kwargs"]
        stack = self._find("ExecuteChangeSet", StackName)
        stack["_template"] = kwargs["TemplateBody"]
        stack["Parameters"] = kwargs.get("Parameters", [])
        stack["Tags"] = kwargs.get("Tags", [])
        stack["Capabilities"] = kwargs.get("Capabilities", [])
        success = "CREATE_COMPLETE" if kwargs["ChangeSetType"] == "CREATE" else "UPDATE_COMPLETE"
        self._apply("execute_change_set", stack["StackName"], stack, success)
        return {}

    def delete_change_set(self, StackName: str, ChangeSetName: str) -> dict[str, Any]:
        self._record("delete_change_set", {"StackName": StackName, "ChangeSetName": ChangeSetName})
        self.change_sets.pop(ChangeSetName, None)
        return {}

    def list_exports(self, NextToken: str | None = None) -> dict[str, Any]:
        self._record("list_exports", {})
        return {"Exports": [{"Name": n, "Value": "x"} for n in self.exports]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        self._record("describe_stack_events", {"StackName": StackName})
        return {
            "StackEvents": [
                {
                    "LogicalResourceId": "Queue",
                    "ResourceStatus": "UPDATE_FAILED",
                    "ResourceStatusReason": "Queue name already taken",
                }
            ]
        }


class FakeS3:
    """An in-memory S3 client with the calls of the large-template upload; objects land in ``cfn``."""

    def __init__(self, cfn: FakeCfn, buckets: tuple[str, ...] = ()) -> None:
        self.cfn = cfn
        self.buckets: dict[str, dict[str, Any]] = {b: {} for b in buckets}
        self.calls: list[str] = []

    def _bucket(self, op: str, name: str) -> dict[str, Any]:
        if name not in self.buckets:
            raise ClientError(
                {"Error": {"Code": "404" if op == "HeadBucket" else "NoSuchBucket", "Message": "Not Found"}}, op
            )
        return self.buckets[name]

    def head_bucket(self, Bucket: str) -> dict[str, Any]:
        self.calls.append("head_bucket")
        self._bucket("HeadBucket", Bucket)
        return {}

    def create_bucket(self, Bucket: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("create_bucket")
        self.buckets[Bucket] = {"_config": kwargs}
        return {}

    def put_public_access_block(self, Bucket: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("put_public_access_block")
        self._bucket("PutPublicAccessBlock", Bucket)["_public_access_block"] = kwargs
        return {}

    def put_bucket_encryption(self, Bucket: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("put_bucket_encryption")
        self._bucket("PutBucketEncryption", Bucket)["_encryption"] = kwargs
        return {}

    def put_bucket_lifecycle_configuration(self, Bucket: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("put_bucket_lifecycle_configuration")
        self._bucket("PutBucketLifecycleConfiguration", Bucket)["_lifecycle"] = kwargs
        return {}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append("head_object")
        if Key not in self._bucket("HeadObject", Bucket):
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("put_object")
        self._bucket("PutObject", Bucket)[Key] = Body
        for region in ("eu-west-1",):
            self.cfn.templates_in_s3[f"https://{Bucket}.s3.{region}.amazonaws.com/{Key}"] = Body.decode()
        return {}
