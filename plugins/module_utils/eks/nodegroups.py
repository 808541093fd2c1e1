# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Managed node groups: their immutable spec, what eksctl reports of them, and their plan.

Node groups are immutable in eksctl. Every managed node group is tagged with a compact record of its
immutable fields (``biomage.net/nodegroup-spec``), which eksctl shows as a tag of the node group's
CloudFormation stack (``eksctl utils describe-stacks``); together with the fields ``eksctl get
nodegroup`` reports (instance types, AMI type) this tells exactly which fields changed. A changed
group is either refused (the default, naming group, fields and fix) or rolled: a replacement named
``<name>-<8 hex digits of the spec hash>`` is created first, then the old group is drained and
deleted, so capacity never drops. Nothing here runs a command.
"""

from __future__ import annotations

import copy
import hashlib
import json

from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import (
    REPLACEMENT_SUFFIX,
    SPEC_TAG,
    kubernetes_minor,
)

NODEGROUP_CHANGES = ("fail", "roll")
SPEC_VERSION = "v1"
TAG_LIMIT = 256
# spec tag key -> ClusterConfig field, in the order messages list them
SPEC_FIELDS = (
    ("it", "instanceTypes"),
    ("ami", "amiFamily"),
    ("vs", "volumeSize"),
    ("vt", "volumeType"),
    ("enc", "volumeEncrypted"),
    ("imds1off", "disableIMDSv1"),
    ("spot", "spot"),
    ("priv", "privateNetworking"),
    ("azs", "availabilityZones"),
    ("labels", "labels"),
    ("taints", "taints"),
    ("iam", "iam"),
)
FIELD_NAMES = dict(SPEC_FIELDS)
HASHED_FIELDS = ("azs", "labels", "taints", "iam")
AMI_TYPE_PREFIXES = (("AL2023_", "AmazonLinux2023"), ("AL2_", "AmazonLinux2"), ("BOTTLEROCKET_", "Bottlerocket"))


def _digest(value, length=8):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()[:length]


def _bool(value):
    return "true" if value else "false"


def nodegroup_spec(ng):
    """The immutable fields of a managed node group as ``{tag key: string}``."""
    types = ng.get("instanceTypes") or [ng.get("instanceType")]
    spec = {
        "it": "+".join(sorted(types)),
        "ami": ng.get("amiFamily"),
        "vs": str(ng.get("volumeSize")),
        "vt": ng.get("volumeType"),
        "enc": _bool(ng.get("volumeEncrypted")),
        "imds1off": _bool(ng.get("disableIMDSv1")),
        "spot": _bool(ng.get("spot", False)),
        "priv": _bool(ng.get("privateNetworking", False)),
    }
    for key, field in (("azs", "availabilityZones"), ("labels", "labels"), ("taints", "taints"), ("iam", "iam")):
        value = ng.get(field)
        if key == "azs" and value:
            value = sorted(value)
        spec[key] = _digest(value) if value else "-"
    return spec


def encode_spec(spec):
    """The tag value: ``v1 key=value ...`` (only characters AWS tags accept)."""
    text = " ".join([SPEC_VERSION] + [f"{key}={spec[key]}" for key in sorted(spec)])
    if len(text) > TAG_LIMIT:
        spec = dict(spec, it="sha-" + _digest(spec["it"]))
        text = " ".join([SPEC_VERSION] + [f"{key}={spec[key]}" for key in sorted(spec)])
    return text


def decode_spec(text):
    """``{tag key: string}`` from a tag value, or None when it is not one of ours."""
    parts = (text or "").split()
    if not parts or parts[0] != SPEC_VERSION:
        return None
    spec = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            spec[key] = value
    return spec


def spec_hash(spec):
    return _digest(encode_spec(spec))


def replacement_name(name, spec):
    return f"{name}-{spec_hash(spec)}"


def _ami_family(image_id):
    for prefix, family in AMI_TYPE_PREFIXES:
        if (image_id or "").startswith(prefix):
            return family
    return None


def live_nodegroups(nodegroups, stacks):
    """``{name: {...}}`` from ``eksctl get nodegroup -o json`` and ``utils describe-stacks -o json``."""
    tags_by_group = {}
    for stack in stacks or []:
        tags = {tag.get("Key"): tag.get("Value") for tag in stack.get("Tags") or []}
        group = tags.get("alpha.eksctl.io/nodegroup-name")
        if group and stack.get("StackStatus") != "DELETE_COMPLETE":
            tags_by_group[group] = tags
    groups = {}
    for item in nodegroups or []:
        name = item.get("Name")
        types = sorted(t for t in (item.get("InstanceType") or "").split(",") if t and t != "-")
        reported = {}
        if types:
            reported["it"] = "+".join(types)
        family = _ami_family(item.get("ImageID"))
        if family:
            reported["ami"] = family
        tagged = decode_spec((tags_by_group.get(name) or {}).get(SPEC_TAG))
        spec = dict(tagged or {})
        spec.update(reported)  # what eksctl reports wins over what was recorded
        groups[name] = {
            "name": name,
            "status": item.get("Status"),
            "type": item.get("Type") or "managed",
            "minSize": item.get("MinSize"),
            "maxSize": item.get("MaxSize"),
            "desiredCapacity": item.get("DesiredCapacity"),
            "version": item.get("Version"),
            "spec": spec,
            "spec_recorded": tagged is not None,
        }
    return groups


def spec_changes(desired, live_group):
    """``{field: {from, to}}`` for fields known on both sides that differ."""
    changes = {}
    if live_group.get("type", "managed") != "managed":
        changes["nodeGroupType"] = {"from": live_group["type"], "to": "managed"}
    for key, field in SPEC_FIELDS:
        if key not in live_group["spec"] or key not in desired:
            continue
        before, after = live_group["spec"][key], desired[key]
        if key == "it" and before.startswith("sha-") != after.startswith("sha-"):
            after = "sha-" + _digest(after) if before.startswith("sha-") else after
        if before != after:
            if key in HASHED_FIELDS:
                changes[field] = {"from": f"(recorded {before})", "to": f"(config {after})"}
            else:
                changes[field] = {"from": before.replace("+", ","), "to": after.replace("+", ",")}
    return changes


def _belongs_to(live_name, name):
    return live_name == name or (
        live_name.startswith(name + "-") and REPLACEMENT_SUFFIX.search(live_name) and len(live_name) == len(name) + 9
    )


def sizes(ng):
    return {"minSize": ng["minSize"], "maxSize": ng["maxSize"], "desiredCapacity": ng["desiredCapacity"]}


def plan_nodegroups(desired_groups, live, target_version):
    """Node group actions; ``immutable`` lists groups whose immutable fields changed."""
    result = {"create": [], "scale": [], "upgrade": [], "roll": [], "delete": [], "immutable": [], "warnings": []}
    effective = {}
    claimed = set()
    for ng in desired_groups:
        name = ng["name"]
        spec = nodegroup_spec(ng)
        candidates = sorted(n for n in live if _belongs_to(n, name))
        claimed.update(candidates)
        same = [n for n in candidates if not spec_changes(spec, live[n])]
        if same:
            preferred = replacement_name(name, spec)
            current = preferred if preferred in same else (name if name in same else same[0])
            effective[name] = current
            result["delete"].extend(n for n in candidates if n != current)
            group = live[current]
            if not group["spec_recorded"]:
                result["warnings"].append(
                    f"node group {current} has no {SPEC_TAG} tag (created outside this collection): "
                    "only its instance types and AMI family could be compared with the configuration"
                )
            wanted = {"minSize": ng["minSize"], "maxSize": ng["maxSize"], "desiredCapacity": ng["desiredCapacity"]}
            if sizes(group) != wanted:
                result["scale"].append({"name": current, "from": sizes(group), "to": wanted})
            live_minor = kubernetes_minor(group.get("version"))
            if live_minor is not None and live_minor < kubernetes_minor(target_version):
                result["upgrade"].append({"name": current, "from": group["version"], "to": target_version})
        elif candidates:
            old = candidates[0] if len(candidates) == 1 else (name if name in candidates else candidates[-1])
            change = {
                "name": name,
                "live": candidates,
                "replacement": replacement_name(name, spec),
                "fields": spec_changes(spec, live[old]),
            }
            result["immutable"].append(change)
            result["roll"].append(change)
            effective[name] = change["replacement"]
        else:
            effective[name] = name
            result["create"].append(name)
    result["delete"].extend(sorted(n for n in live if n not in claimed))
    return result, effective


def immutable_error(changes, source):
    lines = []
    for change in changes:
        fields = ", ".join(
            f"{field} {diff['from']} -> {diff['to']}" for field, diff in sorted(change["fields"].items())
        )
        lines.append(
            f"node group {change['name']!r} (live: {', '.join(change['live'])}) cannot change in place: "
            f"{fields or 'its recorded spec differs'}."
        )
    name = changes[0]["name"]
    replacement = changes[0]["replacement"]
    return EksError(
        "\n".join(lines)
        + f"\nNode groups are immutable; nothing was changed. Fix: either rename the group in {source} "
        f"(for example {name} -> {name}-2: the new group is created first, then the old one is drained and deleted), "
        "or run with nodegroup_changes=roll (role variable eks_cluster_nodegroup_changes: roll) to create "
        f"{replacement}, wait for it, then drain and delete the old group.",
        kind="immutable",
        immutable=changes,
    )


def check_skew(ng_plan, names, target, live_version):
    """Kept node groups may lag the control plane by at most three minor versions."""
    if not ng_plan["upgrade"] or kubernetes_minor(live_version) == kubernetes_minor(target):
        return
    kept = set(names.values())
    for item in ng_plan["upgrade"]:
        if item["name"] in kept and kubernetes_minor(target) - kubernetes_minor(item["from"]) > 3:
            raise EksError(
                f"node group {item['name']} runs Kubernetes {item['from']}; the control plane cannot move to {target} "
                "while nodes lag more than three minor versions. Fix: upgrade in smaller steps (set the version to "
                f"1.{kubernetes_minor(item['from']) + 3} first, run, then continue).",
                kind="invalid",
            )


def _readable(key, value):
    if key == "it":
        return value.replace("+", ",")
    if value in ("true", "false"):
        return value == "true"
    if key == "vs" and value.isdigit():
        return int(value)
    return value


def describe_spec(spec):
    """The spec with ClusterConfig field names and readable values (for the diff)."""
    return {FIELD_NAMES.get(key, key): _readable(key, value) for key, value in spec.items()}


def effective_config(config, effective_names):
    """The config handed to eksctl: node groups under their live (or replacement) names, spec-tagged."""
    result = copy.deepcopy(config)
    for ng in result["managedNodeGroups"]:
        spec = nodegroup_spec(ng)
        ng["name"] = effective_names.get(ng["name"], ng["name"])
        tags = dict(ng.get("tags") or {})
        tags[SPEC_TAG] = encode_spec(spec)
        ng["tags"] = tags
    return result
