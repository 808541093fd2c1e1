# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""IAM analysis of every identity policy a template deploys (docs/iam-analysis.md).

The template rules (``rules.py``) check the shape of a template; this module judges what its IAM
policies grant, with two maintained analysers pinned in requirements.txt:

* cloudsplaining (on policy_sentry's IAM database): privilege escalation, resource exposure
  (permissions management without resource constraints), credentials exposure, data exfiltration,
  infrastructure modification on ``*`` and service-wide wildcards (``iam:*``);
* parliament: malformed policies, unknown actions and prefixes, condition type mismatches,
  resource formats that do not fit the actions.

Before either runs, each policy is resolved the way CloudFormation will: ``Fn::Sub`` (string or
list form), ``Ref``, ``Fn::Join``, ``Fn::If`` (both branches), pseudo parameters (``AWS::AccountId``,
``AWS::Region``, ``AWS::Partition``, ...) and the stack's parameter values, so ``!Sub '*'`` is ``*``.
References to the template's own resources become ARNs of that resource (never ``*``).

Managed policies are judged by what they grant: the AWS-managed ones the platform could plausibly
attach are described in :data:`MANAGED_POLICIES`; any other AWS-managed policy is refused because
it cannot be judged. Customer-managed policies declared in the template are analysed like inline
ones.

Each finding names the file, the statement, the actions and the fix. Findings at or above the
threshold (default ``medium``) refuse the run. A template may exempt itself from a rule with a
reason, in the same Metadata shape as the template rules::

    Metadata:
      biomage:
        exemptions:
          - rule: BIO105
            reason: the log shipper must create log groups named by the cluster

(at the top of the template, or in one resource's ``Metadata`` to exempt only that resource).

The analysers are imported lazily, the first time a template has an identity policy to judge: this file
is a module_util, and ansible-test's import sanity runs without them. When they are missing, the analysis
of a template with policies refuses (BIO110) rather than pass silently.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings

ANALYSERS = ("cloudsplaining", "parliament")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_THRESHOLD = "medium"
PLACEHOLDER_ACCOUNT = "123456789012"
POLICY_VERSION = "2012-10-17"

RULES = {
    "BIO101": ("privilege-escalation", "high", "no action set that lets the holder raise its own privileges"),
    "BIO102": ("resource-exposure", "high", "no permissions-management action without a resource constraint"),
    "BIO103": ("credentials-exposure", "high", "no action that returns credentials, on any resource"),
    "BIO104": ("data-exfiltration", "high", "no data-reading action (objects, secrets, parameters) on Resource *"),
    "BIO105": ("infrastructure-modification", "medium", "no write action on Resource * where ARNs can be named"),
    "BIO106": ("service-wildcard", "high", "no <service>:* action"),
    "BIO107": ("not-action", "high", "no Allow statement with NotAction or NotResource"),
    "BIO108": ("managed-policy", "high", "no managed policy that grants more than the rules allow"),
    "BIO109": ("policy-format", "medium", "actions, resources and conditions well formed (parliament)"),
    "BIO110": ("analyser-available", "critical", "the IAM analysers are installed"),
    "BIO111": ("exemption-reason", "medium", "every exemption names a rule and gives a reason"),
    "BIO112": (
        "irsa-trust-owner",
        "high",
        "an irsa-<app>-role trusts only service accounts in namespaces <app>-<ref> (exact, or <app>-*)",
    ),
}
IRSA_FILE = re.compile(r"(?:^|/)irsa-(?P<app>[a-z0-9-]+)-role\.ya?ml$")
SUBJECT = re.compile(r"^system:serviceaccount:(?P<namespace>[^:]+):(?P<account>[^:]+)$")

# The grants of the AWS-managed policies a template might attach (the policy documents AWS
# publishes, reduced to what the analysis needs). Anything else under arn:<partition>:iam::aws:policy/
# is refused as unknown.
_ALL = "*"
MANAGED_POLICIES = {
    "AdministratorAccess": [{"Effect": "Allow", "Action": "*", "Resource": _ALL}],
    "PowerUserAccess": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": _ALL},
        {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:ListRoles"], "Resource": _ALL},
    ],
    "IAMFullAccess": [{"Effect": "Allow", "Action": ["iam:*", "organizations:ListAccounts"], "Resource": _ALL}],
    "AmazonS3FullAccess": [{"Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"], "Resource": _ALL}],
    "AmazonS3ReadOnlyAccess": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": _ALL}],
    "AmazonDynamoDBFullAccess": [{"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": _ALL}],
    "AmazonSQSFullAccess": [{"Effect": "Allow", "Action": ["sqs:*"], "Resource": _ALL}],
    "AmazonSNSFullAccess": [{"Effect": "Allow", "Action": ["sns:*"], "Resource": _ALL}],
    "SecretsManagerReadWrite": [{"Effect": "Allow", "Action": ["secretsmanager:*"], "Resource": _ALL}],
    "AmazonEC2FullAccess": [{"Effect": "Allow", "Action": ["ec2:*"], "Resource": _ALL}],
    "AWSCloudFormationFullAccess": [{"Effect": "Allow", "Action": ["cloudformation:*"], "Resource": _ALL}],
    "AmazonEC2ContainerRegistryFullAccess": [{"Effect": "Allow", "Action": ["ecr:*"], "Resource": _ALL}],
    "AmazonEC2ContainerRegistryReadOnly": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:GetRepositoryPolicy",
                "ecr:DescribeRepositories",
                "ecr:ListImages",
                "ecr:DescribeImages",
                "ecr:BatchGetImage",
            ],
            "Resource": _ALL,
        }
    ],
    "CloudWatchAgentServerPolicy": [
        {
            "Effect": "Allow",
            "Action": [
                "cloudwatch:PutMetricData",
                "ec2:DescribeVolumes",
                "ec2:DescribeTags",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
                "logs:DescribeLogGroups",
                "logs:CreateLogStream",
                "logs:CreateLogGroup",
            ],
            "Resource": _ALL,
        }
    ],
}
MANAGED_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([A-Za-z0-9+=,.@_-]+)$")

