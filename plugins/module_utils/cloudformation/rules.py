# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's CloudFormation template rules (docs/aws-resources.md, "The rules").

One engine, three callers: the ``biomage.iac.cfn_stacks`` module reviews every template with it
before it changes anything, ``tools/lint_cf.py`` (``make lint``) runs it next to cfn-lint, and
``tools/cfn_lint_rules/`` wraps it as cfn-lint rules (``cfn-lint --append-rules``) for editors and
the pre-commit hook. Each finding names the file, the place in the template, the rule and the fix.

A template may exempt itself (or one resource) from a rule with a reason, in its ``Metadata``::

    Metadata:
      biomage:
        exemptions:
          - rule: BIO008
            reason: "the bucket serves the public download page"

and a reviewed allow-list, ``third-party-accounts.yaml`` (the nearest one above the template),
names the AWS accounts of other organisations and AWS services a template may name. Exemptions and
allowed accounts are returned with every review so that plans and diffs list them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.iam_analysis import RULES as IAM_RULES
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    TemplateError,
    load_template,
    load_yaml,
    parameters_of,
    resources_of,
)

ENVIRONMENTS = ("development", "staging", "production")
IRSA_PREFIX = "irsa-"
OIDC_FEDERATED = "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/${OIDCProvider}"
SUB_KEY = "${OIDCProvider}:sub"
AUD_KEY = "${OIDCProvider}:aud"
AUDIENCE = "sts.amazonaws.com"
WEB_IDENTITY_ACTION = "sts:assumerolewithwebidentity"
SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:[^:\s]+:[^:\s*?]+$")

# Service families a template may use next to its one main family.
HELPER_FAMILIES = ("IAM", "KMS", "SecretsManager", "Logs", "CloudWatch", "SSM")
HELPER_TYPES = ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")

ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
REGION = re.compile(
    r"(?<![a-z0-9])(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso|-isob)?-"
    r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}(?![0-9])"
)
PARTITION = re.compile(r"arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:")
# Prose may mention anything; these keys hold prose (or exemptions), not configuration.
PROSE_KEYS = ("Description", "AssertDescription", "ConstraintDescription", "Metadata")
POLICY_KEYS = ("PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy", "ResourcePolicy", "PolicyText")

# Condition keys that narrow a Principal "*" to an organisation, an account or a source resource
# (compared in lower case: IAM condition keys are case-insensitive).
NARROWING_KEYS = (
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
)
# Operators that require the key to be present and to match (no IfExists, no negation, no ForAllValues).
NARROWING_OPERATORS = ("stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike")
# Places where an account id names someone else: a principal, a condition on the account of a
# principal or source, a Mappings table (such as the per-region accounts of an AWS service).
FOREIGN_ACCOUNT_KEYS = (
    "principal",
    "notprincipal",
    "aws:sourceaccount",
    "aws:principalaccount",
    "aws:resourceaccount",
    "aws:sourceowner",
    "aws:sourcearn",
    "aws:principalarn",
)

ALLOW_LIST_NAME = "third-party-accounts.yaml"
ALLOW_LIST_KEYS = ("account_id", "service", "reference")
EXEMPTION_KEYS = ("rule", "reason")
REPOSITORY_MARKERS = (".git", "galaxy.yml")

RULES = {
    "BIO000": ("template-parses", "The template is valid YAML/JSON with a Resources section."),
    "BIO001": (
        "environment-parameter",
        "Parameter Environment: String, AllowedValues exactly development|staging|production, a Default only "
        "among them.",
    ),
    "BIO002": (
        "no-literal-account-id",
        "No 12-digit account id literal: the deploying account is ${AWS::AccountId}; accounts of other "
        "organisations and AWS services are named in the reviewed allow-list.",
    ),
    "BIO003": ("no-literal-region", "No region literal (Mappings keyed by region aside); use ${AWS::Region}."),
    "BIO004": ("no-literal-partition", "No arn:aws: literal; use arn:${AWS::Partition}:."),
    "BIO005": ("irsa-oidc-parameter", "irsa-* templates take a String parameter OIDCProvider."),
    "BIO006": (
        "irsa-trust",
        "Every web-identity statement (sts:AssumeRoleWithWebIdentity) of an irsa-* role: the cluster's OIDC "
        "provider, that action only, a :sub condition on a service account and :aud = sts.amazonaws.com; "
        "every irsa-* role has one.",
    ),
    "BIO007": ("irsa-sub-operator", "StringLike on :sub only with a wildcard; StringEquals never with one."),
    "BIO008": (
        "no-public-principal",
        'No Allow statement with Principal "*" unless a condition narrows it to an organisation, account or '
        "source (aws:PrincipalOrgID, aws:PrincipalAccount, aws:SourceAccount, aws:SourceArn, ...).",
    ),
    "BIO009": ("no-admin-statement", 'No Allow statement with Action "*" on Resource "*".'),
    "BIO010": ("one-resource-family", "One broadly related group of resources per template."),
    "BIO012": (
        "exemption-valid",
        "Every exemption names a known rule, gives a reason and exempts something; every allow-list entry "
        "names a 12-digit account id and its service.",
    ),
}
# Rules that no exemption can lift: a template that does not parse, a broken exemption.
NOT_EXEMPTABLE = ("BIO000", "BIO012")
# Rule ids that existed once: an exemption naming one is told so.
RETIRED = {"BIO011": "short-form tags (!Sub, !Ref, ...) are ordinary CloudFormation and accepted"}
# The id a rule has in cfn-lint (tools/cfn_lint_rules): BIO008 -> E9008.
CFN_LINT_PREFIX = "E9"


