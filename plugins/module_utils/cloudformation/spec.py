# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired stacks: read every template, apply the template rules, check parameters against
their declarations, add the ownership tags and resolve exports/imports into a dependency graph.

No AWS call; :func:`prepare` reports every problem at once (:class:`ValidationFailed`) or returns
the :class:`StackSpec` list the planner works on.
"""

from __future__ import annotations

import re

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import (
    TemplateError,
    ValidationFailed,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.iam_analysis import analyse_template
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.rules import AllowLists, review_text
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    MAX_TEMPLATE_BODY_BYTES,
    MAX_TEMPLATE_URL_BYTES,
    exports_of,
    imports_of,
    load_template,
    names_match,
    parameters_of,
    required_capabilities,
)

# the ownership tags every stack gets (orphans are found by them)
OWNER_TAG = "biomage:managed-by"
OWNER_VALUE = "biomage.iac"
ENVIRONMENT_TAG = "biomage:environment"
GROUP_TAG = "biomage:group"
TEMPLATE_TAG = "biomage:template"
RESERVED_TAG_PREFIXES = ("biomage:", "aws:")

ALLOWED_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


class StackSpec:
    """One desired stack after validation."""

    def __init__(self, *, name, label, body, template, parameters, noecho, tags, capabilities, depends_on, deploy):
        self.name = name
        self.label = label
        self.body = body
        self.template = template
        self.parameters = parameters
        self.noecho = noecho
        self.tags = tags
        self.capabilities = capabilities
        self.depends_on = set(depends_on)
        self.deploy = deploy
        # over MAX_TEMPLATE_BODY_BYTES: deployed through S3 (TemplateURL)
        self.large = len(body.encode("utf-8")) > MAX_TEMPLATE_BODY_BYTES
        self.exports = []
        self.imports = []
        self.external_imports = []
        self.exemptions = []  # rules.Exemption: the rule findings this template is exempt from, and why


def _parameter_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_parameter_value(v) for v in value)
    if value is None:
        return ""
    return str(value)


def _check_parameter(name, declaration, value):
    """Problems of one effective parameter value against its declaration (as CloudFormation checks)."""
    problems = []
    ptype = str(declaration.get("Type", "String"))
    allowed = declaration.get("AllowedValues")
    if (
        isinstance(allowed, list)
        and ptype in ("String", "Number")
        and value not in [_parameter_value(v) for v in allowed]
    ):
        problems.append(f"{name}={value!r} is not one of {allowed}")
    pattern = declaration.get("AllowedPattern")
    if isinstance(pattern, str) and ptype == "String":
        try:
            if not re.fullmatch(pattern, value):
                problems.append(f"{name}={value!r} does not match AllowedPattern {pattern}")
        except re.error:
            pass
    if ptype == "Number":
        try:
            number = float(value)
        except ValueError:
            problems.append(f"{name}={value!r} is not a number")
        else:
            for key, test in (("MinValue", lambda lim: number < lim), ("MaxValue", lambda lim: number > lim)):
                if key in declaration and test(float(declaration[key])):
                    problems.append(f"{name}={value} is outside {key} {declaration[key]}")
    if ptype == "String":
        if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
            problems.append(f"{name} is shorter than MinLength {declaration['MinLength']}")
        if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
            problems.append(f"{name} is longer than MaxLength {declaration['MaxLength']}")
    return problems


def prepare(
    stacks,
    environment,
    group,
    region,
    *,
    apply_rules=True,
    read_file=None,
    third_party_accounts=None,
    template_bucket=None,
):
    """Validate the desired stacks; return ``[StackSpec]`` or raise ValidationFailed with every problem.

    ``stacks``: dicts with name, template (path) or template_body, template_label, parameters, tags,
    capabilities, depends_on, deploy. ``third_party_accounts``: the allow-list file of the template
    rules (default: the nearest ``third-party-accounts.yaml`` above each template). ``template_bucket``:
    the S3 bucket templates over 51,200 bytes are uploaded to (without one, such a template is a problem).
    """
    problems = []
    specs = []
    seen = set()
    read_file = read_file or _read_file
    allow_lists = AllowLists(third_party_accounts)
    for index, item in enumerate(stacks):
        name = item.get("name") or ""
        label = item.get("template_label") or item.get("template") or f"stacks[{index}]"
        where = f"stack {name or index} ({label})"
        if not STACK_NAME.match(name):
            problems.append(f"{where}: invalid stack name {name!r} (letters, digits and '-', starting with a letter)")
            continue
        if name in seen:
            problems.append(f"{where}: stack {name} is listed twice")
            continue
        seen.add(name)
        exemptions = []
        allow_list = allow_lists.for_template(item.get("template"))
        body, template = _read_template(
            item, label, where, read_file, apply_rules, problems, allow_list, exemptions, template_bucket
        )
        if template is None:
            continue
        parameters = _effective_parameters(item, label, template, problems)
        if apply_rules:
            # what the template's IAM policies grant, resolved with this stack's values (docs/iam-analysis.md)
            findings = analyse_template(template, label, parameters, region=region, stack_name=name)
            if findings:
                problems.extend(str(f) for f in findings)
                continue
        spec = StackSpec(
            name=name,
            label=label,
            body=body,
            template=template,
            parameters=parameters,
            noecho=_noecho(template),
            tags=_tags(item, where, label, environment, group, problems),
            capabilities=_capabilities(item, where, template, problems),
            depends_on=item.get("depends_on") or [],
            deploy=item.get("deploy", True) is not False,
        )
        variables = dict(parameters)
        variables.update({"AWS::StackName": name, "AWS::Region": region or "*"})
        spec.exports = exports_of(template, variables)
        spec.imports = imports_of(template, variables)
        spec.exemptions = exemptions
        specs.append(spec)
    if apply_rules:
        problems.extend(str(f) for f in allow_lists.findings)
    _link(specs, problems)
    if problems:
        raise ValidationFailed(
            f"{len(problems)} problem(s) in the templates or their inputs; nothing was changed", problems=problems
        )
    return specs


def _read_template(
    item, label, where, read_file, apply_rules, problems, allow_list=None, exemptions=None, template_bucket=None
):
    """``(body, template)``; ``(body or None, None)`` after adding the problem to ``problems``. The
    rules' exemptions that applied are added to ``exemptions``."""
    if item.get("template_body") is not None:
        body = item["template_body"]
    elif item.get("template"):
        try:
            body = read_file(item["template"])
        except OSError as exc:
            problems.append(f"{where}: cannot read {item['template']}: {exc.strerror or exc}")
            return None, None
    else:
        problems.append(f"{where}: give template (a path) or template_body")
        return None, None
    size = len(body.encode("utf-8"))
    if size > MAX_TEMPLATE_URL_BYTES:
        problems.append(
            f"{label}: the template is {size} bytes; CloudFormation takes at most {MAX_TEMPLATE_URL_BYTES} "
            "even from S3. Fix: split it into several templates (one group of resources each)."
        )
        return body, None
    if size > MAX_TEMPLATE_BODY_BYTES and not template_bucket:
        problems.append(
            f"{label}: the template is {size} bytes; CloudFormation takes at most {MAX_TEMPLATE_BODY_BYTES} "
            "in a request body, a larger one only from S3. Fix: give an S3 bucket for large templates "
            "(module option template_bucket; in the roles aws_resources_template_bucket, irsa_template_bucket), "
            "which is created if missing with template_bucket_create, or split the template."
        )
        return body, None
    if apply_rules:
        review = review_text(body, label, allow_list)
        if review.findings:
            problems.extend(str(f) for f in review.findings)
            return body, None
        if exemptions is not None:
            exemptions.extend(review.exemptions)
    try:
        return body, load_template(body, label)
    except TemplateError as exc:
        problems.append(str(exc))
        return body, None


