# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Objects checked against their CustomResourceDefinition's schema, as the API server would.

The OpenAPI v3 schema of a CRD at the pinned Flux version (``tools/crds/generated``) becomes a JSON
Schema with the API server's strict field validation (:func:`structural`): unknown fields are
refused, ``x-kubernetes-int-or-string`` takes an integer or a string,
``x-kubernetes-preserve-unknown-fields`` keeps an object open, ``x-kubernetes-embedded-resource``
requires ``apiVersion`` and ``kind``, ``nullable`` admits null, ``x-kubernetes-list-type`` set/map
lists have no duplicates, and the ``x-kubernetes-validations`` rules written in the small part of CEL
the Flux CRDs use are evaluated (a rule outside that part is skipped, never guessed).
:func:`schema_findings` turns the errors into :class:`.documents.Finding` objects with a fix for
each case. Offline: no cluster, no network.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.biomage.iac.plugins.module_utils.flux.documents import (
    Finding,
    ReleaseError,
    field_path,
    get_path,
    has_placeholder,
    load_documents,
)

try:
    import jsonschema
    from jsonschema import validators as jsonschema_validators

    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by CrdSchemas
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR = exc

# The metadata of every object, as the API server knows it (CRD schemas only say "object").
OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            },
        },
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": {"type": "string"},
    },
}
# core/v1 Namespace: no CRD, its API shape is Kubernetes' own.
NAMESPACE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": OBJECT_META,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}},
        },
        "status": {"type": "object"},
    },
}


# --- CEL: the part the Flux CRDs' x-kubernetes-validations use ------------------------------------

_CEL_TOKEN = re.compile(
    r"\s*(?:(?P<op>\|\||&&|==|!=|!|\(|\))|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<num>-?[0-9]+))"
)


class _CelUnsupported(Exception):
    """The rule uses CEL this evaluator does not know: it is skipped, never guessed."""


class _CelUnknown(Exception):
    """The rule reads a field that is absent and has no default: left to the API server."""


_MISSING = object()


def _cel_tokens(rule):
    tokens, pos = [], 0
    rule = rule.strip()
    while pos < len(rule):
        match = _CEL_TOKEN.match(rule, pos)
        if not match or match.end() == pos:
            raise _CelUnsupported(rule)
        pos = match.end()
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
    return tokens


