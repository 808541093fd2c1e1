# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's CloudFormation template rules (README "AWS resources", "IRSA").

One engine, two callers: the ``biomage.iac.cfn_stacks`` module validates every template with it
before it changes anything, and ``tools/lint_cf.py`` (``make lint``) runs it next to cfn-lint.
Each finding names the file, the place in the template, the rule and the fix.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    TemplateError,
    load_template,
    parameters_of,
    resources_of,
)

ENVIRONMENTS = ("development", "staging", "production")
IRSA_PREFIX = "irsa-"
OIDC_FEDERATED = "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/${OIDCProvider}"
SUB_KEY = "${OIDCProvider}:sub"
AUD_KEY = "${OIDCProvider}:aud"
AUDIENCE = "sts.amazonaws.com"
SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:[^:\s]+:[^:\s*?]+$")

# Service families a template may use next to its one main family.
HELPER_FAMILIES = ("IAM", "KMS", "SecretsManager", "Logs", "CloudWatch", "SSM")
HELPER_TYPES = ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")

ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
REGION = re.compile(
    r"(?<![a-z0-9-])(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso|-isob)?-"
    r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}(?![0-9])"
)
PARTITION = re.compile(r"arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:")
# Prose may mention anything; these keys hold prose, not configuration.
PROSE_KEYS = ("Description", "AssertDescription", "ConstraintDescription", "Metadata")
POLICY_KEYS = ("PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy", "ResourcePolicy", "PolicyText")

RULES = {
    "BIO000": ("template-parses", "The template is valid YAML/JSON with a Resources section."),
    "BIO001": (
        "environment-parameter",
        "Parameter Environment: String, AllowedValues exactly development|staging|production.",
    ),
    "BIO002": ("no-literal-account-id", "No 12-digit account id literal; use ${AWS::AccountId}."),
    "BIO003": ("no-literal-region", "No region literal; use ${AWS::Region}."),
    "BIO004": ("no-literal-partition", "No arn:aws: literal; use arn:${AWS::Partition}:."),
    "BIO005": ("irsa-oidc-parameter", "irsa-* templates take a String parameter OIDCProvider."),
    "BIO006": (
        "irsa-trust",
        "Every trust statement of an irsa-* role: the cluster's OIDC provider, sts:AssumeRoleWithWebIdentity, "
        "a :sub condition on a service account and :aud = sts.amazonaws.com.",
    ),
    "BIO007": ("irsa-sub-operator", "StringLike on :sub only with a wildcard; StringEquals never with one."),
    "BIO008": ("no-public-principal", 'No Allow statement with Principal "*".'),
    "BIO009": ("no-admin-statement", 'No Allow statement with Action "*" on Resource "*".'),
    "BIO010": ("one-resource-family", "One broadly related group of resources per template."),
    "BIO011": ("long-form-intrinsics", "Intrinsic functions in long form (Fn::Sub:, Ref:), not YAML tags (!Sub)."),
}


class Finding:
    """One broken rule in one template."""

    def __init__(self, rule, path, location, message, fix):
        self.rule = rule
        self.path = path
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


def is_irsa(path):
    return os.path.basename(path).startswith(IRSA_PREFIX)


def check_text(text, path):
    """All findings for a template given as text (parse errors included)."""
    short_forms = []
    try:
        template = load_template(text, path, short_forms)
    except TemplateError as exc:
        return [Finding("BIO000", path, "", str(exc).replace(f"{path}: ", "", 1), "fix the template so it parses")]
    findings = check_template(template, path)
    if short_forms:
        tags = sorted({tag for tag, _line in short_forms})
        lines = ", ".join(str(line) for _tag, line in short_forms[:5])
        findings.append(
            Finding(
                "BIO011",
                path,
                f"line {lines}",
                f"short-form tags {', '.join(tags)} (ansible-test sanity and plain YAML parsers cannot read them)",
                "write the long form, e.g. 'Fn::Sub: ...' instead of '!Sub ...', 'Ref: X' instead of '!Ref X'",
            )
        )
    return findings