def _effective_parameters(item, label, template, problems):
    """The value of every declared parameter (given, else its default), each checked."""
    declared = parameters_of(template)
    given = {k: _parameter_value(v) for k, v in (item.get("parameters") or {}).items()}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        problems.append(
            f"{label}: parameter(s) {', '.join(unknown)} are not declared in the template "
            f"(declared: {', '.join(sorted(declared)) or 'none'}). Fix: remove them or declare them."
        )
    effective = {}
    for pname, raw_declaration in sorted(declared.items()):
        declaration = raw_declaration if isinstance(raw_declaration, dict) else {}
        if pname in given:
            effective[pname] = given[pname]
        elif "Default" in declaration:
            effective[pname] = _parameter_value(declaration["Default"])
        else:
            problems.append(f"{label}: parameter {pname} has no default and no value. Fix: pass it in parameters.")
            continue
        problems.extend(f"{label}: parameter {p}" for p in _check_parameter(pname, declaration, effective[pname]))
    return effective


def _noecho(template):
    declared = parameters_of(template)
    return {p for p, d in declared.items() if isinstance(d, dict) and str(d.get("NoEcho", "")).lower() == "true"}


def _tags(item, where, label, environment, group, problems):
    """The user's tags plus the ownership tags (the user may not set those)."""
    user_tags = {str(k): str(v) for k, v in (item.get("tags") or {}).items()}
    reserved = sorted(k for k in user_tags if k.startswith(RESERVED_TAG_PREFIXES))
    if reserved:
        problems.append(f"{where}: tag keys {', '.join(reserved)} are reserved (biomage:*, aws:*). Fix: rename them.")
    tags = dict(user_tags)
    tags.update({OWNER_TAG: OWNER_VALUE, ENVIRONMENT_TAG: environment, GROUP_TAG: group, TEMPLATE_TAG: label})
    return tags


def _capabilities(item, where, template, problems):
    """The capabilities the template needs plus those asked for."""
    extra_caps = list(item.get("capabilities") or [])
    bad_caps = sorted(set(extra_caps) - set(ALLOWED_CAPABILITIES))
    if bad_caps:
        problems.append(
            f"{where}: unknown capabilities {', '.join(bad_caps)} (allowed: {', '.join(ALLOWED_CAPABILITIES)})"
        )
    return sorted(set(required_capabilities(template)) | set(extra_caps))


def _link(specs, problems):
    """Dependencies from depends_on and from imports of another spec's exports; refuse cycles."""
    by_name = {s.name: s for s in specs}
    for spec in specs:
        for dep in sorted(spec.depends_on):
            if dep not in by_name:
                problems.append(f"{spec.label}: depends_on names {dep}, which is not a stack of this run")
        for wanted in spec.imports:
            producers = [o.name for o in specs if o is not spec and any(names_match(wanted, e) for e in o.exports)]
            if producers:
                spec.depends_on.update(producers)
            else:
                spec.external_imports.append(wanted)
        if spec.deploy:
            skipped = sorted(d for d in spec.depends_on if d in by_name and not by_name[d].deploy)
            if skipped:
                problems.append(f"{spec.label}: depends on {', '.join(skipped)}, which is not deployed in this run")
    cycle = _find_cycle({s.name: s.depends_on & set(by_name) for s in specs})
    if cycle:
        problems.append(f"stacks depend on each other in a cycle: {' -> '.join(cycle)}. Fix: break the import cycle.")


def _read_file(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _find_cycle(graph):
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