# parliament issues reported (the others are style or need context the analysis does not have);
# resource-format issues are left out for statements whose resources are the template's own
# resources (their ARN is known only after deployment).
PARLIAMENT_ISSUES = {
    "MALFORMED",
    "MALFORMED_JSON",
    "EXCEPTION",
    "UNKNOWN_ACTION",
    "UNKNOWN_PREFIX",
    "UNKNOWN_OPERATOR",
    "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_OPERATION_TO_NULL",
    "MISMATCHED_TYPE_BUT_USABLE",
    "INVALID_ARN",
    "RESOURCE_MISMATCH",
    "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
    "INVALID_VERSION",
    "DUPLICATE_SID",
}
RESOURCE_FORMAT_ISSUES = {"INVALID_ARN", "RESOURCE_MISMATCH"}
# parliament severities are upper-case; the analysis refuses UNKNOWN_ACTION and UNKNOWN_PREFIX
# (LOW for parliament) at medium: a misspelt action is a policy that does not do what it says.
PARLIAMENT_SEVERITY = {"UNKNOWN_ACTION": "medium", "UNKNOWN_PREFIX": "medium"}

# Actions cloudsplaining lists that the analysis accepts on Resource "*": ecr:GetAuthorizationToken
# cannot be scoped to a resource and its token carries only the caller's own ECR rights (the CI role
# built for a container repository needs it to log in).
EXCLUDED_ACTIONS = ("ecr:getauthorizationtoken",)

