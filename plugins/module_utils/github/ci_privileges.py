# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CI privileges (README "CI privileges"): a repository's ``.ci.yaml`` becomes one IAM role that only
that repository's GitHub Actions runs can assume, through GitHub's OIDC provider (no long-lived keys).

``.ci.yaml`` holds ``ci-policies:``, a list of ``{PolicyName, PolicyDocument}`` in CloudFormation
syntax (``!Sub`` works), and optionally ``container-repository: true`` (README "Images": the
repository's images go to an ECR repository of the same name; it is declared in the same stack,
kept when the stack is deleted, and the role may push to it). ``parse`` validates it and returns
every problem at once, each naming ``<owner>/<repo>:.ci.yaml``, the field and the fix; ``render`` turns it into the
CloudFormation template of the repository's role; ``collect`` reads every repository of an
organisation through the GitHub API. No AWS calls here.
"""

from __future__ import annotations

import fnmatch
import json
import re
from urllib.parse import quote

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.rules import ENVIRONMENTS, check_template
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import TemplateError, load_yaml

CI_FILE = ".ci.yaml"
TOP_KEY = "ci-policies"
REPOSITORY_KEY = "container-repository"
REPOSITORY_ID = "ContainerRepository"
REPOSITORY_POLICY = "container-repository-push"
# ECR repository names: lowercase path components of letters and digits joined by . _ -
ECR_NAME = re.compile(r"^(?=.{2,256}$)[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ECR_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]
# untagged layers of failed or superseded pushes; tagged images (<ref>-<sha>) are immutable and kept
ECR_UNTAGGED_DAYS = 14
POLICY_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,128}$")
POLICY_VERSION = "2012-10-17"
OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_AUDIENCE = "sts.amazonaws.com"
OIDC_PROVIDER_ARN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/" + OIDC_HOST
MAX_SESSION_DURATION = 3600
# IAM's limit on the aggregate size of a role's inline policies (counted here before substitution)
MAX_INLINE_POLICY_CHARS = 10240
ROLE_PATH = "/biomage/ci/"
ROLE_ID = "Role"
POLICIES_LOCATION = f"Resources.{ROLE_ID}.Properties.Policies"
# GitHub's owner and repository names (the OIDC sub claim uses them verbatim)
OWNER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPO_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# a branch or environment name as it appears in the sub claim: no wildcard, no ':'
REF_NAME = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
ACTION = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$")
STATEMENT_KEYS = ("Sid", "Effect", "Action", "Resource", "Condition")
INTRINSICS = ("Ref", "Fn::Sub", "Fn::Join", "Fn::ImportValue", "Fn::GetAtt", "Fn::If", "Fn::Select", "Fn::Split")


class CiConfigError(Exception):
    """One or more invalid ``.ci.yaml`` files; ``problems`` holds every message."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in CI privileges:\n" + "\n".join(self.problems))


def source_of(owner, repo, path=CI_FILE):
    return f"{owner}/{repo}:{path}"


def template_label(owner, repo, path=CI_FILE):
    """How the rendered template is named in messages and in the stack's ``biomage:template`` tag."""
    return f"github.com/{owner}/{repo}/{path}"


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
    try:
        data = load_yaml(text, source, what="file")
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


