"""Labelled extensions of the moto server the local stack runs (the AWS emulator).

moto departs from AWS in a few places the roles rely on. Rather than give development another code
path (deploying stacks directly instead of by change set, say), the stack runs moto with these
patches applied, so that development takes the path staging and production take. Each patch names
the AWS behaviour it reproduces; tests/integration/test_moto_ext.py pins every one of them against
the running emulator. Nothing here changes moto on disk: the patches live in the server process
started by :mod:`devstack.moto_server` only.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import yaml
from moto.cloudformation import models as cloudformation_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cloudformation_responses
from moto.cloudformation.exceptions import CloudFormationError, UnformattedGetAttTemplateException
from moto.cloudformation.models import CloudFormationBackend, Stack, cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse, transform_dict
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.eks.models import EKSBackend
from moto.elasticache.models import elasticache_backends
from moto.secretsmanager.models import secretsmanager_backends

# (name, the AWS behaviour reproduced): what `python -m devstack.moto_server --patches` prints
PATCHES: list[tuple[str, str]] = []

# IAM resource types that need CAPABILITY_IAM, and the name property that makes one need
# CAPABILITY_NAMED_IAM (AWS CloudFormation User Guide, "Acknowledging IAM resources").
IAM_NAME_PROPERTIES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}


class InsufficientCapabilitiesException(CloudFormationError):
    code = "InsufficientCapabilitiesException"


def _patch(name: str, behaviour: str):
    def register(func):
        PATCHES.append((name, behaviour))
        func.patch_name = name
        return func

    return register


def _template_dict(body: str | None) -> dict:
    if not body:
        return {}
    try:
        loaded = json.loads(body)
    except ValueError:
        loader = type("TagTolerantLoader", (yaml.SafeLoader,), {})
        loader.add_multi_constructor("!", lambda ldr, suffix, node: None)
        loaded = yaml.load(body, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    return loaded if isinstance(loaded, dict) else {}


def required_capabilities(body: str | None) -> str | None:
    """The capability a template needs: CAPABILITY_NAMED_IAM, CAPABILITY_IAM or None."""
    needed = None
    resources = _template_dict(body).get("Resources") or {}
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") not in IAM_NAME_PROPERTIES:
            continue
        name_property = IAM_NAME_PROPERTIES[resource["Type"]]
        if name_property and name_property in (resource.get("Properties") or {}):
            return "CAPABILITY_NAMED_IAM"
        needed = "CAPABILITY_IAM"
    return needed


@_patch(
    "insufficient-capabilities",
    "CreateStack, UpdateStack and CreateChangeSet refuse a template with IAM resources unless the "
    "request acknowledges them (InsufficientCapabilitiesException, 'Requires capabilities : [...]'); "
    "CAPABILITY_NAMED_IAM covers CAPABILITY_IAM.",
)
def _insufficient_capabilities() -> None:

    def check(self) -> None:
        body = self._get_param("TemplateBody")
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        needed = required_capabilities(body)
        given = set(self._get_param("Capabilities", []) or [])
        if needed == "CAPABILITY_NAMED_IAM" and needed not in given:
            raise InsufficientCapabilitiesException("Requires capabilities : [CAPABILITY_NAMED_IAM]")
        if needed == "CAPABILITY_IAM" and not given & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
            raise InsufficientCapabilitiesException("Requires capabilities : [CAPABILITY_IAM]")

    for operation in ("create_stack", "update_stack", "create_change_set"):
        original = getattr(CloudFormationResponse, operation)

        def checked(self, _original=original):
            check(self)
            return _original(self)

        setattr(CloudFormationResponse, operation, checked)


@_patch(
    "capabilities-reported",
    "DescribeStacks and DescribeChangeSet return the Capabilities the stack or change set was created or updated with.",
)
def _capabilities_reported() -> None:

    def record_on_stack(operation: str):
        original = getattr(CloudFormationResponse, operation)

        def recorded(self):
            result = original(self)
            stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
            stack.capabilities = list(self._get_param("Capabilities", []) or [])
            return result

        setattr(CloudFormationResponse, operation, recorded)

    record_on_stack("create_stack")
    record_on_stack("update_stack")
    original_change_set = CloudFormationResponse.create_change_set

    def change_set_recorded(self):
        result = original_change_set(self)
        change_set = self.cloudformation_backend.describe_change_set(self._get_param("ChangeSetName"))
        change_set.capabilities = list(self._get_param("Capabilities", []) or [])
        return result

    CloudFormationResponse.create_change_set = change_set_recorded


@_patch(
    "execute-change-set-records-the-stack",
    "ExecuteChangeSet leaves the stack with the change set's parameters, tags (when the change set "
    "names any), capabilities, outputs and description, as UpdateStack does; so a second change set "
    "with the same inputs has no changes.",
)
def _execute_change_set_records_the_stack() -> None:

    original = CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        original(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        stack.parameters = dict(stack.resource_map.resolved_parameters)
        if change_set.tags:
            stack.tags = dict(change_set.tags)
        stack.capabilities = list(getattr(change_set, "capabilities", []) or [])
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute_change_set
    # DescribeChangeSet lists the change set's tags (moto keeps them as a dict and returned none)
    CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER["DescribeChangeSetOutput.Tags"] = transform_dict


@_patch(
    "change-set-without-changes",
    "CreateChangeSet with the stack's own template and parameters succeeds; the change set ends "
    'FAILED with "The submitted information didn\'t contain changes." (only UpdateStack answers '
    '"No updates are to be performed.").',
)
def _change_set_without_changes() -> None:
    original = CloudFormationResponse.create_change_set

    def create_change_set(self):
        # the backend marks an unchanged change set FAILED itself; the response's own check, which
        # answered with UpdateStack's error instead, is skipped for this request
        self._validate_different_update = lambda *_args: None
        try:
            return original(self)
        finally:
            del self._validate_different_update

    CloudFormationResponse.create_change_set = create_change_set


@_patch(
    "change-set-stacks-export",
    "Templates deployed by change set import other stacks' exports (Fn::ImportValue) and publish their "
    "own (ListExports) when the change set is executed, exactly as with CreateStack/UpdateStack; an "
    "import of an export that does not exist fails.",
)
def _change_set_stacks_export() -> None:
    original_resource_map = Stack._create_resource_map

    def create_resource_map(self):
        # every stack of a region resolves imports against the region's one export registry (moto gave
        # stacks made by CreateChangeSet an empty registry of their own)
        self.cross_stack_resources = cloudformation_backends[self.account_id][self.region_name].exports
        return original_resource_map(self)

    Stack._create_resource_map = create_resource_map
    original_execute = CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        original_execute(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        for name in [n for n, export in self.exports.items() if export.exporting_stack_id == stack.stack_id]:
            del self.exports[name]
        for export in stack.exports:
            self.exports[export.name] = export

    CloudFormationBackend.execute_change_set = execute_change_set


@_patch(
    "stack-tags-are-a-change",
    "A change set or UpdateStack that changes only the stack's tags is a change: the change set is "
    "created (not FAILED) and, executed, leaves the stack with the new tags; UpdateStack updates them "
    'instead of answering "No updates are to be performed."',
)
def _stack_tags_are_a_change() -> None:
    original_backend = CloudFormationBackend.create_change_set

    def create_change_set(
        self,
        stack_name,
        change_set_name,
        template,
        parameters,
        description,
        change_set_type,
        notification_arns=None,
        tags=None,
        role_arn=None,
    ):
        before = None
        if change_set_type == "UPDATE":
            before = next((dict(s.tags or {}) for s in self.stacks.values() if s.name == stack_name), None)
        change_set_id, stack_id = original_backend(
            self, stack_name, change_set_name, template, parameters, description, change_set_type,
            notification_arns=notification_arns, tags=tags, role_arn=role_arn,
        )  # fmt: skip
        change_set = self.change_sets[change_set_id]
        if change_set.status == "FAILED" and tags and before is not None and dict(tags) != before:
            change_set.status = "CREATE_COMPLETE"
            change_set.execution_status = "AVAILABLE"
            change_set.status_reason = None
        return change_set_id, stack_id

    CloudFormationBackend.create_change_set = create_change_set
    original_check = CloudFormationResponse._validate_different_update

    def validate_different_update(self, incoming_params, stack_body, old_stack):
        tags = {item["Key"]: item["Value"] for item in self._get_param("Tags", []) or []}
        if tags and tags != dict(old_stack.tags or {}):
            return
        original_check(self, incoming_params, stack_body, old_stack)

    CloudFormationResponse._validate_different_update = validate_different_update


@_patch(
    "stack-updates-are-dated",
    "UpdateStack and the ExecuteChangeSet of an update record the stack's LastUpdatedTime (DescribeStacks). "
    "Executing a change set deletes the stack's other change sets; an UpdateStack leaves them OBSOLETE, no "
    "longer executable. (moto reported no LastUpdatedTime and kept every change set AVAILABLE.)",
)
def _stack_updates_are_dated() -> None:
    original_update = CloudFormationBackend.update_stack
    original_execute = CloudFormationBackend.execute_change_set

    def update_stack(self, name, *args, **kwargs):
        stack = original_update(self, name, *args, **kwargs)
        stack.last_updated_time = utcnow()
        for change_set in self.change_sets.values():
            if change_set.stack_id == stack.stack_id and change_set.execution_status == "AVAILABLE":
                change_set.execution_status = "OBSOLETE"
        return stack

    def execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.describe_change_set(change_set_name)
        original_execute(self, change_set_name, stack_name)
        if change_set.change_set_type == "UPDATE":
            self.stacks[change_set.stack_id].last_updated_time = utcnow()
        for other_id in [i for i, c in self.change_sets.items() if c.stack_id == change_set.stack_id]:
            if self.change_sets[other_id] is not change_set:
                del self.change_sets[other_id]

    CloudFormationBackend.update_stack = update_stack
    CloudFormationBackend.execute_change_set = execute_change_set


# tags with which the devstack registers its local Kubernetes API server as an EKS cluster
ISSUER_TAG = "biomage.devstack/oidc-issuer"
ENDPOINT_TAG = "biomage.devstack/endpoint"


@_patch(
    "eks-cluster-reports-its-issuer",
    "DescribeCluster reports the cluster's own OIDC issuer (its API server's service-account issuer) "
    "and API endpoint. moto makes both up; a cluster the devstack registers for its local API server "
    f"(tags {ISSUER_TAG} and {ENDPOINT_TAG}) reports that server's.",
)
def _eks_cluster_reports_its_issuer() -> None:
    original = EKSBackend.describe_cluster

    def describe_cluster(self, name):
        cluster = original(self, name)
        tags = cluster.tags or {}
        if tags.get(ISSUER_TAG):
            cluster.identity = {"oidc": {"issuer": tags[ISSUER_TAG]}}
        if tags.get(ENDPOINT_TAG):
            cluster.endpoint = tags[ENDPOINT_TAG]
        return cluster

    EKSBackend.describe_cluster = describe_cluster


_RESOLVE_SECRET = re.compile(r"\{\{resolve:secretsmanager:(?P<id>.+?):SecretString(?::(?P<key>[^:}]*))?[^}]*\}\}")


def _resolve_secrets(value: Any, account_id: str, region_name: str) -> Any:
    """CloudFormation's ``{{resolve:secretsmanager:<id>:SecretString[:<json key>]}}`` references, in
    every string of ``value`` (a property value, list or mapping)."""
    if isinstance(value, dict):
        return {k: _resolve_secrets(v, account_id, region_name) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(v, account_id, region_name) for v in value]
    if not isinstance(value, str) or "{{resolve:secretsmanager:" not in value:
        return value
    backend = secretsmanager_backends[account_id][region_name]

    def resolve(match: re.Match) -> str:
        secret = backend.get_secret_value(match["id"], None, None)["SecretString"]
        return json.loads(secret)[match["key"]] if match["key"] else secret

    return _RESOLVE_SECRET.sub(resolve, value)


@_patch(
    "cloudformation-elasticache-and-secrets",
    "CloudFormation creates, updates and deletes AWS::SecretsManager::Secret (GenerateSecretString "
    "included; Ref is the ARN), AWS::ElastiCache::SubnetGroup (Ref is the name) and "
    "AWS::ElastiCache::ReplicationGroup (Ref is the id; PrimaryEndPoint.*, ReaderEndPoint.* attributes) "
    "and resolves {{resolve:secretsmanager:...}} references in their properties.",
)
def _cloudformation_elasticache_and_secrets() -> None:
    def tags_of(properties: dict) -> list[dict[str, str]]:
        return [{"Key": t["Key"], "Value": str(t["Value"])} for t in properties.get("Tags") or []]

    class CfnSecret(CloudFormationModel):
        def __init__(self, arn: str, name: str, account_id: str, region_name: str) -> None:
            self.arn, self.name, self.account_id, self.region_name = arn, name, account_id, region_name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Id",)

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Id":
                return self.arn
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            backend = secretsmanager_backends[account_id][region_name]
            secret_string = properties.get("SecretString")
            generate = properties.get("GenerateSecretString")
            if generate is not None:
                password = json.loads(
                    backend.get_random_password(
                        password_length=int(generate.get("PasswordLength", 32)),
                        exclude_characters=generate.get("ExcludeCharacters", ""),
                        exclude_numbers=bool(generate.get("ExcludeNumbers", False)),
                        exclude_punctuation=bool(generate.get("ExcludePunctuation", False)),
                        exclude_uppercase=bool(generate.get("ExcludeUppercase", False)),
                        exclude_lowercase=bool(generate.get("ExcludeLowercase", False)),
                        include_space=bool(generate.get("IncludeSpace", False)),
                        require_each_included_type=bool(generate.get("RequireEachIncludedType", True)),
                    )
                )["RandomPassword"]
                if generate.get("SecretStringTemplate") and generate.get("GenerateStringKey"):
                    document = json.loads(generate["SecretStringTemplate"])
                    document[generate["GenerateStringKey"]] = password
                    secret_string = json.dumps(document)
                else:
                    secret_string = password
            created = json.loads(
                backend.create_secret(
                    name=properties.get("Name") or resource_name,
                    secret_string=secret_string,
                    secret_binary=None,
                    description=properties.get("Description"),
                    tags=tags_of(properties),
                    kms_key_id=properties.get("KmsKeyId"),
                    client_request_token=None,
                    replica_regions=[],
                    force_overwrite=False,
                )
            )
            return cls(created["ARN"], created["Name"], account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            return original_resource  # the value stays; CloudFormation does not regenerate it on update

        def delete(self, account_id: str, region_name: str) -> None:
            secretsmanager_backends[account_id][region_name].delete_secret(
                secret_id=self.arn, recovery_window_in_days=None, force_delete_without_recovery=True
            )

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            secretsmanager_backends[account_id][region_name].delete_secret(
                secret_id=resource_name, recovery_window_in_days=None, force_delete_without_recovery=True
            )

        def is_created(self) -> bool:
            return True

    class CfnCacheSubnetGroup(CloudFormationModel):
        def __init__(self, name: str) -> None:
            self.name = name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "CacheSubnetGroupName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::ElastiCache::SubnetGroup"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            name = str(properties.get("CacheSubnetGroupName") or resource_name).lower()  # AWS lowercases it
            elasticache_backends[account_id][region_name].create_cache_subnet_group(
                cache_subnet_group_name=name,
                cache_subnet_group_description=properties.get("Description", ""),
                subnet_ids=list(properties.get("SubnetIds") or []),
                tags=tags_of(properties),
            )
            return cls(name)

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            properties = cloudformation_json.get("Properties") or {}
            group = elasticache_backends[account_id][region_name].cache_subnet_groups[original_resource.name]
            group.cache_subnet_group_description = properties.get("Description", "")
            group.subnet_ids = list(properties.get("SubnetIds") or [])
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            elasticache_backends[account_id][region_name].cache_subnet_groups.pop(self.name, None)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            elasticache_backends[account_id][region_name].cache_subnet_groups.pop(resource_name, None)

        def is_created(self) -> bool:
            return True

    class CfnReplicationGroup(CloudFormationModel):
        ATTRIBUTES = (
            "PrimaryEndPoint.Address",
            "PrimaryEndPoint.Port",
            "ReaderEndPoint.Address",
            "ReaderEndPoint.Port",
        )

        def __init__(self, group_id: str, properties: dict, account_id: str, region_name: str) -> None:
            self.group_id, self.properties = group_id, properties
            self.account_id, self.region_name = account_id, region_name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "ReplicationGroupId"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::ElastiCache::ReplicationGroup"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in cls.ATTRIBUTES

        @property
        def physical_resource_id(self) -> str:
            return self.group_id

        def get_cfn_attribute(self, attribute_name: str) -> str:
            group = elasticache_backends[self.account_id][self.region_name].replication_groups[self.group_id]
            node_group = group.node_groups[0]
            values = {
                "PrimaryEndPoint.Address": node_group["primary_endpoint_address"],
                "PrimaryEndPoint.Port": str(group.port),
                "ReaderEndPoint.Address": node_group["reader_endpoint_address"],
                "ReaderEndPoint.Port": str(group.port),
            }
            if attribute_name in values:
                return values[attribute_name]
            raise UnformattedGetAttTemplateException()

        @staticmethod
        def _create(group_id: str, properties: dict, account_id: str, region_name: str) -> None:
            properties = _resolve_secrets(properties, account_id, region_name)

            def flag(name: str) -> bool | None:
                value = properties.get(name)
                return None if value is None else str(value).lower() == "true"

            arguments = {
                "replication_group_id": group_id,
                "replication_group_description": properties.get("ReplicationGroupDescription", ""),
                "global_replication_group_id": None,
                "primary_cluster_id": properties.get("PrimaryClusterId"),
                "automatic_failover_enabled": flag("AutomaticFailoverEnabled"),
                "multi_az_enabled": flag("MultiAZEnabled"),
                "num_cache_clusters": int(properties.get("NumCacheClusters") or 1),
                "preferred_cache_cluster_azs": properties.get("PreferredCacheClusterAZs") or [],
                "num_node_groups": int(properties["NumNodeGroups"]) if properties.get("NumNodeGroups") else None,
                "replicas_per_node_group": properties.get("ReplicasPerNodeGroup"),
                "node_group_configuration": properties.get("NodeGroupConfiguration") or [],
                "cache_node_type": properties.get("CacheNodeType"),
                "engine": properties.get("Engine"),
                "engine_version": properties.get("EngineVersion"),
                "cache_parameter_group_name": properties.get("CacheParameterGroupName"),
                "cache_subnet_group_name": properties.get("CacheSubnetGroupName"),
                "cache_security_group_names": properties.get("CacheSecurityGroupNames") or [],
                "security_group_ids": properties.get("SecurityGroupIds") or [],
                "tags": tags_of(properties),
                "snapshot_arns": properties.get("SnapshotArns") or [],
                "snapshot_name": properties.get("SnapshotName"),
                "preferred_maintenance_window": properties.get("PreferredMaintenanceWindow"),
                "port": int(properties.get("Port") or 6379),
                "notification_topic_arn": properties.get("NotificationTopicArn"),
                "auto_minor_version_upgrade": flag("AutoMinorVersionUpgrade"),
                "snapshot_retention_limit": int(properties.get("SnapshotRetentionLimit") or 0),
                "snapshot_window": properties.get("SnapshotWindow"),
                "auth_token": properties.get("AuthToken"),
                "transit_encryption_enabled": flag("TransitEncryptionEnabled"),
                "at_rest_encryption_enabled": flag("AtRestEncryptionEnabled"),
                "kms_key_id": properties.get("KmsKeyId"),
                "user_group_ids": properties.get("UserGroupIds") or [],
                "log_delivery_configurations": properties.get("LogDeliveryConfigurations") or [],
                "data_tiering_enabled": flag("DataTieringEnabled"),
                "network_type": properties.get("NetworkType"),
                "ip_discovery": properties.get("IpDiscovery"),
                "transit_encryption_mode": properties.get("TransitEncryptionMode"),
                "cluster_mode": properties.get("ClusterMode"),
                "serverless_cache_snapshot_name": None,
            }
            elasticache_backends[account_id][region_name].create_replication_group(**arguments)

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            # AWS: at most 40 lowercase characters
            group_id = str(properties.get("ReplicationGroupId") or resource_name).lower()[:40].rstrip("-")
            cls._create(group_id, properties, account_id, region_name)
            return cls(group_id, properties, account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            properties = cloudformation_json.get("Properties") or {}
            if properties == original_resource.properties:
                return original_resource
            backend = elasticache_backends[account_id][region_name]
            backend.replication_groups.pop(original_resource.group_id, None)
            cls._create(original_resource.group_id, properties, account_id, region_name)
            return cls(original_resource.group_id, properties, account_id, region_name)

        def delete(self, account_id: str, region_name: str) -> None:
            elasticache_backends[account_id][region_name].replication_groups.pop(self.group_id, None)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            elasticache_backends[account_id][region_name].replication_groups.pop(resource_name, None)

        def is_created(self) -> bool:
            return True

    # moto lists its CloudFormation models once (cached): list them again with these
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    _cloudformation_elasticache_and_secrets.models = (CfnSecret, CfnCacheSubnetGroup, CfnReplicationGroup)


@_patch(
    "short-form-intrinsics",
    "YAML templates' short-form intrinsic functions read as their long form, whatever their argument: "
    "!GetAtt Resource.Attribute.Path splits at the first dot only (Fn::GetAtt [Resource, Attribute.Path]), "
    "a mapping or nested sequence argument (!ImportValue {Fn::Sub: ...}, !Join [',', [...]]) is read in full, "
    "!Ref and !Condition become Ref and Condition.",
)
def _short_form_intrinsics() -> None:

    def tag_constructor(loader, tag, node):
        if isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node)
        if tag == "!GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        if tag in ("!Ref", "!Condition"):
            return {tag[1:]: value}
        return {f"Fn::{tag[1:]}": value}

    # moto registers its constructor again before every parse, by these module-level names
    cloudformation_models.yaml_tag_constructor = tag_constructor
    cloudformation_responses.yaml_tag_constructor = tag_constructor


@_patch(
    "create-stack-atomic",
    "A CreateStack that fails creates nothing, and concurrent CloudFormation calls do not interfere: "
    "AWS never reports CREATE_PENDING. (moto stores the new stack in CREATE_PENDING before checking its "
    "exports, with no lock in its threaded server: a failed check, or another request's export added "
    "meanwhile ('dictionary changed size during iteration'), left the stack CREATE_PENDING forever.)",
)
def _create_stack_atomic() -> None:
    # one lock for the CloudFormation backend's writes (the emulator's own lock, not moto's)
    lock = threading.RLock()

    def serialised(original):
        def call(self, *args, **kwargs):
            with lock:
                return original(self, *args, **kwargs)

        return call

    original_create = CloudFormationBackend.create_stack

    def create_stack(self, name, *args, **kwargs):
        with lock:
            before = set(self.stacks)
            try:
                return original_create(self, name, *args, **kwargs)
            except Exception:
                for stack_id in set(self.stacks) - before:
                    stack = self.stacks[stack_id]
                    if stack.status == "CREATE_PENDING":  # refused before any resource: no stack, as on AWS
                        del self.stacks[stack_id]
                        for export in list(stack.exports):
                            if getattr(self.exports.get(export.name), "exporting_stack_id", None) == stack_id:
                                del self.exports[export.name]
                    elif stack.status == "CREATE_IN_PROGRESS":  # a resource failed: as AWS shows it
                        stack.status = "CREATE_FAILED"
                        stack._add_stack_event("CREATE_FAILED", resource_status_reason="emulator error")
                raise

    CloudFormationBackend.create_stack = create_stack
    for operation in ("update_stack", "delete_stack", "create_change_set", "execute_change_set", "delete_change_set"):
        setattr(CloudFormationBackend, operation, serialised(getattr(CloudFormationBackend, operation)))


@_patch(
    "resource-types-moto-lacks",
    "CloudFormation creates, updates and deletes resource types moto does not model (AWS::Backup::*, "
    "AWS::WAFv2::*, ...) as placeholders, as AWS creates them: Ref is the resource's name property "
    "(<Type>Name or Name) or a generated name, Fn::GetAtt of an attribute ending in Arn is an ARN of "
    "that name, any other attribute is the name. Nothing behind a placeholder answers its own API. "
    "(moto skipped them, so a template referring to one failed with 'GetAtt references undefined "
    "resource' or a server error; stacks still report their real type and logical id.)",
)
def _resource_types_moto_lacks() -> None:
    placeholders: dict[str, type] = {}

    def placeholder_for(resource_type: str) -> type:
        if resource_type in placeholders:
            return placeholders[resource_type]
        service, kind = resource_type.split("::", 2)[1:]

        class Placeholder(CloudFormationModel):
            def __init__(self, name: str, account_id: str, region_name: str, properties: dict) -> None:
                self.name, self.properties = name, properties
                self.arn = f"arn:aws:{service.lower()}:{region_name}:{account_id}:{kind.lower()}/{name}"

            @staticmethod
            def cloudformation_name_type() -> str:
                return ""

            @staticmethod
            def cloudformation_type() -> str:
                return resource_type

            @classmethod
            def has_cfn_attr(cls, attr: str) -> bool:
                return True

            @property
            def physical_resource_id(self) -> str:
                return self.name

            def get_cfn_attribute(self, attribute_name: str) -> str:
                return self.arn if attribute_name.endswith("Arn") else self.name

            @classmethod
            def create_from_cloudformation_json(
                cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
            ):
                properties = cloudformation_json.get("Properties") or {}
                name = properties.get(f"{kind}Name") or properties.get("Name") or resource_name
                return cls(str(name), account_id, region_name, properties)

            @classmethod
            def update_from_cloudformation_json(
                cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
            ):
                properties = cloudformation_json.get("Properties") or {}
                named = properties.get(f"{kind}Name") or properties.get("Name")
                name = str(named) if named else original_resource.name
                return cls(name, account_id, region_name, properties)

            @classmethod
            def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
                return None

            def is_created(self) -> bool:
                return True

        Placeholder.__name__ = Placeholder.__qualname__ = "Placeholder" + resource_type.replace("::", "")
        placeholders[resource_type] = Placeholder
        return Placeholder

    modelled = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str):
        found = modelled(resource_type)
        unmodelled = found is None and resource_type not in parsing.NULL_MODELS
        if unmodelled and resource_type.startswith("AWS::") and resource_type.count("::") == 2:
            return placeholder_for(resource_type)
        return found

    # moto's parsing module calls it by this module-level name
    parsing.resource_class_from_type = resource_class_from_type


@_patch(
    "list-change-sets-of-the-stack",
    "ListChangeSets lists the change sets of the stack it names (StackName: a name or a stack id), "
    "as AWS does; moto listed every stack's.",
)
def _list_change_sets_of_the_stack() -> None:
    def list_change_sets(self):
        named = self._get_param("StackName")
        change_sets = [
            change_set
            for change_set in self.cloudformation_backend.list_change_sets()
            if not named or named in (change_set.stack_name, change_set.stack_id)
        ]
        return ActionResult({"Summaries": change_sets})

    CloudFormationResponse.list_change_sets = list_change_sets


_APPLIED = False


def apply() -> list[tuple[str, str]]:
    """Apply every patch once; return their names and the AWS behaviour each reproduces."""
    global _APPLIED  # noqa: PLW0603 - patches are process-wide by nature
    if not _APPLIED:
        for patch in (
            _change_set_without_changes,
            _insufficient_capabilities,
            _capabilities_reported,
            _execute_change_set_records_the_stack,
            _change_set_stacks_export,
            _stack_tags_are_a_change,
            _stack_updates_are_dated,
            _eks_cluster_reports_its_issuer,
            _cloudformation_elasticache_and_secrets,
            _short_form_intrinsics,
            _create_stack_atomic,
            _resource_types_moto_lacks,
            _list_change_sets_of_the_stack,
        ):
            patch()
        _APPLIED = True
    return list(PATCHES)
