# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository's ``.ci.yaml`` (README "CI privileges"), read and validated.

It holds ``ci-policies:``, a list of ``{PolicyName, PolicyDocument}`` in CloudFormation syntax
(``!Sub`` works), and optionally ``container-repository: true`` (README "Images": an ECR repository
named after the repository, which the repository's CI may push to). :func:`parse_file` returns the
validated content or raises :class:`CiConfigError` with every problem at once, each naming
``<owner>/<repo>:.ci.yaml``, the field and the fix. No GitHub or AWS calls here.
"""

from __future__ import annotations

import fnmatch
import json
import re

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import TemplateError, load_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

CI_FILE = ".ci.yaml"
# a .ci.yaml holds a few IAM policies (IAM caps a role's inline policies at 10,240 characters)
MAX_BYTES = 256 * 1024
TOP_KEY = "ci-policies"
REPOSITORY_KEY = "container-repository"
# the inline policy biomage.iac adds for the container repository (a name the file may not use)
REPOSITORY_POLICY = "container-repository-push"
# ECR repository names: lowercase path components of letters and digits joined by . _ -
ECR_NAME = re.compile(r"^(?=.{2,256}$)[a-z0-9]+(?:[._-][a-z0-9]+)*$")
POLICY_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,128}$")
POLICY_VERSION = "2012-10-17"
# IAM's limit on the aggregate size of a role's inline policies (counted here before substitution)
MAX_INLINE_POLICY_CHARS = 10240
ACTION = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$")
STATEMENT_KEYS = ("Sid", "Effect", "Action", "Resource", "Condition")
INTRINSICS = ("Ref", "Fn::Sub", "Fn::Join", "Fn::ImportValue", "Fn::GetAtt", "Fn::If", "Fn::Select", "Fn::Split")


class CiConfigError(BiomageError):
    """One or more invalid ``.ci.yaml`` files (or CI privilege settings); ``problems`` (also in
    ``details``) holds every message."""

    def __init__(self, problems):
        problems = list(problems)
        super().__init__(f"{len(problems)} problem(s) in CI privileges:\n" + "\n".join(problems), problems=problems)
        self.problems = problems


def source_of(owner, repo, path=CI_FILE):
    return f"{owner}/{repo}:{path}"


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_intrinsic(value):
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in INTRINSICS


class _Problems:
    def __init__(self, source):
        self.source = source
        self.items = []

    def add(self, field, message, fix):
        where = f"{self.source}: {field}" if field else self.source
        self.items.append(f"{where}: {message}. Fix: {fix}.")


def parse(text, owner, repo, path=CI_FILE):
    """The validated ``ci-policies`` of one repository (intrinsics in their long form).

    Raises CiConfigError with every problem found.
    """
    return parse_file(text, owner, repo, path)["policies"]


def parse_file(text, owner, repo, path=CI_FILE):
    """The validated file: ``{policies, container_repository}`` (the ECR repository name or None).

    Raises CiConfigError with every problem found.
    """
    source = source_of(owner, repo, path)
    problems = _Problems(source)
    size = len(text.encode("utf-8")) if isinstance(text, str) else len(text or b"")
    if size > MAX_BYTES:
        raise CiConfigError(
            [f"{source}: {size} bytes exceeds the limit of {MAX_BYTES} bytes. Fix: keep only the CI policies in it."]
        )
    try:
        data = load_yaml(text, source, what="file")
    except safe_yaml.InputLimitError as exc:
        raise CiConfigError([str(exc)]) from exc
    except TemplateError as exc:
        raise CiConfigError([f"{exc}. Fix: correct the YAML (CloudFormation syntax: !Sub and !Ref work)."]) from exc
    if not isinstance(data, dict) or not ({TOP_KEY, REPOSITORY_KEY} & set(data)):
        problems.add(
            "",
            f"the file must be a mapping with a '{TOP_KEY}' list (and/or '{REPOSITORY_KEY}: true')",
            f"write '{TOP_KEY}:' with a list of {{PolicyName, PolicyDocument}}, or delete the file if the "
            "repository's CI needs no AWS access",
        )
        raise CiConfigError(problems.items)
    for key in sorted(set(data) - {TOP_KEY, REPOSITORY_KEY}, key=str):
        problems.add(str(key), "unknown key", f"remove it; only '{TOP_KEY}' and '{REPOSITORY_KEY}' are read")
    repository = _container_repository(data.get(REPOSITORY_KEY, False), repo, problems)
    policies = data.get(TOP_KEY)
    if policies is None and repository:
        policies = []
    elif not isinstance(policies, list) or not policies:
        problems.add(
            TOP_KEY,
            f"must be a non-empty list (found {type(policies).__name__ if policies is not None else 'nothing'})",
            "list at least one {PolicyName, PolicyDocument}, or delete .ci.yaml if CI needs no AWS access",
        )
        raise CiConfigError(problems.items)
    names = {REPOSITORY_POLICY: REPOSITORY_KEY} if repository else {}
    for index, policy in enumerate(policies):
        _check_policy(policy, f"{TOP_KEY}[{index}]", names, problems)
    size = len(json.dumps(policies, separators=(",", ":"), default=str))
    if size > MAX_INLINE_POLICY_CHARS:
        problems.add(
            TOP_KEY,
            f"the policies take about {size} characters; IAM allows {MAX_INLINE_POLICY_CHARS} of inline policies "
            "per role",
            "merge statements, use wildcards within one service on named resources, or drop unused actions",
        )
    if problems.items:
        raise CiConfigError(problems.items)
    return {
        "policies": [{"PolicyName": p["PolicyName"], "PolicyDocument": p["PolicyDocument"]} for p in policies],
        "container_repository": repository,
    }


def _container_repository(value, repo, problems):
    """The ECR repository name ``container-repository: true`` asks for, or None."""
    if value is False:
        return None
    if value is not True:
        problems.add(
            REPOSITORY_KEY, f"is {value!r}", "write true (an ECR repository named after the repository) or remove it"
        )
        return None
    name = repo.lower()
    if not ECR_NAME.match(name):
        problems.add(
            REPOSITORY_KEY,
            f"the repository name {repo!r} is not a valid ECR repository name ({name!r})",
            "ECR names are lowercase letters and digits joined by '.', '_' or '-': create the ECR repository "
            "in cf/ instead and grant it in ci-policies",
        )
        return None
    return name


def _check_policy(policy, where, names, problems):
    if not isinstance(policy, dict):
        problems.add(where, "a policy must be a mapping", "write {PolicyName: <name>, PolicyDocument: {...}}")
        return
    for key in sorted(set(policy) - {"PolicyName", "PolicyDocument"}, key=str):
        problems.add(f"{where}.{key}", "unknown key", "each policy has only PolicyName and PolicyDocument")
    name = policy.get("PolicyName")
    if not isinstance(name, str) or not POLICY_NAME.match(name):
        problems.add(
            f"{where}.PolicyName",
            f"{name!r} is not a valid inline policy name",
            "use 1-128 characters of letters, digits and +=,.@_-",
        )
    elif name in names:
        problems.add(
            f"{where}.PolicyName",
            f"{name!r} is already the name of {names[name]}",
            "give every policy a unique PolicyName (IAM keeps only one inline policy per name)",
        )
    else:
        names[name] = where
    document = policy.get("PolicyDocument")
    where = f"{where}.PolicyDocument"
    if not isinstance(document, dict):
        problems.add(where, "missing or not a mapping", "write {Version: '2012-10-17', Statement: [...]}")
        return
    for key in sorted(set(document) - {"Version", "Statement", "Id"}, key=str):
        problems.add(f"{where}.{key}", "unknown key", "a policy document has Version, Statement (and optionally Id)")
    if document.get("Version") != POLICY_VERSION:
        problems.add(
            f"{where}.Version",
            f"is {document.get('Version')!r}",
            f"set Version: '{POLICY_VERSION}' (quoted; policy variables need it)",
        )
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        problems.add(f"{where}.Statement", "missing or empty", "list at least one statement")
        return
    for index, statement in enumerate(statements):
        _check_statement(statement, f"{where}.Statement[{index}]", problems)


# keys a statement of a role's identity policy must not have: (message, fix) by key
REFUSED_STATEMENT_KEYS = {
    key: (
        f"{key} does not belong in a role's identity policy (the role itself is the principal)",
        f"remove {key}; who may assume the role is decided by biomage.iac (this repository's GitHub Actions)",
    )
    for key in ("Principal", "NotPrincipal")
} | {
    key: (f"{key} grants everything except what it lists", f"list what CI needs with {key[3:]} instead")
    for key in ("NotAction", "NotResource")
}


def _check_statement(statement, where, problems):
    if not isinstance(statement, dict):
        problems.add(where, "a statement must be a mapping", "write {Effect: Allow, Action: [...], Resource: ...}")
        return
    for key, (message, fix) in REFUSED_STATEMENT_KEYS.items():
        if key in statement:
            problems.add(f"{where}.{key}", message, fix)
    for key in sorted(set(statement) - set(STATEMENT_KEYS) - set(REFUSED_STATEMENT_KEYS)):
        problems.add(f"{where}.{key}", "unknown key", f"a statement has {', '.join(STATEMENT_KEYS)}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        problems.add(f"{where}.Effect", f"is {effect!r}", "set Effect: Allow (or Deny)")
    if "Condition" in statement and not isinstance(statement["Condition"], dict):
        problems.add(f"{where}.Condition", "must be a mapping", "write Condition: {<operator>: {<key>: <value>}}")
    actions = _checked_actions(statement, where, problems)
    resources = _checked_resources(statement, where, problems)
    if effect == "Allow" and "*" in resources:
        _check_any_resource(actions, where, problems)


def _checked_actions(statement, where, problems):
    """The statement's well-formed actions, lower-cased; the others are problems."""
    actions = _as_list(statement.get("Action"))
    if not actions and "NotAction" not in statement:
        problems.add(f"{where}.Action", "missing", "list the actions CI needs, e.g. [ecr:PutImage]")
    lowered = []
    for action in actions:
        if not isinstance(action, str):
            problems.add(f"{where}.Action", f"{action!r} is not a string", "write actions as <service>:<action>")
        elif action in ("*", "*:*"):
            problems.add(
                f"{where}.Action",
                f'Action "{action}" names every action of every service',
                "list the actions CI needs, e.g. ecr:PutImage, s3:PutObject",
            )
        elif not ACTION.match(action):
            problems.add(f"{where}.Action", f"{action!r} is not <service>:<action>", "write e.g. ecr:PutImage")
        else:
            lowered.append(action.lower())
    return lowered


def _checked_resources(statement, where, problems):
    """The statement's resources (ARN strings or intrinsics); the others are problems."""
    resources = _as_list(statement.get("Resource"))
    if not resources and "NotResource" not in statement:
        problems.add(
            f"{where}.Resource",
            "missing",
            "name the ARNs, e.g. !Sub 'arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/<name>'",
        )
    for resource in resources:
        if not isinstance(resource, str) and not _is_intrinsic(resource):
            problems.add(f"{where}.Resource", f"{resource!r} is not an ARN", "write an ARN string or !Sub '<arn>'")
    return resources


def _check_any_resource(actions, where, problems):
    """Actions allowed on Resource "*": no service-wide wildcard, nothing that escalates privileges."""
    if any(a.endswith("*") and a.split(":", 1)[1] == "*" for a in actions):
        problems.add(
            where,
            'a service-wide wildcard action ("<service>:*") on Resource "*"',
            "list the actions CI needs and scope Resource to the ARNs it works on",
        )
    escalating = sorted(
        {a for a in actions if a.startswith("iam:") and ("*" in a or "?" in a or a == "iam:passrole")}
        | {a for a in actions if a.startswith("sts:") and _may_match(a, ("sts:assumerole", "sts:assumerolewith*"))}
    )
    if escalating:
        problems.add(
            where,
            f'{", ".join(escalating)} on Resource "*" would let CI take any role or change IAM (privilege escalation)',
            "scope Resource to the exact role ARNs CI may pass or assume, or drop the action",
        )


def _may_match(action_pattern, names):
    """True when the (possibly wildcard) action can denote one of ``names`` (lower case, globs)."""
    return any(fnmatch.fnmatchcase(name, action_pattern) or fnmatch.fnmatchcase(action_pattern, name) for name in names)