def cfn_lint_id(rule):
    return CFN_LINT_PREFIX + rule[3:]


def format_keys(keys):
    """``("Resources", "A", "Statement", 0)`` -> ``Resources.A.Statement[0]``."""
    out = ""
    for key in keys:
        if isinstance(key, int) and not isinstance(key, bool):
            out += f"[{key}]"
        else:
            out = f"{out}.{key}" if out else str(key)
    return out


class Finding:
    """One broken rule in one template. ``path`` names the file, ``location`` the place in the template
    (``keys`` is the same place as a tuple of keys and indexes, for tools that map it to a line)."""

    def __init__(self, rule, path, location, message, fix):
        self.rule = rule
        self.path = path
        if isinstance(location, tuple):
            self.keys = location
            self.location = format_keys(location)
        else:
            self.keys = ()
            self.location = location
        self.message = message
        self.fix = fix

    @property
    def name(self):
        return RULES[self.rule][0]

    def to_dict(self):
        return {
            "rule": self.rule,
            "name": self.name,
            "path": self.path,
            "location": self.location,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self):
        where = f"{self.path}: {self.location}" if self.location else self.path
        return f"{where}: [{self.rule} {self.name}] {self.message} Fix: {self.fix}"

    def __repr__(self):
        return f"Finding({self.rule}, {self.path!r}, {self.location!r})"


class Exemption:
    """A finding a template is exempt from, and why: a reasoned exemption in its Metadata, or an
    account of the allow-list. ``path`` is the place in the template, ``source`` where the reason is."""

    def __init__(self, template, rule, path, reason, source):
        self.template = template
        self.rule = rule
        self.path = path
        self.reason = reason
        self.source = source

    def to_dict(self):
        return {
            "template": self.template,
            "rule": self.rule,
            "path": self.path,
            "reason": self.reason,
            "source": self.source,
        }

    def __str__(self):
        name = RULES[self.rule][0]
        return f"{self.template}: {self.path}: [{self.rule} {name}] exempt: {self.reason} ({self.source})"

    def __repr__(self):
        return f"Exemption({self.rule}, {self.template!r}, {self.path!r})"


class Review:
    """What the rules say about one template: the findings that block it (after exemptions), the
    exemptions that applied, and the parsed template (None when it does not parse)."""

    def __init__(self, findings, exemptions, template):
        self.findings = findings
        self.exemptions = exemptions
        self.template = template


# -- the allow-list of third-party accounts --------------------------------------------------------
class AllowList:
    """Accounts of other organisations and AWS services that templates may name, each with its
    service. ``label`` names the file in messages; ``findings`` are its own problems (BIO012)."""

    def __init__(self, accounts=None, label=None, findings=None):
        self.accounts = dict(accounts or {})
        self.label = label
        self.findings = list(findings or [])

    @property
    def where(self):
        return self.label or f"{ALLOW_LIST_NAME} (at the repository root)"

    def service(self, account_id):
        return self.accounts.get(account_id)

    @classmethod
    def from_text(cls, text, label):
        fix = f"write {label} as 'accounts: [{{account_id: \"123456789012\", service: <whose account, for what>}}]'"
        if not text or not text.strip():
            return cls({}, label)
        try:
            data = load_yaml(text, label, what="allow-list")
        except TemplateError as exc:
            return cls({}, label, [Finding("BIO012", label, "", exc.message.replace(f"{label}: ", "", 1), fix)])
        if data is None:
            return cls({}, label)
        entries = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) - {"accounts"} or not isinstance(entries, list):
            problem = Finding("BIO012", label, "", "the allow-list is not a mapping with a list 'accounts'", fix)
            return cls({}, label, [problem])
        accounts, findings = {}, []
        for index, entry in enumerate(entries):
            where = ("accounts", index)
            problem = _allow_list_entry_problem(entry, accounts)
            if problem:
                findings.append(Finding("BIO012", label, where, problem, fix))
                continue
            accounts[entry["account_id"]] = " ".join(str(entry["service"]).split())
        return cls(accounts, label, findings)

    @classmethod
    def load(cls, path, label=None):
        label = label or _display_path(path)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            problem = Finding("BIO012", label, "", f"cannot read the allow-list: {exc.strerror}", "check the path")
            return cls({}, label, [problem])
        return cls.from_text(text, label)