IDENTITY_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class IamFinding:
    """One analyser finding about one statement of one policy."""

    def __init__(self, rule, path, location, message, fix, actions=(), severity=None):
        self.rule = rule
        self.path = path
        self.location = location
        self.message = message
        self.fix = fix
        self.actions = sorted(set(actions))
        self.severity = severity or RULES[rule][1]

    @property
    def name(self):
        return RULES[self.rule][0]

    def to_dict(self):
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "path": self.path,
            "location": self.location,
            "actions": self.actions,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self):
        where = f"{self.path}: {self.location}" if self.location else self.path
        shown = ", ".join(self.actions[:8]) + (f" (+{len(self.actions) - 8} more)" if len(self.actions) > 8 else "")
        actions = f" Actions: {shown}." if self.actions else ""
        return f"{where}: [{self.rule} {self.name}, {self.severity}] {self.message}.{actions} Fix: {self.fix}"

    def __repr__(self):
        return f"IamFinding({self.rule}, {self.path!r}, {self.location!r})"


# -- resolution -----------------------------------------------------------------------------------
class Resolver:
    """Resolves intrinsics in policy documents to the strings CloudFormation would produce."""

    def __init__(self, template, parameters=None, account=None, region=None, partition="aws", stack_name="stack"):
        self.resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
        declared = template.get("Parameters") if isinstance(template.get("Parameters"), dict) else {}
        self.variables = {
            "AWS::AccountId": account or PLACEHOLDER_ACCOUNT,
            "AWS::Region": region or "us-east-1",
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{partition}:cloudformation:{region or 'us-east-1'}:"
            f"{account or PLACEHOLDER_ACCOUNT}:stack/{stack_name}/id",
        }
        for name, declaration in declared.items():
            default = declaration.get("Default") if isinstance(declaration, dict) else None
            self.variables[name] = str(default) if default is not None else f"param-{name.lower()}"
        for name, value in (parameters or {}).items():
            self.variables[name] = str(value)
        self.placeholders = set()

    def _resource_value(self, logical_id, attribute=None):
        """A stand-in for Ref/GetAtt of one of the template's resources: an ARN-like name, never ``*``."""
        resource = self.resources.get(logical_id)
        rtype = resource.get("Type") if isinstance(resource, dict) else None
        name = re.sub(r"[^a-z0-9-]", "-", logical_id.lower())
        account, region = self.variables["AWS::AccountId"], self.variables["AWS::Region"]
        partition = self.variables["AWS::Partition"]
        arns = {
            "AWS::S3::Bucket": f"arn:{partition}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{partition}:sqs:{region}:{account}:{name}",
            "AWS::SNS::Topic": f"arn:{partition}:sns:{region}:{account}:{name}",
            "AWS::DynamoDB::Table": f"arn:{partition}:dynamodb:{region}:{account}:table/{name}",
            "AWS::ECR::Repository": f"arn:{partition}:ecr:{region}:{account}:repository/{name}",
            "AWS::IAM::Role": f"arn:{partition}:iam::{account}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{partition}:iam::{account}:policy/{name}",
            "AWS::SecretsManager::Secret": f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-abcdef",
            "AWS::KMS::Key": f"arn:{partition}:kms:{region}:{account}:key/{name}",
            "AWS::Logs::LogGroup": f"arn:{partition}:logs:{region}:{account}:log-group:{name}",
        }
        value = arns.get(rtype, f"{name}-{(attribute or 'ref').lower()}")
        if rtype in ("AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table") and attribute is None:
            # Ref of these is the name (a queue's is its URL); they are still never "*"
            value = name if rtype != "AWS::SQS::Queue" else f"https://sqs.{region}.amazonaws.com/{account}/{name}"
        self.placeholders.add(value)
        return value

    def _lookup(self, name):
        if name in self.variables:
            return self.variables[name]
        logical, _dot, attribute = name.partition(".")
        return self._resource_value(logical, attribute or None)

    def _sub(self, text, extra):
        def replace(match):
            key = match.group(1)
            if key in extra:
                return str(extra[key])
            return self._lookup(key)

        return SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def resolve(self, node):
        """``node`` with intrinsics resolved; ``Fn::If`` gives a list of both branches."""
        if isinstance(node, list):
            out = []
            for item in node:
                value = self.resolve(item)
                if value is _NO_VALUE:
                    continue
                out.append(value)
            return out
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                return self._lookup(str(arg))
            if key == "Fn::Sub":
                if isinstance(arg, list) and arg:
                    extra = {k: self._scalar(self.resolve(v)) for k, v in (arg[1] if len(arg) > 1 else {}).items()}
                    return self._sub(str(arg[0]), extra)
                return self._sub(str(arg), {})
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._resource_value(str(parts[0]), str(parts[1]) if len(parts) > 1 else "arn")
            if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
                items = self.resolve(arg[1])
                return str(arg[0]).join(self._scalar(i) for i in (items if isinstance(items, list) else [items]))
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return _Branches([self.resolve(arg[1]), self.resolve(arg[2])])
            if key == "Fn::ImportValue":
                value = f"imported-{re.sub(r'[^a-z0-9-]', '-', self._scalar(self.resolve(arg)).lower())}"
                self.placeholders.add(value)
                return value
            if key == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
                items = self.resolve(arg[1])
                try:
                    return items[int(arg[0])]
                except (IndexError, TypeError, ValueError):
                    return "unresolved"
        return {key: self.resolve(value) for key, value in node.items()}

    @staticmethod
    def _scalar(value):
        if isinstance(value, _Branches):
            return str(value.items[0])
        return str(value)


