# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading CloudFormation templates: YAML (long or short intrinsic form) or JSON, and the facts the
planner needs from them (parameters, capabilities, exports, imports, resources).

No AWS calls here; everything works on the template text alone. A template that cannot be read
raises :class:`TemplateError` (defined in :mod:`.errors`, importable from here).
"""

from __future__ import annotations

import fnmatch
import json
import re

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import TemplateError

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

# CloudFormation accepts template bodies up to this size in a request (bigger ones need S3).
MAX_TEMPLATE_BODY_BYTES = 51200
# and templates up to this size from S3 (TemplateURL)
MAX_TEMPLATE_URL_BYTES = 1048576

SHORT_FORM_TAGS = (
    "Ref",
    "Condition",
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
    "ToJsonString",
    "Length",
)

IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


if HAS_YAML:
    # bounded (aliases, depth, expanded size: module_utils/safe_yaml.py); .ci.yaml is read with it too
    class _Loader(safe_yaml.limited_loader(yaml.SafeLoader)):
        """SafeLoader that understands CloudFormation short-form tags, keeps YAML timestamps as
        strings (CloudFormation does) and refuses duplicate keys (CloudFormation keeps one silently)."""

        short_form_tags_seen = None

        def construct_mapping(self, node, deep=False):
            if not isinstance(node, yaml.MappingNode):
                return super().construct_mapping(node, deep=deep)
            seen = {}
            for key_node, _value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (dict, list)):
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        "a mapping key cannot be an intrinsic function (use a JSON string inside Fn::Sub instead)",
                        key_node.start_mark,
                    )
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    def _timestamp_as_string(loader, node):
        return loader.construct_scalar(node)

    def _make_tag_constructor(name):
        def construct(loader, node):
            if loader.short_form_tags_seen is not None:
                loader.short_form_tags_seen.append((f"!{name}", node.start_mark.line + 1))
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            if name == "Ref":
                return {"Ref": value}
            if name == "Condition":
                return {"Condition": value}
            if name == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
            return {f"Fn::{name}": value}

        return construct

    _Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)
    for _tag in SHORT_FORM_TAGS:
        _Loader.add_constructor(f"!{_tag}", _make_tag_constructor(_tag))


def load_yaml(text, source="<template>", short_forms=None, what="template"):
    """Parse CloudFormation-syntax YAML or JSON (short-form tags become their long form, duplicate keys
    are refused) into Python data; raise TemplateError naming ``source``.

    Used for templates and for other files written in template syntax (a repository's ``.ci.yaml``).
    When ``short_forms`` is a list, every short-form tag found is appended as ``(tag, line)``.
    """
    if not HAS_YAML:
        raise TemplateError(f"{source}: PyYAML is required to read templates ({YAML_IMPORT_ERROR})")
    if not text or not text.strip():
        raise TemplateError(f"{source}: the {what} is empty")
    # the size limit first, as safe_yaml.load does: a 10 MB file is refused before the parser reads it
    safe_yaml.check_size(text, source)
    found = []
    try:
        data = safe_yaml.parse(_Loader, text, source, _Loader.get_single_data, lambda loader: _start(loader, found))
    except yaml.YAMLError as exc:
        raise _syntax_error(source, exc) from exc
    if short_forms is not None:
        short_forms.extend(found)
    return data


def _start(loader, found):
    """A fresh list of short-form tags for each reading (safe_yaml.parse may read the text twice)."""
    found.clear()
    loader.short_form_tags_seen = found


def _syntax_error(source, exc):
    """A TemplateError for a YAML error, with the parser's line and column (1-based) when it gave them."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return TemplateError(f"{source}: not valid YAML/JSON: {' '.join(str(exc).split())}")
    what = "; ".join(" ".join(str(part).split()) for part in (exc.context, exc.problem) if part)
    line, column = mark.line + 1, mark.column + 1
    return TemplateError(
        f"{source}: not valid YAML/JSON at line {line}, column {column}: {what}",
        line=line,
        column=column,
        reason=what,
    )


def load_template(text, source="<template>", short_forms=None):
    """Parse a template body (YAML or JSON) into a dict; raise TemplateError naming ``source``.

    When ``short_forms`` is a list, every short-form tag found is appended as ``(tag, line)``.
    """
    data = load_yaml(text, source, short_forms)
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: a template must be a mapping with a Resources section")
    if not isinstance(data.get("Resources"), dict) or not data["Resources"]:
        raise TemplateError(f"{source}: the template has no Resources (add at least one resource)")
    return data


def canonical(value):
    """A stable JSON text of a parsed template (for semantic comparison)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def parameters_of(template):
    """``{name: declaration}`` of the template's Parameters."""
    params = template.get("Parameters") or {}
    return params if isinstance(params, dict) else {}


def resources_of(template):
    """``{logical_id: resource}`` of the template's Resources (only well-formed entries)."""
    return {k: v for k, v in (template.get("Resources") or {}).items() if isinstance(v, dict)}


def required_capabilities(template):
    """The capabilities CloudFormation will ask for to deploy this template, sorted."""
    caps = set()
    for resource in resources_of(template).values():
        rtype = str(resource.get("Type", ""))
        if rtype.startswith("AWS::IAM::"):
            caps.add("CAPABILITY_IAM")
            name_property = IAM_NAME_PROPERTIES.get(rtype)
            if name_property and name_property in (resource.get("Properties") or {}):
                caps.add("CAPABILITY_NAMED_IAM")
        if rtype in ("AWS::Serverless::Application", "AWS::CloudFormation::Stack"):
            caps.add("CAPABILITY_AUTO_EXPAND")
    if template.get("Transform"):
        caps.add("CAPABILITY_AUTO_EXPAND")
    return sorted(caps)


_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


def resolve_name(value, variables):
    """Resolve a name written as a string, Ref, Fn::Sub or Fn::Join against ``variables``.

    Returns a glob pattern: anything that cannot be resolved becomes ``*``.
    """
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return variables.get(arg, "*")
        if key == "Fn::Sub":
            text, local = (arg[0], arg[1] if len(arg) > 1 else {}) if isinstance(arg, list) else (arg, {})
            if not isinstance(text, str):
                return "*"
            scope = dict(variables)
            for name, sub_value in (local or {}).items():
                scope[name] = resolve_name(sub_value, variables)
            return _SUB_VAR.sub(lambda m: scope.get(m.group(1), "*"), text).replace("${!", "${")
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            return str(arg[0]).join(resolve_name(part, variables) for part in arg[1])
    return "*"


def exports_of(template, variables):
    """Glob patterns of the export names the template's Outputs declare."""
    names = []
    for output in (template.get("Outputs") or {}).values():
        if isinstance(output, dict) and isinstance(output.get("Export"), dict) and "Name" in output["Export"]:
            names.append(resolve_name(output["Export"]["Name"], variables))
    return names


def imports_of(template, variables):
    """Glob patterns of the export names the template imports with Fn::ImportValue."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::ImportValue":
                    found.append(resolve_name(value, variables))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template.get("Resources"))
    walk(template.get("Outputs"))
    walk(template.get("Conditions"))
    return sorted(set(found))


def names_match(pattern_a, pattern_b):
    """True when two glob patterns from ``resolve_name`` can denote the same name."""
    if pattern_a == pattern_b:
        return True
    return fnmatch.fnmatchcase(pattern_a, pattern_b) or fnmatch.fnmatchcase(pattern_b, pattern_a)


def evaluate_condition(expression, parameters, conditions, _depth=0):
    """Evaluate a Conditions entry against parameter values; None when it cannot be decided."""
    if _depth > 20:
        return None
    if isinstance(expression, bool):
        return expression
    if not isinstance(expression, dict) or len(expression) != 1:
        return None
    ((key, arg),) = expression.items()
    if key == "Condition":
        return evaluate_condition(conditions.get(arg), parameters, conditions, _depth + 1)
    if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
        left, right = (_value_of(part, parameters) for part in arg)
        if left is None or right is None:
            return None
        return left == right
    if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
        inner = evaluate_condition(arg[0], parameters, conditions, _depth + 1)
        return None if inner is None else not inner
    if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
        values = [evaluate_condition(part, parameters, conditions, _depth + 1) for part in arg]
        if key == "Fn::And":
            if any(v is False for v in values):
                return False
            return None if any(v is None for v in values) else True
        if any(v is True for v in values):
            return True
        return None if any(v is None for v in values) else False
    return None


def _value_of(node, parameters):
    if isinstance(node, bool):
        return str(node).lower()
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, dict) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref" and arg in parameters:
            return parameters[arg]
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            parts = arg[1]
            if isinstance(parts, dict) and list(parts) == ["Ref"] and parts["Ref"] in parameters:
                # a CommaDelimitedList parameter joined back into one string
                return str(arg[0]).join(parameters[parts["Ref"]].split(","))
            if isinstance(parts, list):
                values = [_value_of(p, parameters) for p in parts]
                if all(v is not None for v in values):
                    return str(arg[0]).join(values)
        if key == "Fn::Sub" and isinstance(arg, str):
            missing = [m for m in _SUB_VAR.findall(arg) if m not in parameters]
            if not missing:
                return _SUB_VAR.sub(lambda m: parameters[m.group(1)], arg)
    return None


def planned_resources(template, parameters):
    """``[(logical_id, type, included)]`` where included is True, False or None (undecidable)."""
    conditions = template.get("Conditions") or {}
    out = []
    for logical_id, resource in sorted(resources_of(template).items()):
        condition = resource.get("Condition")
        included = True
        if condition:
            included = evaluate_condition({"Condition": condition}, parameters, conditions)
        out.append((logical_id, str(resource.get("Type", "?")), included))
    return out