class _Cel:
    """Evaluates ``has(self.a.b)``, ``self.a == 'x'``, ``!=``, ``!``, ``&&``, ``||`` and parentheses.

    The rule is parsed whole first, then evaluated with CEL's error semantics: reading an absent
    field (without a default) is an error, and ``||``/``&&`` are commutative over errors
    (``error || true`` is true, ``error && false`` is false).
    """

    def __init__(self, rule, instance, schema):
        self.tokens = _cel_tokens(rule)
        self.pos = 0
        self.tree = self._or()
        if self.pos != len(self.tokens):
            raise _CelUnsupported("trailing tokens")
        self.instance = instance
        self.schema = schema

    def evaluate(self):
        value = self._eval(self.tree)
        if not isinstance(value, bool):
            raise _CelUnsupported("not a boolean rule")
        return value

    # parsing

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def _take(self, expected=None):
        token = self._peek()
        if token[0] is None or (expected is not None and token[1] != expected):
            raise _CelUnsupported(f"expected {expected}")
        self.pos += 1
        return token

    def _or(self):
        operands = [self._and()]
        while self._peek() == ("op", "||"):
            self._take("||")
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else ("or", operands)

    def _and(self):
        operands = [self._unary()]
        while self._peek() == ("op", "&&"):
            self._take("&&")
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else ("and", operands)

    def _unary(self):
        if self._peek() == ("op", "!"):
            self._take("!")
            return ("not", self._unary())
        left = self._primary()
        if self._peek() in (("op", "=="), ("op", "!=")):
            operator = self._take()[1]
            return (operator, left, self._primary())
        return left

    def _primary(self):
        kind, text = self._take()
        if (kind, text) == ("op", "("):
            node = self._or()
            self._take(")")
            return node
        if kind == "str":
            return ("literal", text[1:-1].replace("\\'", "'").replace('\\"', '"'))
        if kind == "num":
            return ("literal", int(text))
        if kind == "name" and text in ("true", "false"):
            return ("literal", text == "true")
        if kind == "name" and text == "has":
            self._take("(")
            kind, path = self._take()
            self._take(")")
            if kind != "name" or not path.startswith("self."):
                raise _CelUnsupported("has() of a non-field")
            return ("has", path)
        if kind == "name" and (text == "self" or text.startswith("self.")):
            return ("field", text)
        raise _CelUnsupported(text)

    # evaluation

    def _eval(self, node):
        op = node[0]
        if op == "literal":
            return node[1]
        if op in ("has", "field"):
            return self._lookup(node[1], presence=op == "has")
        if op == "not":
            value = self._eval(node[1])
            if not isinstance(value, bool):
                raise _CelUnsupported("! of a non-boolean")
            return not value
        if op in ("==", "!="):
            left, right = self._eval(node[1]), self._eval(node[2])
            return (left == right) if op == "==" else (left != right)
        absorbing = op == "or"  # true absorbs ||, false absorbs &&
        unknown = False
        for operand in node[1]:
            try:
                value = self._eval(operand)
            except _CelUnknown:
                unknown = True
                continue
            if not isinstance(value, bool):
                raise _CelUnsupported(f"{op} of a non-boolean")
            if value is absorbing:
                return value
        if unknown:
            raise _CelUnknown()
        return not absorbing

    def _lookup(self, path, presence=False):
        names = path.split(".")[1:]
        node, schema = self.instance, self.schema
        for index, name in enumerate(names):
            last = index == len(names) - 1
            if not isinstance(node, dict):
                raise _CelUnknown()
            schema = (schema or {}).get("properties", {}).get(name, {})
            value = node.get(name, _MISSING)
            if value is _MISSING and "default" in schema:
                value = schema["default"]
            if presence and last:
                return value is not _MISSING
            if value is _MISSING:
                raise _CelUnknown()
            node = value
        return node


def _cel_rules(validator, rules, instance, schema):
    if not isinstance(instance, dict):
        return
    for rule in rules:
        text = rule.get("rule", "")
        try:
            holds = _Cel(text, instance, schema).evaluate()
        except (_CelUnsupported, _CelUnknown):
            continue
        if not holds:
            error = jsonschema.ValidationError(rule.get("message") or f"fails the rule {text}")
            error.cel_rule = text
            yield error


def _list_type(validator, list_type, instance, schema):
    if not isinstance(instance, list):
        return
    if list_type == "set":
        seen = []
        for index, item in enumerate(instance):
            if item in seen:
                yield jsonschema.ValidationError(f"repeats {item!r} (a set)", path=[index])
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = {}
        for index, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            key = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
            if key in seen:
                named = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
                yield jsonschema.ValidationError(
                    f"repeats the entry {named} of item [{seen[key]}] (a map keyed by {', '.join(keys)})", path=[index]
                )
            seen.setdefault(key, index)


def _embedded_resource(validator, embedded, instance, schema):
    if not embedded or not isinstance(instance, dict):
        return
    for key in ("apiVersion", "kind"):
        if not instance.get(key):
            yield jsonschema.ValidationError(f"{key!r} is required in an embedded object", validator_value=[key])


def _validator_class():
    return jsonschema_validators.extend(
        jsonschema.Draft4Validator,  # OpenAPI v3.0 schemas: draft 4 semantics (boolean exclusiveMinimum)
        {
            "x-kubernetes-validations": _cel_rules,
            "x-kubernetes-list-type": _list_type,
            "x-kubernetes-embedded-resource": _embedded_resource,
        },
    )