def _check_statement(statement, where, problems):
    if not isinstance(statement, dict):
        problems.add(where, "a statement must be a mapping", "write {Effect: Allow, Action: [...], Resource: ...}")
        return
    for key in ("Principal", "NotPrincipal"):
        if key in statement:
            problems.add(
                f"{where}.{key}",
                f"{key} does not belong in a role's identity policy (the role itself is the principal)",
                f"remove {key}; who may assume the role is decided by biomage.iac (this repository's GitHub Actions)",
            )
    for key in ("NotAction", "NotResource"):
        if key in statement:
            problems.add(
                f"{where}.{key}",
                f"{key} grants everything except what it lists",
                f"list what CI needs with {key[3:]} instead",
            )
    for key in sorted(set(statement) - set(STATEMENT_KEYS) - {"Principal", "NotPrincipal", "NotAction", "NotResource"}):
        problems.add(f"{where}.{key}", "unknown key", f"a statement has {', '.join(STATEMENT_KEYS)}")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        problems.add(f"{where}.Effect", f"is {effect!r}", "set Effect: Allow (or Deny)")
    if "Condition" in statement and not isinstance(statement["Condition"], dict):
        problems.add(f"{where}.Condition", "must be a mapping", "write Condition: {<operator>: {<key>: <value>}}")

    actions = _as_list(statement.get("Action"))
    if not actions and "NotAction" not in statement:
        problems.add(f"{where}.Action", "missing", "list the actions CI needs, e.g. [ecr:PutImage]")
    lowered = []
    for action in actions:
        if not isinstance(action, str):
            problems.add(f"{where}.Action", f"{action!r} is not a string", "write actions as <service>:<action>")
            continue
        if action in ("*", "*:*"):
            problems.add(
                f"{where}.Action",
                f'Action "{action}" names every action of every service',
                "list the actions CI needs, e.g. ecr:PutImage, s3:PutObject",
            )
            continue
        if not ACTION.match(action):
            problems.add(f"{where}.Action", f"{action!r} is not <service>:<action>", "write e.g. ecr:PutImage")
            continue
        lowered.append(action.lower())

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
    if effect != "Allow" or "*" not in resources:
        return
    if any(a.endswith("*") and a.split(":", 1)[1] == "*" for a in lowered):
        problems.add(
            where,
            'a service-wide wildcard action ("<service>:*") on Resource "*"',
            "list the actions CI needs and scope Resource to the ARNs it works on",
        )
    escalating = sorted(
        {a for a in lowered if a.startswith("iam:") and ("*" in a or "?" in a or a == "iam:passrole")}
        | {a for a in lowered if a.startswith("sts:") and _may_match(a, ("sts:assumerole", "sts:assumerolewith*"))}
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


def check_ref_names(names, kind):
    """Problems with branch or environment names given by the operator."""
    return [
        f"{kind} {name!r} is not a plain name (letters, digits, ._/-; no wildcard or ':'). "
        f"Fix: give exact {kind} names; a wildcard would let other refs assume the role."
        for name in names
        if not isinstance(name, str) or not REF_NAME.match(name)
    ]


def subjects(owner, repo, branches, environments=()):
    """The exact ``sub`` claims of GitHub's OIDC tokens that may assume the role."""
    if not OWNER_NAME.match(owner or "") or not REPO_NAME.match(repo or ""):
        raise CiConfigError([f"{owner}/{repo}: not a GitHub owner/repository name. Fix: check ci_privileges_owner."])
    problems = check_ref_names(branches, "branch") + check_ref_names(environments, "environment")
    if not branches and not environments:
        problems.append(f"{owner}/{repo}: no branch and no environment may assume the role. Fix: give a branch.")
    if problems:
        raise CiConfigError(problems)
    found = [f"repo:{owner}/{repo}:ref:refs/heads/{b}" for b in branches]
    found += [f"repo:{owner}/{repo}:environment:{e}" for e in environments]
    return sorted(set(found))


def trust_policy(claims):
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "GitHubActions",
                "Effect": "Allow",
                "Principal": {"Federated": {"Fn::Sub": OIDC_PROVIDER_ARN}},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{OIDC_HOST}:aud": OIDC_AUDIENCE, f"{OIDC_HOST}:sub": list(claims)},
                },
            }
        ],
    }


def render(owner, repo, policies, claims, container_repository=None):
    """The CloudFormation template (a dict) of the repository's CI role (and its ECR repository)."""
    full_name = f"{owner}/{repo}"
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"GitHub Actions role of {full_name}, generated by biomage.iac from the repository's "
        f"{CI_FILE} (edit that file, not this stack).",
        "Parameters": {
            "Environment": {
                "Type": "String",
                "AllowedValues": list(ENVIRONMENTS),
                "Description": "The environment (or account) label of the inventory that converged this stack.",
            }
        },
        "Resources": {
            ROLE_ID: {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Description": {"Fn::Sub": f"GitHub Actions of {full_name} ({CI_FILE}), ${{Environment}}"},
                    "Path": ROLE_PATH,
                    "MaxSessionDuration": MAX_SESSION_DURATION,
                    "AssumeRolePolicyDocument": trust_policy(claims),
                    "Policies": policies,
                    "Tags": [{"Key": "biomage:github-repository", "Value": full_name}],
                },
            }
        },
        "Outputs": {
            "RoleArn": {
                "Description": f"The role GitHub Actions of {full_name} assume (repository variable AWS_ROLE_ARN).",
                "Value": {"Fn::GetAtt": [ROLE_ID, "Arn"]},
            }
        },
    }
    if container_repository:
        _add_container_repository(template, full_name, container_repository)
    return template