def _allow_list_entry_problem(entry, accounts):
    if not isinstance(entry, dict):
        return "an entry is not a mapping with account_id and service"
    unknown = sorted(str(k) for k in set(entry) - set(ALLOW_LIST_KEYS))
    if unknown:
        return f"unknown key(s) {', '.join(unknown)} (an entry has {', '.join(ALLOW_LIST_KEYS)})"
    account_id = entry.get("account_id")
    if not isinstance(account_id, str) or not re.fullmatch(r"[0-9]{12}", account_id):
        return f"account_id {account_id!r} is not a quoted 12-digit string (YAML reads an unquoted number as an int)"
    if not isinstance(entry.get("service"), str) or not entry["service"].strip():
        return f"account {account_id} names no service (say whose account it is and what it does here)"
    if account_id in accounts:
        return f"account {account_id} is listed twice"
    return None


def _display_path(path):
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def find_allow_list(template_path):
    """The nearest ``third-party-accounts.yaml`` in the template's folder or above it, up to the
    repository root (a folder with ``.git`` or ``galaxy.yml``); None when there is none."""
    directory = os.path.dirname(os.path.abspath(template_path))
    while True:
        candidate = os.path.join(directory, ALLOW_LIST_NAME)
        if os.path.isfile(candidate):
            return candidate
        if any(os.path.exists(os.path.join(directory, marker)) for marker in REPOSITORY_MARKERS):
            return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


class AllowLists:
    """The allow-list of each template of a run: ``path`` when given, else the one
    :func:`find_allow_list` finds for the template (each file read once)."""

    def __init__(self, path=None, label=None):
        self._explicit = AllowList.load(path, label) if path else None
        self._by_file = {}

    def for_template(self, template_path):
        if self._explicit is not None:
            return self._explicit
        found = find_allow_list(template_path) if template_path else None
        if found is None:
            return AllowList()
        if found not in self._by_file:
            self._by_file[found] = AllowList.load(found)
        return self._by_file[found]

    @property
    def findings(self):
        """The problems of every allow-list read so far (each file once)."""
        lists = [self._explicit] if self._explicit is not None else list(self._by_file.values())
        return [finding for allow_list in lists for finding in allow_list.findings]


# -- entry points ---------------------------------------------------------------------------------
def is_irsa(path):
    return os.path.basename(path).startswith(IRSA_PREFIX)


def review_text(text, path, allow_list=None):
    """Review a template given as text (a parse error is a BIO000 finding with line and column)."""
    try:
        template = load_template(text, path)
    except TemplateError as exc:
        line, column = exc.details.get("line"), exc.details.get("column")
        location = f"line {line}, column {column}" if line else ""
        message = exc.message.replace(f"{path}: ", "", 1)
        if line:
            message = f"not valid YAML/JSON: {exc.details.get('reason')}"
        return Review([Finding("BIO000", path, location, message, "fix the template so it parses")], [], None)
    return review_template(template, path, allow_list)


def review_file(path, label=None, allow_list=None):
    label = label or path
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        problem = Finding("BIO000", label, "", f"cannot read the template: {exc.strerror}", "check the path")
        return Review([problem], [], None)
    return review_text(text, label, allow_list)