class _NoValue:
    pass


_NO_VALUE = _NoValue()


class _Branches:
    """Both branches of an ``Fn::If``: analysed as if either could be deployed."""

    def __init__(self, items):
        self.items = items


def _flatten(value):
    """Scalars of ``value``: lists and both branches of Fn::If."""
    if isinstance(value, _Branches):
        out = []
        for item in value.items:
            out.extend(_flatten(item))
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_flatten(item))
        return out
    if value is None or value is _NO_VALUE:
        return []
    return [value]


def _documents(value):
    """The documents a resolved PolicyDocument value can be (JSON strings parsed; both Fn::If branches)."""
    if isinstance(value, _Branches):
        for item in value.items:
            yield from _documents(item)
    elif isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            yield parsed
    elif isinstance(value, dict):
        yield value


def _plain_statement(statement):
    """A statement with every Fn::If flattened to lists (what the analysers read)."""
    out = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            out[key] = [str(v) for v in _flatten(value)]
        elif key == "Condition" and isinstance(value, dict):
            out[key] = _plain_condition(value)
        elif isinstance(value, _Branches):
            out[key] = _flatten(value)[0] if _flatten(value) else None
        else:
            out[key] = value
    return out


def _plain_condition(node):
    if isinstance(node, dict):
        return {k: _plain_condition(v) for k, v in node.items()}
    if isinstance(node, (list, _Branches)):
        return [_plain_condition(v) for v in _flatten(node)]
    return node


# -- collection -----------------------------------------------------------------------------------
def identity_policies(template, resolver):
    """``(logical_id, location, statements)`` for every identity policy in ``template``; managed policy
    ARNs attached to roles, users and groups come as ``(logical_id, location, arn)``."""
    resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
    policies, managed = [], []
    for logical_id, resource in sorted(resources.items()):
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("Type")
        props = resource.get("Properties") if isinstance(resource.get("Properties"), dict) else {}
        base = f"Resources.{logical_id}.Properties"
        if rtype in IDENTITY_TYPES:
            for index, policy in enumerate(_flatten(resolver.resolve(props.get("Policies")))):
                if not isinstance(policy, dict):
                    continue
                name = policy.get("PolicyName")
                where = f"{base}.Policies[{index}]" + (f" ({name})" if isinstance(name, str) else "")
                for document in _documents(policy.get("PolicyDocument")):
                    policies.append((logical_id, where, document))
            for index, arn in enumerate(_flatten(resolver.resolve(props.get("ManagedPolicyArns")))):
                managed.append((logical_id, f"{base}.ManagedPolicyArns[{index}]", str(arn)))
        elif rtype in POLICY_TYPES:
            for document in _documents(resolver.resolve(props.get("PolicyDocument"))):
                policies.append((logical_id, f"{base}.PolicyDocument", document))
    return policies, managed