def check_file(path, label=None):
    label = label or path
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return [Finding("BIO000", label, "", f"cannot read the template: {exc.strerror}", "check the path")]
    return check_text(text, label)


def check_template(template, path):
    """All findings for a parsed template. ``path`` names it (and decides whether it is irsa-*)."""
    findings = []
    for rule in (
        _environment_parameter,
        _literals,
        _irsa,
        _policies,
        _resource_family,
    ):
        findings.extend(rule(template, path))
    return findings


# -- BIO001 ---------------------------------------------------------------------------------------
def _environment_parameter(template, path):
    params = parameters_of(template)
    env = params.get("Environment")
    fix = "declare Parameters.Environment with Type: String and AllowedValues: [development, staging, production]"
    if not isinstance(env, dict):
        return [Finding("BIO001", path, "Parameters", "the template has no Environment parameter", fix)]
    out = []
    if env.get("Type") != "String":
        out.append(Finding("BIO001", path, "Parameters.Environment.Type", f"Type is {env.get('Type')!r}", fix))
    allowed = env.get("AllowedValues")
    if not isinstance(allowed, list) or sorted(str(v) for v in allowed) != sorted(ENVIRONMENTS):
        out.append(
            Finding(
                "BIO001",
                path,
                "Parameters.Environment.AllowedValues",
                f"AllowedValues is {allowed!r}, not exactly {list(ENVIRONMENTS)}",
                fix,
            )
        )
    if "Default" in env:
        out.append(
            Finding(
                "BIO001",
                path,
                "Parameters.Environment.Default",
                "Environment has a default, so a stack could silently deploy into the wrong environment",
                "remove the Default; the roles always pass Environment",
            )
        )
    return out


# -- BIO002-004 -----------------------------------------------------------------------------------
def _walk(node, location=""):
    """Yield ``(location, scalar)`` for every scalar outside prose keys."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PROSE_KEYS:
                continue
            yield from _walk(value, f"{location}.{key}" if location else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{location}[{index}]")
    else:
        yield location, node


def _literals(template, path):
    out = []
    for location, value in _walk(template):
        if isinstance(value, bool) or value is None:
            continue
        text = str(value)
        if ACCOUNT_ID.search(text):
            out.append(
                Finding(
                    "BIO002",
                    path,
                    location,
                    f"account id literal {ACCOUNT_ID.search(text).group(0)}",
                    "use ${AWS::AccountId} (in Fn::Sub) or Ref: AWS::AccountId",
                )
            )
        if REGION.search(text):
            out.append(
                Finding(
                    "BIO003",
                    path,
                    location,
                    f"region literal {REGION.search(text).group(0)}",
                    "use ${AWS::Region} (in Fn::Sub) or Ref: AWS::Region",
                )
            )
        if PARTITION.search(text):
            out.append(
                Finding(
                    "BIO004",
                    path,
                    location,
                    f"partition literal {PARTITION.search(text).group(0)}",
                    "write arn:${AWS::Partition}: inside Fn::Sub",
                )
            )
    return out


# -- policy documents -----------------------------------------------------------------------------
def _documents(value, location):
    """Yield ``(location, document, substituted)`` for a policy document value in any form CloudFormation
    accepts: a mapping, a JSON string, Fn::Sub of a JSON string, or Fn::If of those."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield location, value, False
            return
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                yield from _documents(arg[1], f"{location}.Fn::If[1]")
                yield from _documents(arg[2], f"{location}.Fn::If[2]")
                return
            if key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) and arg else arg
                if isinstance(text, str):
                    parsed = _json(text)
                    if parsed is not None:
                        yield f"{location}.Fn::Sub", parsed, True
                        return
        yield location, None, False
    elif isinstance(value, str):
        yield location, _json(value), False
    else:
        yield location, None, False


def _json(text):
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _all_documents(template):
    """Every policy document in the template: under a policy key, or any mapping with a Statement."""

    def walk(node, location):
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{location}.{key}" if location else str(key)
                if key in POLICY_KEYS:
                    yield from _documents(value, here)
                elif isinstance(value, dict) and "Statement" in value and "Version" in value:
                    yield here, value, False
                else:
                    yield from walk(value, here)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{location}[{index}]")

    yield from walk(template.get("Resources") or {}, "Resources")


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