def _add_container_repository(template, full_name, name):
    """The ECR repository ``name``: kept when the stack goes (images are not lost with a .ci.yaml),
    immutable tags, scanned on push, untagged layers expired; the role may push and pull it."""
    template["Resources"][REPOSITORY_ID] = {
        "Type": "AWS::ECR::Repository",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "RepositoryName": name,
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
            "LifecyclePolicy": {
                "LifecyclePolicyText": json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": f"expire untagged images after {ECR_UNTAGGED_DAYS} days",
                                "selection": {
                                    "tagStatus": "untagged",
                                    "countType": "sinceImagePushed",
                                    "countUnit": "days",
                                    "countNumber": ECR_UNTAGGED_DAYS,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    },
                    sort_keys=True,
                )
            },
            "Tags": [{"Key": "biomage:github-repository", "Value": full_name}],
        },
    }
    template["Resources"][ROLE_ID]["Properties"]["Policies"] = [
        *template["Resources"][ROLE_ID]["Properties"]["Policies"],
        {
            "PolicyName": REPOSITORY_POLICY,
            "PolicyDocument": {
                "Version": POLICY_VERSION,
                "Statement": [
                    {
                        "Sid": "PushAndPull",
                        "Effect": "Allow",
                        "Action": ECR_PUSH_ACTIONS,
                        "Resource": {"Fn::GetAtt": [REPOSITORY_ID, "Arn"]},
                    },
                    {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                ],
            },
        },
    ]
    template["Outputs"]["RepositoryUri"] = {
        "Description": f"The ECR repository the CI of {full_name} pushes its images to.",
        "Value": {"Fn::GetAtt": [REPOSITORY_ID, "RepositoryUri"]},
    }


def dump(template):
    """The template text sent to CloudFormation (JSON: no YAML tags, stable for diffs)."""
    return json.dumps(template, indent=2)


def check_rendered(template, owner, repo, path=CI_FILE):
    """Apply the repository's template rules to the rendered template; findings in the policies are
    reported against the ``.ci.yaml`` field they come from."""
    problems = []
    source = source_of(owner, repo, path)
    for finding in check_template(template, template_label(owner, repo, path)):
        location = finding.location
        if location.startswith(POLICIES_LOCATION + "["):
            location = TOP_KEY + location[len(POLICIES_LOCATION) :]
        problems.append(f"{source}: {location}: [{finding.rule} {finding.name}] {finding.message}. Fix: {finding.fix}.")
    return problems


def build(text, owner, repo, branches, environments=(), path=CI_FILE):
    """Validate one ``.ci.yaml`` and render its role: ``{policies, subjects, template, template_body}``."""
    parsed = parse_file(text, owner, repo, path)
    policies = parsed["policies"]
    claims = subjects(owner, repo, branches, environments)
    template = render(owner, repo, policies, claims, parsed["container_repository"])
    problems = check_rendered(template, owner, repo, path)
    if problems:
        raise CiConfigError(problems)
    return {
        "policies": policies,
        "container_repository": parsed["container_repository"],
        "subjects": claims,
        "template": template,
        "template_body": dump(template),
    }


def collect(client, owner, branches=(), environments=(), path=CI_FILE, include_archived=False):
    """Every repository of ``owner`` with its CI privileges, validated; raise CiConfigError with every
    problem of every repository (before anything is changed anywhere).

    A repository without the file (404) has no CI privileges. ``branches`` empty means the
    repository's default branch.
    """
    repos = client.paginate("/orgs/{}/repos".format(quote(owner, safe="")))
    results, problems = [], []
    for entry in sorted(repos, key=lambda r: r["name"].lower()):
        name = entry["name"]
        item = {
            "name": name,
            "full_name": entry.get("full_name") or f"{owner}/{name}",
            "default_branch": entry.get("default_branch"),
            "archived": bool(entry.get("archived")),
            "has_ci": False,
        }
        results.append(item)
        if item["archived"] and not include_archived:
            item["skipped"] = "archived"
            continue
        text = client.get_file(owner, name, path)
        if text is None:
            continue
        item["has_ci"] = True
        wanted = list(branches) or [item["default_branch"] or "main"]
        try:
            item.update(build(text, owner, name, wanted, environments, path))
        except CiConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise CiConfigError(problems)
    return results