def _statements(document):
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements or [] if isinstance(s, dict)]


# -- analysis -------------------------------------------------------------------------------------
def _load_analysers():
    """``(policy_document, analyze_policy_string)`` or raise ImportError.

    cloudsplaining and parliament are imported here, not at the top: about half a second (policy_sentry loads
    its IAM database) that a template without identity policies never pays; later calls find them in
    ``sys.modules``. ansible-test's import sanity runs without them; the analysis then refuses (BIO110)."""
    with warnings.catch_warnings():
        # parliament loads its data files through pkg_resources, which warns of its own deprecation
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        scan = importlib.import_module("cloudsplaining.scan.policy_document")
        shared = importlib.import_module("cloudsplaining.shared.exclusions")
        parliament = importlib.import_module("parliament")
    config = dict(shared.DEFAULT_EXCLUSIONS_CONFIG)
    config["exclude-actions"] = list(EXCLUDED_ACTIONS)
    exclusions = shared.Exclusions(config)

    def policy_document(document):
        return scan.PolicyDocument(document, exclusions=exclusions)

    return policy_document, parliament.analyze_policy_string


def _actions_of(entries):
    out = []
    for entry in entries:
        if isinstance(entry, dict):
            out.extend(entry.get("actions") or [])
        else:
            out.append(entry)
    return out


def analyse_statement(statement, path, where, placeholders=(), analysers=None):
    """Findings of both analysers for one resolved statement (any severity)."""
    policy_document, analyze = analysers or _load_analysers()
    plain = _plain_statement(statement)
    out = []

    def add(rule, message, fix, actions=(), severity=None):
        out.append(IamFinding(rule, path, where, message, fix, actions, severity))

    if plain.get("Effect") == "Allow":
        for key in ("NotAction", "NotResource"):
            if key in plain:
                add(
                    "BIO107",
                    f"an Allow statement with {key} grants everything except {plain[key]}",
                    f"list what the workload needs with {key[3:]} instead",
                )
    document = {"Version": POLICY_VERSION, "Statement": [plain]}
    scanned = policy_document(document)
    escalation = scanned.allows_privilege_escalation
    if escalation:
        paths = sorted({e["type"] for e in escalation})
        add(
            "BIO101",
            f"the statement allows privilege escalation ({', '.join(paths[:5])}"
            + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
            + ")",
            "remove these IAM actions (roles are changed by biomage.iac from cf/, not by workloads), or scope "
            "them to ARNs the holder cannot use to raise its own rights",
            _actions_of(escalation),
        )
    checks = (
        (
            "BIO106",
            scanned.service_wildcard,
            "the statement grants every action of a service",
            "list the actions the workload calls instead of <service>:*",
        ),
        (
            "BIO102",
            scanned.permissions_management_without_constraints,
            "permissions-management actions on Resource * (the holder can change who may do what)",
            "remove them or name the exact ARNs they may change",
        ),
        (
            "BIO103",
            scanned.credentials_exposure,
            "actions that return credentials",
            "remove them; workloads get credentials through their own role (IRSA or OIDC)",
        ),
        (
            "BIO104",
            scanned.allows_data_exfiltration_actions,
            "data-reading actions on Resource * (every object, secret or parameter of the account)",
            "name the buckets, secrets or parameters of this environment in Resource (with ${Environment})",
        ),
        (
            "BIO105",
            scanned.infrastructure_modification,
            "write actions on Resource * although they can be limited to named resources",
            "name the resources of this environment in Resource (arn:${AWS::Partition}:...:${Environment}...)",
        ),
    )
    for rule, actions, message, fix in checks:
        if actions:
            add(rule, message, fix, [a if ":" in a else f"{a}:*" for a in actions])
    # parliament: malformed actions, resources and conditions
    parliament_findings = analyze(json.dumps(document)).findings
    own_resources = any(r in placeholders or any(p in r for p in placeholders) for r in plain.get("Resource", []))
    for finding in parliament_findings:
        issue = getattr(finding, "issue", "")
        if issue not in PARLIAMENT_ISSUES or (issue in RESOURCE_FORMAT_ISSUES and own_resources):
            continue
        severity = PARLIAMENT_SEVERITY.get(issue, str(getattr(finding, "severity", "MEDIUM")).lower())
        detail = getattr(finding, "detail", "")
        add(
            "BIO109",
            f"parliament {issue}: {getattr(finding, 'title', '') or issue}" + (f" ({detail})" if detail else ""),
            "correct the action names, ARN formats and condition types (see the IAM service authorization reference)",
            [a for a in plain.get("Action", []) if isinstance(a, str)],
            severity if severity in SEVERITIES else "medium",
        )
    return out


