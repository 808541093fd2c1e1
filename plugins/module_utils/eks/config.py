# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's eksctl ClusterConfig: load, apply an environment's overrides, render and write.

``infra/cluster.yaml`` is an ``eksctl.io/v1alpha5`` ClusterConfig without the per-environment name
and region; :func:`render` fills them (and an optional version override) and adds the access
entries of ``infra/cluster_admins`` and ``infra/cluster_users``. Validation (every field the
platform uses, nothing else) is :mod:`.validation`'s.
"""

from __future__ import annotations

import copy
import os
import re

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError
from ansible_collections.biomage.iac.plugins.module_utils.eks.validation import (
    ADMIN_POLICY,
    API_VERSION,
    VIEW_POLICY,
    validate_version,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

IAM_USER_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")


def partition_for(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def policy_arn(partition, name):
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


def user_arn(partition, account_id, name):
    return f"arn:{partition}:iam::{account_id}:user/{name}"


def parse_config(text, source):
    """Parse YAML text; a syntax error names the file, line and column."""
    if not HAS_YAML:
        raise EksError(f"PyYAML is required to read {source}. Fix: install PyYAML.", kind="invalid")
    try:
        data = safe_yaml.load(text, source)
    except safe_yaml.InputLimitError as exc:
        raise EksError(str(exc), kind="invalid") from exc
    except safe_yaml.YamlError as exc:
        exc = exc.__cause__ or exc
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise EksError(
            "{}{} is not valid YAML: {}. Fix: correct the YAML syntax.".format(
                source, where, getattr(exc, "problem", None) or exc
            ),
            kind="invalid",
        ) from exc
    if not isinstance(data, dict):
        raise EksError(
            f"{source} must hold one eksctl ClusterConfig mapping (apiVersion: {API_VERSION}, kind: ClusterConfig). "
            "Fix: restore the file.",
            kind="invalid",
        )
    return data


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise EksError(
            f"cannot read the cluster configuration {path}: {exc.strerror or exc}. "
            "Fix: check the path (module option config_file).",
            kind="invalid",
        ) from exc
    return parse_config(text, path)


def write_config(path, config, source):
    """Write a rendered ClusterConfig for eksctl (owner-only, marked as generated from ``source``); its path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"# rendered by biomage.iac.eksctl_cluster from {source}; do not edit\n")
        yaml.safe_dump(config, handle, default_flow_style=False, sort_keys=False)
    return path


def apply_overrides(config, source, version=None, addon_versions=None):
    """Apply one environment's overrides (Kubernetes version, add-on versions) before validation."""
    if version and isinstance(config.get("metadata"), dict):
        config["metadata"]["version"] = version
    addons = config.get("addons") if isinstance(config.get("addons"), list) else []
    known = {a.get("name"): a for a in addons if isinstance(a, dict)}
    unknown = sorted(set(addon_versions or {}) - set(known))
    if unknown:
        raise EksError(
            f"add-on version overrides name {', '.join(unknown)}, which {source} does not list. Fix: override only "
            f"add-ons of the file ({', '.join(sorted(n for n in known if n))}).",
            kind="invalid",
        )
    for name, wanted in (addon_versions or {}).items():
        known[name]["version"] = wanted
    return config


def read_principals(path):
    """IAM user names from a file: one a line, ``#`` comments and blank lines ignored."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise EksError(f"cannot read {path}: {exc.strerror or exc}. Fix: check the path.", kind="invalid") from exc
    names = []
    errors = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not IAM_USER_NAME.match(line):
            errors.append(
                f"{path} line {number}: {line!r} is not an IAM user name. Fix: write one IAM user name per line "
                "(letters, digits and +=,.@_-), comments after #."
            )
        elif line in names:
            errors.append(f"{path} line {number}: {line!r} is listed twice. Fix: keep one line.")
        else:
            names.append(line)
    if errors:
        raise EksError("\n".join(errors), kind="invalid", problems=errors)
    return names


def render(config, name, region, *, version=None, admins=None, users=None, account_id=None, sources=None):
    """The desired ClusterConfig for one environment (a new dict; ``config`` is not modified).

    ``admins``/``users`` are IAM user names; they become access entries with the cluster admin and
    view policies. ``sources`` names the files they came from, for error messages.
    """
    sources = sources or {}
    desired = copy.deepcopy(config)
    metadata = desired.setdefault("metadata", {})
    metadata["name"] = name
    metadata["region"] = region
    if version:
        metadata["version"] = validate_version(version, sources.get("version", "the version override"))
    partition = partition_for(region)
    access = desired.setdefault("accessConfig", {})
    entries = access.setdefault("accessEntries", [])
    declared = {entry["principalARN"]: "accessConfig.accessEntries" for entry in entries}
    admins = list(admins or [])
    users = list(users or [])
    if (admins or users) and not (account_id and re.match(r"^\d{12}$", str(account_id))):
        raise EksError(
            "the AWS account id is needed to turn cluster_admins/cluster_users into access entries, "
            f"got {account_id!r}. Fix: pass account_id (the role reads it from STS).",
            kind="invalid",
        )
    problems = []
    for names, policy, origin in (
        (admins, ADMIN_POLICY, sources.get("admins", "cluster_admins")),
        (users, VIEW_POLICY, sources.get("users", "cluster_users")),
    ):
        for user in names:
            arn = user_arn(partition, account_id, user)
            if arn in declared:
                problems.append(
                    f"{origin}: IAM user {user!r} is also listed in {declared[arn]}. "
                    "Fix: list each IAM user in one place only."
                )
                continue
            declared[arn] = origin
            entries.append(
                {
                    "principalARN": arn,
                    "accessPolicies": [
                        {"policyARN": policy_arn(partition, policy), "accessScope": {"type": "cluster"}}
                    ],
                }
            )
    if problems:
        raise EksError("\n".join(problems), kind="invalid", problems=problems)
    return desired