def review_template(template, path, allow_list=None):
    """Review a parsed template. ``path`` names it (and decides whether it is irsa-*)."""
    context = _Context(path, allow_list or AllowList())
    raw = []
    for rule in (_environment_parameter, _literals, _irsa, _policies, _resource_family):
        raw.extend(rule(template, context))
    declared, problems = _declared_exemptions(template, path)
    # the most specific exemption first: a resource's own before the template's
    declared.sort(key=lambda d: -len(d.scope))
    findings, exemptions = [], list(context.allowed)
    for finding in raw:
        match = next((d for d in declared if d.covers(finding)), None)
        if match is None:
            findings.append(finding)
            continue
        match.used = True
        exemptions.append(Exemption(path, finding.rule, finding.location, match.reason, match.source))
    for declaration in sorted(declared, key=lambda d: d.keys):
        if not declaration.used:
            problems.append(
                Finding(
                    "BIO012",
                    path,
                    declaration.keys,
                    f"the exemption from {declaration.rule} exempts nothing: nothing in "
                    f"{format_keys(declaration.scope) or 'the template'} breaks {declaration.rule}",
                    "remove the exemption (a stale one would hide the next such defect)",
                )
            )
    return Review(findings + problems, exemptions, template)


def check_text(text, path, allow_list=None):
    """The findings that block a template given as text (parse errors included)."""
    return review_text(text, path, allow_list).findings


def check_file(path, label=None, allow_list=None):
    return review_file(path, label, allow_list).findings


def check_template(template, path, allow_list=None):
    """The findings that block a parsed template."""
    return review_template(template, path, allow_list).findings


class _Context:
    def __init__(self, path, allow_list):
        self.path = path
        self.allow_list = allow_list
        self.allowed = []  # Exemptions: accounts of the allow-list the template names

    def finding(self, rule, keys, message, fix):
        return Finding(rule, self.path, keys, message, fix)


# -- exemptions -----------------------------------------------------------------------------------
class _Declared:
    """One ``{rule, reason}`` entry of a ``Metadata.biomage.exemptions`` list."""

    def __init__(self, rule, reason, scope, keys):
        self.rule = rule
        self.reason = reason
        self.scope = scope  # () for the whole template, ("Resources", id) for one resource
        self.keys = keys
        self.source = format_keys(keys)
        self.used = False

    def covers(self, finding):
        return finding.rule == self.rule and finding.keys[: len(self.scope)] == self.scope


def _declared_exemptions(template, path):
    """``([_Declared], [Finding])``: the exemptions of the template and of each resource, and what is
    wrong with them (BIO012)."""
    scopes = [((), template.get("Metadata"))]
    scopes += [(("Resources", lid), resource.get("Metadata")) for lid, resource in resources_of(template).items()]
    declared, problems = [], []
    shape = 'write Metadata: {biomage: {exemptions: [{rule: BIO0nn, reason: "why this template may break it"}]}}'
    for scope, metadata in scopes:
        if not isinstance(metadata, dict):
            continue
        problems.extend(_cfn_lint_ignores(metadata, scope, path))
        if "biomage" not in metadata:
            continue
        own = metadata["biomage"]
        where = (*scope, "Metadata", "biomage")
        entries = own.get("exemptions") if isinstance(own, dict) else None
        if not isinstance(entries, list):
            problems.append(Finding("BIO012", path, where, "Metadata.biomage.exemptions is not a list", shape))
            continue
        seen = set()
        for index, entry in enumerate(entries):
            keys = (*where, "exemptions", index)
            if isinstance(entry, dict) and entry.get("rule") in IAM_RULES:
                continue  # the IAM analysis (iam_analysis.py) reads and judges its own exemptions
            problem, fix = _exemption_problem(entry, shape)
            if problem is None and entry["rule"] in seen:
                problem, fix = f"{entry['rule']} is exempted twice here", "keep one exemption (one reason) per rule"
            if problem is not None:
                problems.append(Finding("BIO012", path, keys, problem, fix))
                continue
            seen.add(entry["rule"])
            declared.append(_Declared(entry["rule"], " ".join(entry["reason"].split()), scope, keys))
    return declared, problems


def _exemption_problem(entry, shape):
    """``(message, fix)`` of what is wrong with one exemption entry, or ``(None, None)``."""
    if not isinstance(entry, dict):
        return "an exemption is not a mapping with rule and reason", shape
    unknown = sorted(str(k) for k in set(entry) - set(EXEMPTION_KEYS))
    if unknown:
        return f"unknown key(s) {', '.join(unknown)} (an exemption has rule and reason)", shape
    rule = entry.get("rule")
    exemptable = ", ".join(r for r in RULES if r not in NOT_EXEMPTABLE)
    if rule in RETIRED:
        return f"{rule} is no longer a rule: {RETIRED[rule]}", "remove the exemption"
    if rule in NOT_EXEMPTABLE:
        return f"{rule} cannot be exempted", "fix the template instead"
    if rule not in RULES:
        return f"unknown rule {rule!r}", f"name one of {exemptable} (docs/aws-resources.md, 'The rules')"
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return (
            f"the exemption from {rule} gives no reason",
            f'add reason: "<why this template may break {rule}>"; it is reviewed with the template',
        )
    return None, None