def _managed_policy(arn, path, where, analysers):
    match = MANAGED_ARN.match(arn)
    if not match:
        # a customer-managed policy of the template is analysed through its own resource; others are
        # outside the repository and cannot be judged
        if arn.startswith("arn:") and ":policy/" in arn:
            return [
                IamFinding(
                    "BIO108",
                    path,
                    where,
                    f"managed policy {arn} is not declared in this template, so what it grants cannot be judged",
                    "declare the policy in the template (AWS::IAM::ManagedPolicy) or write it inline",
                )
            ]
        return []
    name = match.group(1)
    statements = MANAGED_POLICIES.get(name)
    if statements is None:
        return [
            IamFinding(
                "BIO108",
                path,
                where,
                f"AWS-managed policy {name} is not one the analysis knows, so what it grants cannot be judged",
                "write an inline policy with the actions the workload needs (or add the policy's grants to "
                "MANAGED_POLICIES in plugins/module_utils/cloudformation/iam_analysis.py after review)",
            )
        ]
    out = []
    for index, statement in enumerate(statements):
        for finding in analyse_statement(statement, path, f"{where} ({name}).Statement[{index}]", (), analysers):
            out.append(
                IamFinding(
                    "BIO108",
                    path,
                    finding.location,
                    f"AWS-managed policy {name} grants too much: [{finding.rule} {finding.name}] {finding.message}",
                    "do not attach " + name + "; write an inline policy with the actions the workload needs",
                    finding.actions,
                    max(finding.severity, "high", key=SEVERITIES.index),
                )
            )
    return out


def _owned_namespace(namespace, app):
    """``<app>-<ref>`` exactly, or the pattern ``<app>-*`` (service names are prefix-free, docs/tenants.md)."""
    rest = namespace[len(app) + 1 :] if namespace.startswith(app + "-") else ""
    return rest == "*" or (bool(rest) and "*" not in rest and "?" not in rest)


def trust_owner_findings(template, path, resolver):
    """BIO112: the subjects an irsa-<app>-role.yaml trusts, resolved, are in <app>'s namespaces only
    (releases.py gives <app>-<ref> namespaces to <app>'s releases alone, docs/tenants.md)."""
    match = IRSA_FILE.search(path.replace("\\", "/"))
    if not match:
        return []
    app = match.group("app")
    out = []
    resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
    for logical_id, resource in sorted(resources.items()):
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::IAM::Role":
            continue
        props = resource.get("Properties") if isinstance(resource.get("Properties"), dict) else {}
        where = f"Resources.{logical_id}.Properties.AssumeRolePolicyDocument"
        for document in _documents(resolver.resolve(props.get("AssumeRolePolicyDocument"))):
            for index, statement in enumerate(_statements(document)):
                condition = statement.get("Condition") if isinstance(statement.get("Condition"), dict) else {}
                for operator, block in condition.items():
                    for key, values in block.items() if isinstance(block, dict) else ():
                        if not str(key).endswith(":sub"):
                            continue
                        for subject in _flatten(values):
                            found = SUBJECT.match(str(subject))
                            if (
                                found
                                and _owned_namespace(found.group("namespace"), app)
                                and "*" not in str(found.group("account"))
                            ):
                                continue
                            finding = IamFinding(
                                "BIO112",
                                path,
                                f"{where}.Statement[{index}].Condition.{operator}",
                                f"trusts {subject!r}, which is not a service account of {app}'s namespaces "
                                f"({app}-<ref>)",
                                f"system:serviceaccount:{app}-${{Environment}}:<service account> (StringEquals), "
                                f"or system:serviceaccount:{app}-*:<service account> (StringLike) where sandboxes "
                                "need it",
                            )
                            finding.resource = logical_id
                            out.append(finding)
    return out