def structural(node, top=False):
    """A CRD's OpenAPI v3 schema as JSON Schema with the API server's strict field validation."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = structural(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [structural(sub) for sub in value]
        else:
            out[key] = value
    if out.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("x-kubernetes-embedded-resource"):
        properties = out.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties["metadata"] = OBJECT_META
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if top:
        out.setdefault("properties", {})["metadata"] = OBJECT_META
    return out


@dataclass
class _Crd:
    file: str
    group: str
    kind: str
    scope: str
    versions: dict  # name -> {"served", "storage", "deprecated", "schema"}


class CrdSchemas:
    """The CRDs of a folder (``tools/crds/generated``), by API group and kind."""

    def __init__(self, folder):
        self.folder = Path(folder)
        if not HAS_JSONSCHEMA:
            raise ReleaseError(
                f"jsonschema is required to check releases ({JSONSCHEMA_IMPORT_ERROR})",
                fix="install the collection's Python requirements (requirements.txt)",
            )
        files = sorted(self.folder.glob("*.yaml")) if self.folder.is_dir() else []
        if not files:
            raise ReleaseError(
                f"no CustomResourceDefinitions in {self.folder}",
                fix="run from a checkout of the repository (tools/crds/generated), or give the folder of the pinned "
                "Flux CRDs",
            )
        self._crds: dict[tuple[str, str], _Crd] = {}
        self._validators: dict = {}
        for path in files:
            for doc in load_documents(path.read_text(encoding="utf-8")):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc.get("spec") or {}
                versions = {
                    v["name"]: {
                        "served": bool(v.get("served")),
                        "storage": bool(v.get("storage")),
                        "deprecated": bool(v.get("deprecated")),
                        "schema": get_path(v, "schema", "openAPIV3Schema") or {},
                    }
                    for v in spec.get("versions") or []
                }
                crd = _Crd(
                    path.name, spec.get("group", ""), get_path(spec, "names", "kind"), spec.get("scope"), versions
                )
                self._crds[(crd.group, crd.kind)] = crd

    def crd(self, group, kind):
        return self._crds.get((group, kind))

    def served(self, group, kind):
        """The served, not deprecated versions of a kind (None: no CRD here)."""
        if (group, kind) == ("", "Namespace"):
            return ("v1",)
        crd = self.crd(group, kind)
        if crd is None:
            return None
        return tuple(name for name, v in crd.versions.items() if v["served"] and not v["deprecated"])

    def schema_name(self, group, version, kind):
        return f"the {group + '/' if group else ''}{version} {kind} schema"

    def validator(self, group, version, kind):
        key = (group, version, kind)
        if key not in self._validators:
            if (group, kind) == ("", "Namespace"):
                schema = NAMESPACE_SCHEMA
            else:
                crd = self.crd(group, kind)
                if crd is None or version not in crd.versions:
                    return None
                schema = structural(crd.versions[version]["schema"], top=True)
            self._validators[key] = _validator_class()(schema)
        return self._validators[key]


def values_validator(schema):
    """A validator of a chart's ``values.schema.json``, in the JSON Schema draft the file names."""
    return jsonschema_validators.validator_for(schema)(schema)


_SCHEMA_CACHE: dict = {}


def crd_schemas(folder) -> CrdSchemas:
    """:class:`CrdSchemas` of ``folder``, read once per process."""
    key = str(Path(folder).resolve())
    if key not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[key] = CrdSchemas(folder)
    return _SCHEMA_CACHE[key]


# --- schema errors as findings ------------------------------------------------------------------


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _wanted(types):
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "a boolean",
        "object": "an object (a mapping)",
        "array": "a list",
        "null": "null (left out)",
    }
    types = types if isinstance(types, list) else [types]
    return " or ".join(names.get(t, t) for t in types)