def _cfn_lint_ignores(metadata, scope, path):
    """cfn-lint's own ``ignore_checks`` would hide our rules in the editor only, without a reason."""
    config = metadata.get("cfn-lint")
    config = config.get("config") if isinstance(config, dict) else None
    ignored = config.get("ignore_checks") if isinstance(config, dict) else None
    out = []
    for index, check in enumerate(ignored if isinstance(ignored, list) else []):
        if isinstance(check, str) and check.startswith(CFN_LINT_PREFIX) and len(check) == 5:
            rule = "BIO" + check[2:]
            out.append(
                Finding(
                    "BIO012",
                    path,
                    (*scope, "Metadata", "cfn-lint", "config", "ignore_checks", index),
                    f"cfn-lint's ignore_checks hides {check} ({rule}) in the editor only, and gives no reason",
                    f"exempt with Metadata.biomage.exemptions: [{{rule: {rule}, reason: ...}}] instead",
                )
            )
    return out


# -- BIO001 ---------------------------------------------------------------------------------------
def _environment_parameter(template, context):
    params = parameters_of(template)
    env = params.get("Environment")
    fix = "declare Parameters.Environment with Type: String and AllowedValues: [development, staging, production]"
    if not isinstance(env, dict):
        return [context.finding("BIO001", ("Parameters",), "the template has no Environment parameter", fix)]
    out = []
    if env.get("Type") != "String":
        out.append(
            context.finding("BIO001", ("Parameters", "Environment", "Type"), f"Type is {env.get('Type')!r}", fix)
        )
    allowed = env.get("AllowedValues")
    if not isinstance(allowed, list) or sorted(str(v) for v in allowed) != sorted(ENVIRONMENTS):
        out.append(
            context.finding(
                "BIO001",
                ("Parameters", "Environment", "AllowedValues"),
                f"AllowedValues is {allowed!r}, not exactly {list(ENVIRONMENTS)}",
                fix,
            )
        )
    # A Default is fine: the roles always pass Environment, so it never picks the environment of a
    # biomage.iac deployment. It must be an environment, though.
    if "Default" in env and str(env["Default"]) not in ENVIRONMENTS:
        out.append(
            context.finding(
                "BIO001",
                ("Parameters", "Environment", "Default"),
                f"Default {env['Default']!r} is not one of {list(ENVIRONMENTS)}",
                "make the Default one of the environments, or remove it",
            )
        )
    return out


# -- BIO002-004 -----------------------------------------------------------------------------------
def _sub_text(node):
    """The string of ``{"Fn::Sub": text}`` or ``{"Fn::Sub": [text, vars]}``, else None."""
    if not isinstance(node, dict) or len(node) != 1 or "Fn::Sub" not in node:
        return None
    arg = node["Fn::Sub"]
    text = arg[0] if isinstance(arg, list) and arg else arg
    return text if isinstance(text, str) else None