def _policies(template, path):
    out = []
    for location, document, _substituted in _all_documents(template):
        for index, statement in enumerate(_statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            where = f"{location}.Statement[{index}]"
            if _is_star_principal(statement.get("Principal")):
                out.append(
                    Finding(
                        "BIO008",
                        path,
                        f"{where}.Principal",
                        'an Allow statement grants to Principal "*" (anyone)',
                        "name the principals (an account, role, service or federated provider)",
                    )
                )
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            if any(a in ("*", "*:*") for a in actions) and "*" in resources:
                out.append(
                    Finding(
                        "BIO009",
                        path,
                        where,
                        'an Allow statement grants Action "*" on Resource "*" (administrator access)',
                        "list the actions the workload needs and scope Resource to this environment's ARNs",
                    )
                )
    return out


# -- BIO005-007 -----------------------------------------------------------------------------------
def _irsa(template, path):
    if not is_irsa(path):
        return []
    out = []
    oidc = parameters_of(template).get("OIDCProvider")
    if not isinstance(oidc, dict) or oidc.get("Type") != "String":
        out.append(
            Finding(
                "BIO005",
                path,
                "Parameters.OIDCProvider",
                "an irsa-* template must take the cluster's OIDC issuer as a String parameter OIDCProvider",
                "declare Parameters.OIDCProvider (Type: String); the irsa role fills it from the cluster",
            )
        )
    roles = {k: v for k, v in resources_of(template).items() if v.get("Type") == "AWS::IAM::Role"}
    if not roles:
        out.append(
            Finding("BIO006", path, "Resources", "an irsa-* template declares no AWS::IAM::Role", "add the role")
        )
    for logical_id, role in sorted(roles.items()):
        trust = (role.get("Properties") or {}).get("AssumeRolePolicyDocument")
        location = f"Resources.{logical_id}.Properties.AssumeRolePolicyDocument"
        for doc_location, document, substituted in _documents(trust, location):
            if document is None:
                out.append(
                    Finding(
                        "BIO006",
                        path,
                        doc_location,
                        "the trust policy cannot be read (it must be a mapping, or a JSON string in Fn::Sub)",
                        "write it as Fn::Sub of a JSON document so ${OIDCProvider} can appear in condition keys",
                    )
                )
                continue
            statements = _statements(document)
            if not statements:
                out.append(Finding("BIO006", path, doc_location, "the trust policy has no statements", "add one"))
            for index, statement in enumerate(statements):
                out.extend(_trust_statement(statement, path, f"{doc_location}.Statement[{index}]", substituted))
    return out


def _trust_statement(statement, path, where, substituted):
    out = []

    def bad(message, fix, rule="BIO006"):
        out.append(Finding(rule, path, where, message, fix))

    federated = (
        (statement.get("Principal") or {}).get("Federated") if isinstance(statement.get("Principal"), dict) else None
    )
    if isinstance(federated, dict) and "Fn::Sub" in federated:
        federated = federated["Fn::Sub"]
    if statement.get("Effect") != "Allow" or federated != OIDC_FEDERATED:
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


def _resource_family(template, path):
    types = sorted({str(r.get("Type")) for r in resources_of(template).values()})
    if is_irsa(path):
        others = [t for t in types if not t.startswith("AWS::IAM::")]
        if others:
            return [
                Finding(
                    "BIO010",
                    path,
                    "Resources",
                    f"an irsa-* template holds only IAM resources; it also declares {', '.join(others)}",
                    "move those resources to their own template in cf/",
                )
            ]
        return []
    families = sorted({f for f in (family_of(t) for t in types) if f})
    if len(families) > 1:
        return [
            Finding(
                "BIO010",
                path,
                "Resources",
                f"resources of several services ({', '.join(families)}) in one template",
                "split the template: one service per template (IAM, KMS, Secrets Manager, Logs, CloudWatch, SSM "
                "and security groups may accompany it)",
            )
        ]
    return []