def _describe(schema):
    text = (schema or {}).get("description") if isinstance(schema, dict) else None
    if not text:
        return ""
    text = " ".join(str(text).split())
    sentence = re.split(r"(?<=[.;])\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".;")
    return sentence[:200]


@dataclass
class SchemaContext:
    """Where a schema error points: the file and document, the path before the instance's, how to
    name the schema, and the older shapes of a chart's values (old path -> new path)."""

    label: str
    document: int
    prefix: tuple
    schema_name: str
    # (key, path relative to prefix) -> the fix for a field an older shape of the object had, or None
    legacy_fix: Callable[[str, str], str | None] | None = None


def _unknown_field_fix(ctx, parts, key, allowed):
    legacy = ctx.legacy_fix(key, field_path([*parts[len(ctx.prefix) :], key])) if ctx.legacy_fix else None
    if legacy:
        return legacy
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    parent = field_path(parts) or "the object"
    if close:
        return f"did you mean {field_path([*parts, close[0]])}? Otherwise remove it"
    shown = ", ".join(allowed[:25]) + (", ..." if len(allowed) > 25 else "")
    return f"remove it (the fields of {parent}: {shown})" if allowed else f"remove it ({parent} takes no fields)"


_BOUNDS = {
    "minimum": "a value of at least {}",
    "maximum": "a value of at most {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minItems": "at least {} entries",
    "maxItems": "at most {} entries",
    "minProperties": "at least {} keys",
    "maxProperties": "at most {} keys",
}


def _error_findings(error, ctx, template):
    """The findings of one jsonschema error: one per unknown or missing key, else one."""
    parts = [*ctx.prefix, *error.absolute_path]
    where = f"document {ctx.document}"
    instance = error.instance
    keyword = error.validator
    description = _describe(error.schema)
    then_branch = "then" in error.relative_schema_path

    def finding(at, message, fix):
        return Finding(ctx.label, f"{where} {field_path(at)}", message, fix)

    if keyword == "additionalProperties" and error.validator_value is False and isinstance(instance, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            yield finding(
                [*parts, key], f"is not a field of {ctx.schema_name}", _unknown_field_fix(ctx, parts, key, allowed)
            )
        return
    if keyword in ("required", "x-kubernetes-embedded-resource"):
        for key in error.validator_value:
            if isinstance(instance, dict) and key in instance:
                continue
            sub = _describe((error.schema.get("properties") or {}).get(key))
            fix = f"add {field_path([*parts, key])}" + (f" ({sub})" if sub else "")
            yield finding([*parts, key], f"is required by {ctx.schema_name} but missing", fix)
        return
    if has_placeholder(instance):
        return  # a placeholder is a finding of its own (or expected, in a template)
    if keyword == "type":
        wanted = _wanted(error.validator_value)
        message = f"is {_json_type(instance)} ({json.dumps(instance, default=str)}), {ctx.schema_name} wants {wanted}"
        fix = f"give {wanted}"
        if isinstance(error.schema.get("pattern"), str):
            fix += f" matching {error.schema['pattern']}"
        if "string" in str(error.validator_value) and isinstance(instance, (bool, int, float)):
            fix += " (quote it: YAML reads it as a number or a boolean)"
    elif keyword == "enum":
        choices = ", ".join(json.dumps(c) for c in error.validator_value)
        message, fix = f"is {json.dumps(instance, default=str)}, not one of {choices}", f"one of {choices}"
    elif keyword == "const":
        message = f"is {json.dumps(instance, default=str)}, must be {json.dumps(error.validator_value)}"
        fix = f"{json.dumps(error.validator_value)}"
    elif keyword == "pattern":
        message = f"{json.dumps(instance)} does not match {error.validator_value}"
        fix = "a value matching that pattern"
    elif keyword in ("anyOf", "oneOf"):
        shapes = error.validator_value
        if all(isinstance(s, dict) and set(s) == {"type"} for s in shapes):
            wanted = _wanted([s["type"] for s in shapes])
            message, fix = f"is {_json_type(instance)}, must be {wanted}", f"give {wanted}"
        else:
            reasons = sorted({sub.message for sub in error.context})
            message = f"{json.dumps(instance, default=str)} matches none of its forms ({'; '.join(reasons)})"
            fix = "one of the forms above"
    elif keyword in _BOUNDS:
        message = error.message
        fix = _BOUNDS[keyword].format(error.validator_value)
    elif keyword in ("uniqueItems", "x-kubernetes-list-type"):
        message, fix = error.message, "list each entry once"
    elif keyword == "x-kubernetes-validations":
        message = error.message
        fix = f"change the object so that the CRD's rule holds: {getattr(error, 'cel_rule', '')}"
    else:
        message, fix = error.message, "see the schema"
    if then_branch and description:
        fix = description
    elif description:
        fix = f"{fix} ({field_path(parts[len(ctx.prefix) :]) or 'it'}: {description})"
    yield finding(parts, message, fix)


def schema_findings(validator, instance, ctx, template):
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    findings, seen = [], set()
    for error in errors:
        for found in _error_findings(error, ctx, template):
            if str(found) not in seen:
                seen.add(str(found))
                findings.append(found)
    return findings