def _json_data(text):
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _scalars(node, keys=()):
    """Yield ``(keys, scalar)`` for every scalar outside prose keys. JSON documents in strings (a policy
    as a JSON string in Fn::Sub) are walked as data, so a finding points into them."""
    if isinstance(node, dict):
        text = _sub_text(node)
        parsed = _json_data(text) if text is not None else None
        if parsed is not None:
            yield from _scalars(parsed, (*keys, "Fn::Sub"))
            arg = node["Fn::Sub"]
            if isinstance(arg, list) and len(arg) > 1:
                yield from _scalars(arg[1], (*keys, "Fn::Sub", 1))
            return
        for key, value in node.items():
            if key in PROSE_KEYS:
                continue
            yield from _scalars(value, (*keys, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _scalars(value, (*keys, index))
    else:
        parsed = _json_data(node) if isinstance(node, str) else None
        if parsed is None:
            yield keys, node
        else:
            yield from _scalars(parsed, keys)


def _region_comparisons(template):
    """Keys of the scalars compared with Ref AWS::Region in Fn::Equals (``Fn::Equals: [Ref:
    AWS::Region, us-east-1]`` asks which region this is; it does not hard-code one)."""
    found = set()

    def walk(node, keys):
        if isinstance(node, dict):
            arg = node.get("Fn::Equals") if len(node) == 1 else None
            if isinstance(arg, list) and len(arg) == 2 and {"Ref": "AWS::Region"} in arg:
                found.update((*keys, "Fn::Equals", i) for i, part in enumerate(arg) if isinstance(part, str))
            for key, value in node.items():
                walk(value, (*keys, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*keys, index))

    walk(template, ())
    return found


def _foreign(keys):
    """True where an account id names someone else's account (see FOREIGN_ACCOUNT_KEYS)."""
    names = [k.lower() for k in keys if isinstance(k, str)]
    return bool(names) and (names[0] == "mappings" or any(n in FOREIGN_ACCOUNT_KEYS for n in names))


def _literals(template, context):
    out = []
    compared = _region_comparisons(template)
    for keys, value in _scalars(template):
        if isinstance(value, bool) or value is None:
            continue
        text = str(value)
        out.extend(_account_ids(text, keys, context))
        region = REGION.search(text)
        if region and keys[:1] != ("Mappings",) and keys not in compared:
            out.append(
                context.finding(
                    "BIO003",
                    keys,
                    f"region literal {region.group(0)}",
                    "use ${AWS::Region} (in Fn::Sub) or Ref: AWS::Region; values that differ by region belong "
                    "in Mappings keyed by region (Fn::FindInMap with Ref: AWS::Region)",
                )
            )
        partition = PARTITION.search(text)
        if partition:
            out.append(
                context.finding(
                    "BIO004",
                    keys,
                    f"partition literal {partition.group(0)}",
                    "write arn:${AWS::Partition}: inside Fn::Sub",
                )
            )
    return out


def _account_ids(text, keys, context):
    allow_list = context.allow_list
    unlisted = []
    for account_id in dict.fromkeys(ACCOUNT_ID.findall(text)):
        service = allow_list.service(account_id)
        if service is None:
            unlisted.append(account_id)
        else:
            reason = f"third-party account {account_id}: {service}"
            context.allowed.append(Exemption(context.path, "BIO002", format_keys(keys), reason, allow_list.where))
    if not unlisted:
        return []
    ids = ", ".join(unlisted)
    if _foreign(keys):
        message = f"account id literal {ids} names another account (a principal, a source or a per-region table)"
        fix = (
            f"add {ids} to the reviewed allow-list {allow_list.where} with the service it belongs to "
            "(account_id, service, reference): accounts of other organisations and AWS services are named there"
        )
    else:
        message = f"account id literal {ids}"
        fix = (
            "use ${AWS::AccountId} (in Fn::Sub) or Ref: AWS::AccountId for the account the stack is deployed "
            f"to; an account of another organisation or of an AWS service belongs in {allow_list.where}"
        )
    return [context.finding("BIO002", keys, message, fix)]


# -- policy documents -----------------------------------------------------------------------------
def _documents(value, keys):
    """Yield ``(keys, document, substituted)`` for a policy document value in any form CloudFormation
    accepts: a mapping, a JSON string, Fn::Sub of a JSON string, or Fn::If of those."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield keys, value, False
            return
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                yield from _documents(arg[1], (*keys, "Fn::If", 1))
                yield from _documents(arg[2], (*keys, "Fn::If", 2))
                return
            if key == "Fn::Sub":
                text = _sub_text(value)
                parsed = _json(text) if text is not None else None
                if parsed is not None:
                    yield (*keys, "Fn::Sub"), parsed, True
                    return
        yield keys, None, False
    elif isinstance(value, str):
        yield keys, _json(value), False
    else:
        yield keys, None, False


def _json(text):
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _all_documents(template):
    """Every policy document in the template: under a policy key, or any mapping with a Statement."""

    def walk(node, keys):
        if isinstance(node, dict):
            for key, value in node.items():
                here = (*keys, key)
                if key in POLICY_KEYS:
                    yield from _documents(value, here)
                elif isinstance(value, dict) and "Statement" in value and "Version" in value:
                    yield here, value, False
                else:
                    yield from walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*keys, index))

    yield from walk(template.get("Resources") or {}, ("Resources",))


def _statements(document):
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements or [] if isinstance(s, dict)]


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_star_principal(principal):
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in _as_list(v) for v in principal.values())
    return isinstance(principal, list) and "*" in principal


def _narrowing_condition(condition):
    """The condition key that narrows a Principal "*" to an organisation, account or source, or None.

    It must be required (not ``...IfExists``, not ``ForAllValues:``, which pass when the key is
    absent), positive (not ``StringNotEquals``...) and name something (not only wildcards)."""
    if not isinstance(condition, dict):
        return None
    for operator, block in condition.items():
        op = str(operator).lower().removeprefix("foranyvalue:")
        if op not in NARROWING_OPERATORS or not isinstance(block, dict):
            continue
        for key, given in block.items():
            if str(key).lower() not in NARROWING_KEYS:
                continue
            values = _as_list(given)
            if values and all(not isinstance(v, str) or v.strip("*?") for v in values):
                return str(key)
    return None


def _policies(template, context):
    out = []
    for keys, document, _substituted in _all_documents(template):
        for index, statement in enumerate(_statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            where = (*keys, "Statement", index)
            if _is_star_principal(statement.get("Principal")) and not _narrowing_condition(statement.get("Condition")):
                out.append(
                    context.finding(
                        "BIO008",
                        (*where, "Principal"),
                        'an Allow statement grants to Principal "*" (anyone) and no condition narrows it',
                        "name the principals (an account, role, service or federated provider), or narrow "
                        "the statement with a condition such as aws:PrincipalOrgID, aws:PrincipalAccount, "
                        "aws:SourceAccount or aws:SourceArn",
                    )
                )
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            if any(a in ("*", "*:*") for a in actions) and "*" in resources:
                out.append(
                    context.finding(
                        "BIO009",
                        where,
                        'an Allow statement grants Action "*" on Resource "*" (administrator access)',
                        "list the actions the workload needs and scope Resource to this environment's ARNs",
                    )
                )
    return out


# -- BIO005-007 -----------------------------------------------------------------------------------
def _is_web_identity(statement):
    """An Allow statement whose actions include sts:AssumeRoleWithWebIdentity (the IRSA checks apply
    to these only: an ec2.amazonaws.com or account trust statement next to them is not judged here)."""
    if statement.get("Effect") != "Allow":
        return False
    actions = [a.lower() for a in _as_list(statement.get("Action")) if isinstance(a, str)]
    return any(fnmatch.fnmatchcase(WEB_IDENTITY_ACTION, a) for a in actions)


def _irsa(template, context):
    if not is_irsa(context.path):
        return []
    out = []
    oidc = parameters_of(template).get("OIDCProvider")
    if not isinstance(oidc, dict) or oidc.get("Type") != "String":
        out.append(
            context.finding(
                "BIO005",
                ("Parameters", "OIDCProvider"),
                "an irsa-* template must take the cluster's OIDC issuer as a String parameter OIDCProvider",
                "declare Parameters.OIDCProvider (Type: String); the irsa role fills it from the cluster",
            )
        )
    roles = {k: v for k, v in resources_of(template).items() if v.get("Type") == "AWS::IAM::Role"}
    if not roles:
        out.append(
            context.finding("BIO006", ("Resources",), "an irsa-* template declares no AWS::IAM::Role", "add the role")
        )
    for logical_id, role in sorted(roles.items()):
        trust = (role.get("Properties") or {}).get("AssumeRolePolicyDocument")
        keys = ("Resources", logical_id, "Properties", "AssumeRolePolicyDocument")
        for doc_keys, document, substituted in _documents(trust, keys):
            if document is None:
                out.append(
                    context.finding(
                        "BIO006",
                        doc_keys,
                        "the trust policy cannot be read (it must be a mapping, or a JSON string in Fn::Sub)",
                        "write it as Fn::Sub of a JSON document so ${OIDCProvider} can appear in condition keys",
                    )
                )
                continue
            statements = _statements(document)
            web_identity = [(i, s) for i, s in enumerate(statements) if _is_web_identity(s)]
            if not web_identity:
                out.append(
                    context.finding(
                        "BIO006",
                        doc_keys,
                        "the trust policy of an irsa-* role has no web-identity statement for the cluster",
                        "add an Allow statement for sts:AssumeRoleWithWebIdentity by the cluster's OIDC provider "
                        "(docs/aws-resources.md, IRSA trust)",
                    )
                )
            for index, statement in web_identity:
                out.extend(_trust_statement(statement, context, (*doc_keys, "Statement", index), substituted))
    return out


def _federated_as_written(statement, context):
    """Principal.Federated with literal partitions and (not allow-listed) account ids written the
    intended way: those literals are BIO004/BIO002 findings, not a second, BIO006 one."""
    principal = statement.get("Principal")
    federated = principal.get("Federated") if isinstance(principal, dict) else None
    text = _sub_text(federated) if isinstance(federated, dict) else federated
    if not isinstance(text, str):
        return federated, federated
    normal = PARTITION.sub("arn:${AWS::Partition}:", text)
    normal = ACCOUNT_ID.sub(
        lambda m: m.group(0) if context.allow_list.service(m.group(0)) else "${AWS::AccountId}", normal
    )
    return text, normal


def _trust_statement(statement, context, where, substituted):
    out = []

    def bad(message, fix, rule="BIO006"):
        out.append(context.finding(rule, where, message, fix))

    federated, normal = _federated_as_written(statement, context)
    if normal != OIDC_FEDERATED:
        bad(
            f"the statement does not trust the cluster's OIDC provider (Principal.Federated is {federated!r})",
            f"Principal: {{Federated: {OIDC_FEDERATED}}} inside Fn::Sub",
        )
    if _as_list(statement.get("Action")) != ["sts:AssumeRoleWithWebIdentity"]:
        bad(
            f"Action is {statement.get('Action')!r}",
            "Action: sts:AssumeRoleWithWebIdentity (and nothing else)",
        )
    condition = statement.get("Condition") if isinstance(statement.get("Condition"), dict) else {}
    if not substituted and any(
        "${" in str(key) for block in condition.values() if isinstance(block, dict) for key in block
    ):
        bad(
            "condition keys contain ${...} but the document is not in Fn::Sub, so they are never substituted",
            "wrap the whole trust policy in Fn::Sub (as a JSON string)",
        )
    equals = condition.get("StringEquals") if isinstance(condition.get("StringEquals"), dict) else {}
    like = condition.get("StringLike") if isinstance(condition.get("StringLike"), dict) else {}
    aud = _as_list(equals.get(AUD_KEY))
    if aud != [AUDIENCE]:
        bad(
            f"no StringEquals {AUD_KEY} = {AUDIENCE} condition (found {aud or 'none'})",
            f'add "StringEquals": {{"{AUD_KEY}": "{AUDIENCE}"}}',
        )
    subjects = [("StringEquals", v) for v in _as_list(equals.get(SUB_KEY))]
    subjects += [("StringLike", v) for v in _as_list(like.get(SUB_KEY))]
    if not subjects:
        bad(
            f"no {SUB_KEY} condition: any service account of the cluster could assume the role",
            f'add "StringEquals": {{"{SUB_KEY}": "system:serviceaccount:<namespace>:<service account>"}}',
        )
    for operator, raw_subject in subjects:
        subject = str(raw_subject)
        wildcard = "*" in subject or "?" in subject
        if not SERVICE_ACCOUNT.match(subject):
            bad(
                f"{operator} {SUB_KEY} = {subject!r} is not one service account",
                "use system:serviceaccount:<namespace>:<service account> (a wildcard only in the namespace)",
            )
        if operator == "StringLike" and not wildcard:
            bad(
                f"StringLike {SUB_KEY} = {subject!r} has no wildcard",
                "use StringEquals for an exact service account",
                "BIO007",
            )
        if operator == "StringEquals" and wildcard:
            bad(
                f"StringEquals {SUB_KEY} = {subject!r} contains a wildcard, which StringEquals matches literally",
                "use StringLike, and only where a wildcard is truly needed",
                "BIO007",
            )
    return out


# -- BIO010 ---------------------------------------------------------------------------------------
def family_of(resource_type):
    parts = str(resource_type).split("::")
    if resource_type in HELPER_TYPES:
        return None
    if len(parts) >= 2 and parts[0] == "AWS" and parts[1] in HELPER_FAMILIES:
        return None
    return parts[1] if len(parts) >= 2 and parts[0] == "AWS" else parts[0]


def _resource_family(template, context):
    types = sorted({str(r.get("Type")) for r in resources_of(template).values()})
    if is_irsa(context.path):
        others = [t for t in types if not t.startswith("AWS::IAM::")]
        if others:
            return [
                context.finding(
                    "BIO010",
                    ("Resources",),
                    f"an irsa-* template holds only IAM resources; it also declares {', '.join(others)}",
                    "move those resources to their own template in cf/",
                )
            ]
        return []
    families = sorted({f for f in (family_of(t) for t in types) if f})
    if len(families) > 1:
        return [
            context.finding(
                "BIO010",
                ("Resources",),
                f"resources of several services ({', '.join(families)}) in one template",
                "split the template: one service per template (IAM, KMS, Secrets Manager, Logs, CloudWatch, SSM "
                "and security groups may accompany it), or exempt it with a reason",
            )
        ]
    return []