def exemptions_of(template, path):
    """``({rule: reason}, {logical_id: {rule: reason}}, findings)`` from the Metadata exemptions."""

    def read(metadata, where):
        found, problems = {}, []
        biomage = metadata.get("biomage") if isinstance(metadata, dict) else None
        entries = biomage.get("exemptions") if isinstance(biomage, dict) else None
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            rule = entry.get("rule") if isinstance(entry, dict) else None
            if rule not in RULES:
                continue  # another engine's rule (rules.py reads the same list)
            reason = entry.get("reason")
            if not isinstance(reason, str) or len(reason.strip()) < 10:
                problems.append(
                    IamFinding(
                        "BIO111",
                        path,
                        f"{where}.biomage.exemptions[{index}]",
                        f"the exemption from {rule} gives no reason",
                        "write reason: why this grant is needed and why it is safe (a sentence)",
                    )
                )
                continue
            found[rule] = reason.strip()
        return found, problems

    top, findings = read(template.get("Metadata"), "Metadata")
    per_resource = {}
    resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and isinstance(resource.get("Metadata"), dict):
            found, problems = read(resource["Metadata"], f"Resources.{logical_id}.Metadata")
            per_resource[logical_id] = found
            findings.extend(problems)
    return top, per_resource, findings


def analyse_template(
    template,
    path,
    parameters=None,
    account=None,
    region=None,
    stack_name="stack",
    threshold=DEFAULT_THRESHOLD,
    exemptions=True,
):
    """Findings at or above ``threshold`` for every identity policy of a parsed template.

    ``exemptions=False`` ignores the template's Metadata exemptions (CI roles built from a service's
    ``.ci.yaml`` cannot exempt themselves).
    """
    if threshold not in SEVERITIES:
        raise ValueError(f"threshold must be one of {', '.join(SEVERITIES)}")
    resolver = Resolver(template, parameters, account, region, stack_name=stack_name)
    policies, managed = identity_policies(template, resolver)
    try:
        analysers = _load_analysers() if policies or managed else None
    except ImportError as exc:
        return [
            IamFinding(
                "BIO110",
                path,
                "",
                f"the IAM analysers ({', '.join(ANALYSERS)}) cannot be imported ({exc}), so no policy can be judged",
                "install the pinned requirements: `make setup` (or pip install -r requirements.txt) in the "
                "Python that runs the modules",
            )
        ]
    findings = []
    for logical_id, where, document in policies:
        for index, statement in enumerate(_statements(document)):
            for finding in analyse_statement(
                statement, path, f"{where}.Statement[{index}]", resolver.placeholders, analysers
            ):
                finding.resource = logical_id
                findings.append(finding)
    for logical_id, where, arn in managed:
        for finding in _managed_policy(arn, path, where, analysers):
            finding.resource = logical_id
            findings.append(finding)
    findings.extend(trust_owner_findings(template, path, resolver))
    top, per_resource, problems = exemptions_of(template, path) if exemptions else ({}, {}, [])
    kept = [
        f for f in findings if f.rule not in top and f.rule not in per_resource.get(getattr(f, "resource", None), {})
    ]
    kept.extend(problems)
    limit = SEVERITIES.index(threshold)
    return [f for f in kept if SEVERITIES.index(f.severity) >= limit]
