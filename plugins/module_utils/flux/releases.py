# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release manifests Flux applies (``releases/<env>/*.yaml``), checked offline.

What a release file may hold, and how each object is checked:

* every object against the OpenAPI v3 schema of its CustomResourceDefinition at the pinned Flux
  version (the generated CRDs in ``tools/crds/generated`` of the checkout), the way the API server
  validates it with strict field validation: unknown fields are refused, ``x-kubernetes-int-or-string``
  accepts an integer or a string, ``x-kubernetes-preserve-unknown-fields`` keeps an object open,
  ``x-kubernetes-embedded-resource`` requires ``apiVersion`` and ``kind``, ``nullable`` admits null,
  ``x-kubernetes-list-type`` set/map lists have no duplicates, and the ``x-kubernetes-validations``
  rules written in the small part of CEL the Flux CRDs use are evaluated (a rule outside that part
  is skipped, never guessed);
* a HelmRelease's ``spec.values`` against the ``values.schema.json`` of its chart when the chart is
  one of this repository's ``charts/`` (merged with the chart's ``values.yaml`` as Helm does);
* the repository's conventions: a ``v1`` Namespace plus objects in it (Flux prunes them together);
  HelmReleases on ``helm.toolkit.fluxcd.io/v2``; the standard Flux sources (GitRepository,
  OCIRepository, HelmRepository) and image automation objects (ImageRepository, ImagePolicy,
  ImageUpdateAutomation) in a Namespace of the same file; charts of the ``flux-system``
  GitRepository present under ``charts/`` and reconciled by revision; the environment and the IRSA
  role ARNs naming the folder's environment; no ``FILLED_IN_BY_CI`` left; across an environment, an
  object declared once and a host served by one release.

Every finding names the file, the document, the field path and a fix for that case. Nothing here
talks to a cluster or the network: the CLI ``tools/check_releases.py`` and the release step use
the same :class:`ReleaseChecker`.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

try:
    import jsonschema
    from jsonschema import validators as jsonschema_validators

    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by ReleaseChecker
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR = exc

ENVIRONMENTS = ("development", "staging", "production")
HELM_RELEASE = "helm.toolkit.fluxcd.io/v2"
OLD_HELM_RELEASES = {
    "helm.fluxcd.io/v1": "Flux v1 (helm-operator), no longer reconciled",
    "helm.toolkit.fluxcd.io/v2beta1": "a beta removed from Flux 2.x",
    "helm.toolkit.fluxcd.io/v2beta2": "a beta removed from Flux 2.x",
}
PLACEHOLDER = "FILLED_IN_BY_CI"
# The GitRepository the biomage.iac.flux role creates (flux_source_name in flux-system): charts read
# from it are this repository's own charts/.
OWN_SOURCE = ("GitRepository", "flux-system", "flux-system")
CRD_DIR = Path("tools") / "crds" / "generated"
MIGRATE_COMMAND = "python tools/migrate_flux_v1.py"
FIX_TEMPLATE = "change the service repository's .flux.ci template or its CI, not this file (docs/examples/ui.flux.ci)"
VALUES_DOC = "charts/{chart}/README.md"

# What a release file may hold: (API group, kind) -> what it is.
RELEASE_KINDS = {
    ("", "Namespace"): "namespace",
    ("helm.toolkit.fluxcd.io", "HelmRelease"): "release",
    ("source.toolkit.fluxcd.io", "GitRepository"): "source",
    ("source.toolkit.fluxcd.io", "OCIRepository"): "source",
    ("source.toolkit.fluxcd.io", "HelmRepository"): "source",
    ("image.toolkit.fluxcd.io", "ImageRepository"): "image",
    ("image.toolkit.fluxcd.io", "ImagePolicy"): "image",
    ("image.toolkit.fluxcd.io", "ImageUpdateAutomation"): "image",
}
# Versions the pinned Flux release serves for allowed kinds whose CRD the checkout does not hold:
# such objects are checked for the conventions only, and a notice says so.
KNOWN_VERSIONS = {"image.toolkit.fluxcd.io": ("v1",)}
ADD_IMAGE_CRDS = (
    "add github.com/fluxcd/image-reflector-controller/api and image-automation-controller/api (the versions "
    "the pinned Flux release, flux_version, ships) to tools/crds (go.mod, apis.go, generate.sh), "
    "then `make -C tools/crds`"
)
# Why other objects do not belong in a release file, and where they go instead.
REFUSED = {
    "Secret": "never commit a Secret: create it out of band and reference it (valuesFrom, secretRef)",
    "Kustomization": "a release deploys a chart: put the manifests in a chart under charts/ and release it with a "
    "HelmRelease",
    "HelmChart": "a HelmRelease makes its own HelmChart: move its fields into the HelmRelease's spec.chart.spec",
    "Bucket": "charts come from the flux-system GitRepository (./charts/<name>), a HelmRepository or an OCIRepository",
    "ExternalArtifact": "charts come from the flux-system GitRepository (./charts/<name>), a HelmRepository or an "
    "OCIRepository",
}
REFUSED_DEFAULT = (
    "make it a template of the release's chart (charts/<name>/templates/) so it is rendered with the release"
)
# Namespaces of the platform itself, never a release's.
RESERVED_NAMESPACES = frozenset(
    (
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "flux-system",
        "cert-manager",
        "ingress-nginx",
        "traefik",
    )
)
# Fields of a Flux v1 HelmRelease that have no place in a v2 one.
FLUX_V1_FIELDS = frozenset(
    ("git", "ref", "path", "repository", "name", "version", "helmVersion", "rollback", "resetValues", "forceUpgrade")
)
# Values of charts/nodejs in the shapes older releases used (Flux v1 era), and what replaced them:
# named in the fix of an unknown key; tools/migrate_flux_v1.py rewrites them.
MOVED_VALUES = {
    "nodejs": {
        "livenessProbe": "probes.liveness (path, type for probeType, scheme, timings)",
        "readinessProbe": "probes.readiness (path, type for probeType, scheme, timings)",
        "probes.liveness.probeType": "probes.liveness.type",
        "probes.readiness.probeType": "probes.readiness.type",
        "service.internalPort": "containerPort",
        "service.externalPort": "service.port",
        "service.additionalHosts": "ingress.extraHosts (a list of host names)",
        "service.enabled": "ingress.enabled",
        "service.name": "nothing (the container port is named http)",
        "podDisruptionBudget": "pdb (enabled, minAvailable)",
    }
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/(?:[^/]+/)*(?P<name>[^/]+)$")
# biomage-<app>-<env>-<region>, the RoleName of cf/irsa-<app>-role.yaml
IRSA_ROLE_NAME = re.compile(r"^biomage-(?P<app>.+)-(?P<env>development|staging|production)-[a-z]{2}(-[a-z]+)+-[0-9]$")

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")

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


class ReleaseError(BiomageError):
    """The releases cannot be checked at all (no CRDs, a missing library); never a finding."""


@dataclass(frozen=True)
class Finding:
    """One broken rule: where (file, ``document N field.path``), what, and the fix."""

    path: str
    field: str
    message: str
    fix: str | None = None
    severity: str = "error"  # "notice": said, but the release still passes

    def __str__(self) -> str:
        text = f"{self.path}: {self.field}: {self.message}"
        if self.fix:
            text = f"{text.rstrip()} Fix: {self.fix}"
        return text

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
            "severity": self.severity,
        }


@dataclass
class FileReport:
    """The findings of one file, and what the environment-wide checks need from it."""

    label: str
    findings: list[Finding] = field(default_factory=list)
    objects: list[tuple[tuple[str, str, str, str], int]] = field(default_factory=list)  # (group, kind, ns, name), doc
    hosts: list[tuple[str, tuple[str, str], int]] = field(default_factory=list)  # host, release id, doc

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def field_path(parts) -> str:
    """``spec.values.extraEnv[0].name``; keys that are not identifiers as ``["biomage.net/ci-sha"]``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


def _get(node, *keys):
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _has_placeholder(value) -> bool:
    if isinstance(value, dict):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return isinstance(value, str) and PLACEHOLDER in value


def _without_placeholders(node):
    if isinstance(node, dict):
        return {k: _without_placeholders(v) for k, v in node.items() if not (isinstance(v, str) and PLACEHOLDER in v)}
    if isinstance(node, list):
        return [_without_placeholders(v) for v in node]
    return node


def _placeholders(node, parts=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _placeholders(value, (*parts, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _placeholders(value, (*parts, index))
    elif isinstance(node, str) and PLACEHOLDER in node:
        yield parts


def _split_api_version(api_version):
    text = str(api_version or "")
    group, _slash, version = text.rpartition("/")
    return group, version


# --- YAML ---------------------------------------------------------------------------------------

if HAS_YAML:

    class _Loader(yaml.SafeLoader):
        """SafeLoader that keeps timestamps as strings, as the API server receives them."""

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def load_documents(text: str, source: str | None = None) -> list:
    """The non-empty YAML documents of ``text``.

    With ``source`` (a release, a chart's values: files anyone may write) the text is parsed within
    the limits of :mod:`..safe_yaml` and errors are ``safe_yaml.YamlError``/``InputLimitError``
    naming ``source``; without it (the pinned CRDs this repository generates) plain PyYAML
    (``yaml.YAMLError``).
    """
    if not HAS_YAML:
        raise ReleaseError(f"PyYAML is required to read release files ({YAML_IMPORT_ERROR})")
    if source is not None:
        return [d for d in safe_yaml.load_all(text, source, base=_Loader) if d is not None]
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


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
                        "schema": _get(v, "schema", "openAPIV3Schema") or {},
                    }
                    for v in spec.get("versions") or []
                }
                crd = _Crd(path.name, spec.get("group", ""), _get(spec, "names", "kind"), spec.get("scope"), versions)
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
class _SchemaContext:
    """Where a schema error points: the file and document, the path before the instance's, how to
    name the schema, and the older shapes of a chart's values (old path -> new path)."""

    label: str
    document: int
    prefix: tuple
    schema_name: str
    moved: dict = field(default_factory=dict)
    flux_v1_hint: bool = False
    chart_doc: str | None = None


def _unknown_field_fix(ctx, parts, key, allowed):
    relative = field_path([*parts[len(ctx.prefix) :], key])
    if relative in ctx.moved:
        return (
            f"an older shape: write {ctx.moved[relative]} instead ({ctx.chart_doc}, migrating older values; "
            f"{MIGRATE_COMMAND} converts Flux v1 releases)"
        )
    if ctx.flux_v1_hint and key in FLUX_V1_FIELDS:
        return f"{key} is a Flux v1 field: `{MIGRATE_COMMAND} {ctx.label}` converts the release to {HELM_RELEASE}"
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
    if _has_placeholder(instance):
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


def _schema_findings(validator, instance, ctx, template):
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    findings, seen = [], set()
    for error in errors:
        for found in _error_findings(error, ctx, template):
            if str(found) not in seen:
                seen.add(str(found))
                findings.append(found)
    return findings


# --- chart values -------------------------------------------------------------------------------


def coalesce(defaults, overrides):
    """Helm's merge of a release's values over the chart's: maps merge, null deletes a default."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class _Chart:
    name: str
    path: Path
    defaults: dict
    validator: object  # None: the chart has no values.schema.json
    moved: dict


def _nodejs_hosts(values):
    ingress = values.get("ingress") or {}
    if not ingress.get("enabled", True):
        return []
    domain, subdomain = ingress.get("domainName") or "", ingress.get("subdomain") or ""
    hosts = [f"{subdomain}.{domain}" if subdomain else domain] if domain else []
    return [h for h in [*hosts, *(ingress.get("extraHosts") or [])] if isinstance(h, str) and h]


# Hosts a release of one of this repository's charts serves, from its merged values.
CHART_HOSTS = {"nodejs": _nodejs_hosts}


def _own_role_arns(values, chart):
    """IRSA role ARNs of merged values: every string that is one, plus a nodejs role given by name."""
    found = []

    def walk(node, parts):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*parts, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*parts, index))
        elif isinstance(node, str) and ROLE_ARN.match(node):
            found.append((parts, ROLE_ARN.match(node).group("name")))

    walk(values, ())
    role = _get(values, "serviceAccount", "iamRole")
    if chart == "nodejs" and isinstance(role, str) and role and not role.startswith("arn:"):
        found.append((("serviceAccount", "iamRole"), role))
    return found


# --- the checker --------------------------------------------------------------------------------


class ReleaseChecker:
    """Checks release files of one checkout: its ``charts/`` and the CRDs of ``crd_dir``.

    ``template=True`` checks a ``.flux.ci`` template: ``FILLED_IN_BY_CI`` values are expected (not
    findings) and are not held against the schemas.
    """

    def __init__(self, repo_root, crd_dir=None, template=False):
        self.repo_root = Path(repo_root)
        self.schemas = crd_schemas(crd_dir or self.repo_root / CRD_DIR)
        self.template = template
        self._charts: dict = {}
        self._services = None

    # files

    def check_text(self, text, environment, label) -> FileReport:
        try:
            documents = load_documents(text, label)
        except safe_yaml.InputLimitError as exc:
            report = FileReport(label)
            limit = exc.message.split(": ", 1)[-1].split(" Fix:")[0].rstrip(".")
            report.findings.append(Finding(label, "(file)", f"{limit};", "make the file smaller, without alias chains"))
            return report
        except safe_yaml.YamlError as exc:
            report = FileReport(label)
            detail = exc.__cause__ or exc
            report.findings.append(Finding(label, "(file)", f"is not valid YAML ({detail});", FIX_TEMPLATE))
            return report
        return self.check_documents(documents, environment, label)

    def check_file(self, path, environment, label=None) -> FileReport:
        label = label or str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            report = FileReport(label)
            report.findings.append(Finding(label, "(file)", f"is not UTF-8 text ({exc});", FIX_TEMPLATE))
            return report
        return self.check_text(text, environment, label)

    def check_documents(self, documents, environment, label) -> FileReport:
        """The findings of the documents of one file, as if it lived in ``releases/<environment>/``
        (``environment=None``: not known, e.g. a template)."""
        report = FileReport(label)
        namespaces = {
            _get(d, "metadata", "name")
            for d in documents
            if isinstance(d, dict) and d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"
        }
        for index, doc in enumerate(documents, start=1):
            where = f"document {index}"
            if not isinstance(doc, dict):
                report.findings.append(
                    Finding(
                        label,
                        where,
                        "is not a Kubernetes object (a mapping)",
                        "each YAML document of a release file is one object",
                    )
                )
                continue
            if not self.template:
                report.findings += [
                    Finding(label, f"{where} {field_path(parts)}", f"still says {PLACEHOLDER};", FIX_TEMPLATE)
                    for parts in _placeholders(doc)
                ]
            self._check_object(doc, index, environment, namespaces, report)
        return report

    def _check_object(self, doc, index, environment, namespaces, report):
        label, where = report.label, f"document {index}"
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            report.findings.append(
                Finding(
                    label,
                    f"{where} {'apiVersion' if not api_version else 'kind'}",
                    "is missing: every object names its apiVersion and kind",
                    "e.g. apiVersion: helm.toolkit.fluxcd.io/v2 and kind: HelmRelease",
                )
            )
            return
        if kind == "HelmRelease" and api_version in OLD_HELM_RELEASES:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} is {OLD_HELM_RELEASES[api_version]}.",
                    f"write apiVersion {HELM_RELEASE} with spec.chart.spec: `{MIGRATE_COMMAND} {label} --write` "
                    "converts it (run it on the service's .flux.ci template; docs/releases.md, migrating from Flux v1)",
                )
            )
            return
        group, version = _split_api_version(api_version)
        role = RELEASE_KINDS.get((group, kind))
        if role is None:
            allowed = ", ".join(sorted({known for _group, known in RELEASE_KINDS}))
            report.findings.append(
                Finding(
                    label,
                    f"{where} kind",
                    f"{api_version}/{kind} is not allowed here: a release file holds a v1 Namespace and objects "
                    f"in it ({allowed}).",
                    REFUSED.get(kind, REFUSED_DEFAULT),
                )
            )
            return
        served = self.schemas.served(group, kind)
        if served is None:
            served = KNOWN_VERSIONS.get(group, ())
            checked = False
        else:
            checked = True
        if version not in served:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} is not a version of {kind} the pinned Flux serves"
                    + (f" (it serves {', '.join(served)})" if served else ""),
                    f"apiVersion {group + '/' if group else ''}{served[-1]}" if served else "see docs/flux.md",
                )
            )
            return
        name = _get(doc, "metadata", "name")
        namespace = _get(doc, "metadata", "namespace")
        if checked:
            validator = self.schemas.validator(group, version, kind)
            ctx = _SchemaContext(
                label,
                index,
                (),
                self.schemas.schema_name(group, version, kind),
                flux_v1_hint=kind == "HelmRelease",
            )
            report.findings += _schema_findings(validator, doc, ctx, self.template)
        else:
            report.findings.append(
                Finding(
                    label,
                    f"{where} apiVersion",
                    f"{api_version} {kind}: tools/crds/generated holds no CRD for it, so only the conventions were "
                    "checked, not its schema",
                    ADD_IMAGE_CRDS if group == "image.toolkit.fluxcd.io" else "add its CRD to tools/crds",
                    severity="notice",
                )
            )
        self._check_name(doc, index, role, report)
        if role == "namespace":
            if namespace is not None:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} metadata.namespace",
                        "is set on a Namespace, which is not namespaced",
                        "remove metadata.namespace",
                    )
                )
            if name in RESERVED_NAMESPACES:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} metadata.name",
                        f"{name!r} is a namespace of the platform itself, not a release's",
                        "name the release's own namespace <app>-<ref> (e.g. ui-master)",
                    )
                )
            report.objects.append((("", kind, "", str(name)), index))
            return
        if not namespace:
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    "is missing;",
                    "the release's Namespace, declared in the same file",
                )
            )
        elif namespace not in namespaces and not (self.template and PLACEHOLDER in str(namespace)):
            report.findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is not declared in this file.",
                    "add its v1 Namespace to the same file (Flux prunes both together)",
                )
            )
        report.objects.append(((group, kind, str(namespace), str(name)), index))
        if role == "release":
            self._check_release(doc, index, environment, report)
        elif kind == "ImageUpdateAutomation":
            source = _get(doc, "spec", "sourceRef") or {}
            if (source.get("kind", "GitRepository"), source.get("name"), source.get("namespace")) == OWN_SOURCE:
                report.findings.append(
                    Finding(
                        label,
                        f"{where} spec.sourceRef",
                        "is the flux-system GitRepository: its deploy key is read-only and releases/ is written by "
                        "the services' CI only",
                        "let the service's CI write the new image tag (its release step), or point sourceRef at a "
                        "GitRepository with write access declared in this file",
                    )
                )

    def _check_name(self, doc, index, role, report):
        name = _get(doc, "metadata", "name")
        at = f"document {index} metadata.name"
        if self.template and PLACEHOLDER in str(name):
            return
        if not isinstance(name, str) or not name:
            report.findings.append(Finding(report.label, at, "is missing", "name the object (e.g. ui-master)"))
            return
        pattern, limit, what = (
            (DNS_LABEL, 63, "a DNS label") if role == "namespace" else (DNS_SUBDOMAIN, 253, "a DNS subdomain")
        )
        if PLACEHOLDER not in name and (not pattern.match(name) or len(name) > limit):
            report.findings.append(
                Finding(
                    report.label,
                    at,
                    f"{name!r} is not {what} (lower-case letters, digits and '-', at most {limit} characters)",
                    "e.g. ui-master or ui-<sandbox>",
                )
            )

    # HelmRelease

    def _chart(self, chart_path):
        key = str(chart_path)
        if key not in self._charts:
            directory = (self.repo_root / chart_path).resolve()
            chart = None
            inside = directory == self.repo_root.resolve() or self.repo_root.resolve() in directory.parents
            if inside and (directory / "Chart.yaml").is_file():
                values_file = directory / "values.yaml"
                defaults = (load_documents(values_file.read_text(encoding="utf-8"), str(values_file)) or [{}])[0] or {}
                schema_file = directory / "values.schema.json"
                validator = None
                if schema_file.is_file():
                    schema = json.loads(schema_file.read_text(encoding="utf-8"))
                    validator = jsonschema_validators.validator_for(schema)(schema)
                chart = _Chart(directory.name, directory, defaults, validator, MOVED_VALUES.get(directory.name, {}))
            self._charts[key] = chart
        return self._charts[key]

    def services(self):
        """The platform's services: the <app> of every cf/irsa-<app>-role.yaml of the checkout."""
        if self._services is None:
            self._services = sorted(
                p.name[len("irsa-") : -len("-role.yaml")] for p in (self.repo_root / "cf").glob("irsa-*-role.yaml")
            )
        return self._services

    def own_charts(self):
        return sorted(
            "./" + p.parent.relative_to(self.repo_root).as_posix() for p in self.repo_root.glob("charts/*/Chart.yaml")
        )

    def _check_release(self, release, index, environment, report):
        label, where = report.label, f"document {index}"
        namespace = _get(release, "metadata", "namespace")
        identity = (str(namespace), str(_get(release, "metadata", "name")))
        report.findings += tenant_findings(release, label, where, self.services())
        chart_spec = _get(release, "spec", "chart", "spec")
        if not isinstance(chart_spec, dict):
            return  # chartRef, or a missing chart: the schema and its rules said so
        source = (
            _get(chart_spec, "sourceRef", "kind"),
            _get(chart_spec, "sourceRef", "name"),
            _get(chart_spec, "sourceRef", "namespace") or namespace,
        )
        chart_name = chart_spec.get("chart")
        if source != OWN_SOURCE or not isinstance(chart_name, str) or not chart_name:
            return
        if self.template and PLACEHOLDER in chart_name:
            return
        chart = self._chart(chart_name)
        if chart is None:
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.chart.spec.chart",
                    f"{chart_name} is not a chart of this repository (no {chart_name}/Chart.yaml).",
                    f"one of {', '.join(self.own_charts())}",
                )
            )
            return
        if chart_spec.get("reconcileStrategy") != "Revision":
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.chart.spec.reconcileStrategy",
                    f"is {chart_spec.get('reconcileStrategy', 'ChartVersion (the default)')}: a chart of the "
                    "flux-system GitRepository keeps its version, so changes to it would never reach this release",
                    "reconcileStrategy: Revision",
                )
            )
        values = _get(release, "spec", "values")
        values = values if isinstance(values, dict) else {}
        # A placeholder is a finding of its own (or expected, in a template): the chart's default
        # stands in for it, so that it does not also break rules that depend on it.
        merged = coalesce(chart.defaults, _without_placeholders(values))
        if chart.validator is not None:
            ctx = _SchemaContext(
                label,
                index,
                ("spec", "values"),
                f"charts/{chart.name}/values.schema.json",
                moved=chart.moved,
                chart_doc=VALUES_DOC.format(chart=chart.name),
            )
            report.findings += _schema_findings(chart.validator, merged, ctx, self.template)
        env = _get(values, "kubernetes", "env")
        wrong_env = None
        if environment and env is not None and env != environment and PLACEHOLDER not in str(env):
            wrong_env = env
            report.findings.append(
                Finding(
                    label,
                    f"{where} spec.values.kubernetes.env",
                    f"is {env!r} in releases/{environment}/.",
                    f"{environment!r}, or push the file to releases/{env}/",
                )
            )
        if environment:
            for parts, role_name in _own_role_arns(merged, chart.name):
                tokens = set(role_name.split("-"))
                others = sorted((tokens & set(ENVIRONMENTS)) - {environment})
                if not others or environment in tokens or wrong_env in others:
                    continue
                app = IRSA_ROLE_NAME.match(role_name)
                stack = f"biomage-irsa-{app.group('app') if app else '<app>'}-role-{environment}"
                report.findings.append(
                    Finding(
                        label,
                        f"{where} {field_path(('spec', 'values', *parts))}",
                        f"names the IAM role {role_name} of {others[0]} in releases/{environment}/: the pods would "
                        f"run with {others[0]}'s permissions, or IRSA fails",
                        f"the RoleArn output of stack {stack} (the service's CI reads it from the {environment} IRSA "
                        "stack)",
                    )
                )
        hosts = CHART_HOSTS.get(chart.name)
        if hosts and not _has_placeholder(_get(merged, "ingress")):
            report.hosts += [(host, identity, index) for host in hosts(merged)]

    # a releases/ tree

    def check_tree(self, root) -> list[Finding]:
        """Every finding of ``root`` (a releases/ folder): each file, then what spans files."""
        root = Path(root)
        if not root.is_dir():
            nested = any((root.parent / env).is_dir() for env in ENVIRONMENTS)
            hint = f" ({root.parent} is itself a releases/ folder: give the checkout above it)" if nested else ""
            return [
                Finding(
                    str(root),
                    "(root)",
                    f"does not exist or is not a folder{hint}",
                    "give the checkout whose releases/ to check (--root DIR)",
                )
            ]
        present = [env for env in ENVIRONMENTS if (root / env).is_dir()]
        if not present:
            inside = [env for env in ENVIRONMENTS if (root / "releases" / env).is_dir()]
            return [
                Finding(
                    str(root),
                    "(root)",
                    f"holds no environment folder ({', '.join(ENVIRONMENTS)})",
                    "give the checkout above it (the folder holding releases/)"
                    if inside
                    else "check out the repository whose releases/<env>/ Flux applies",
                )
            ]
        findings: list[Finding] = []
        reports: dict[str, list[FileReport]] = {env: [] for env in ENVIRONMENTS}
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md"):
            rel = path.relative_to(root)
            label = f"releases/{rel.as_posix()}"
            if len(rel.parts) != 2 or rel.parts[0] not in ENVIRONMENTS:
                findings.append(
                    Finding(
                        label,
                        "(path)",
                        "is outside the environments' folders.",
                        f"releases/<{'|'.join(ENVIRONMENTS)}>/",
                    )
                )
            elif path.suffix not in (".yaml", ".yml"):
                findings.append(
                    Finding(
                        label,
                        "(path)",
                        "is not a .yaml release manifest (Flux would apply it)",
                        "remove it, or name it <release>.yaml",
                    )
                )
            else:
                report = self.check_file(path, rel.parts[0], label)
                findings += report.findings
                reports[rel.parts[0]].append(report)
        for env_reports in reports.values():
            findings += _duplicates(env_reports)
            findings += _shared_hosts(env_reports)
        return findings


# --- tenants: each service's releases in its own namespaces (docs/tenants.md) -------------------


def service_of(release):
    """``(service, where)``: which service a HelmRelease belongs to (its releaseName, else the repository
    of its biomage.net/ci-repo annotation or values.biomageCi.repo); ``(None, None)`` when none says."""
    candidates = (
        ("spec.releaseName", _get(release, "spec", "releaseName")),
        ("metadata.annotations.biomage.net/ci-repo", _get(release, "metadata", "annotations", "biomage.net/ci-repo")),
        ("spec.values.biomageCi.repo", _get(release, "spec", "values", "biomageCi", "repo")),
    )
    for where, value in candidates:
        if isinstance(value, str) and value and PLACEHOLDER not in value:
            return value.rsplit("/", 1)[-1], where
    return None, None


def tenant_findings(release, label, where, services):
    """A HelmRelease of service <app> lives only in a namespace <app>-<ref> that no other service's
    prefix matches, names no other service's repository and runs with no other service's IRSA role."""
    findings = []
    namespace = _get(release, "metadata", "namespace")
    app, source = service_of(release)
    if app is None:
        return findings
    if isinstance(namespace, str) and namespace and PLACEHOLDER not in namespace:
        owner = namespace_owner(namespace, services)
        if not namespace.startswith(app + "-") or (owner is not None and owner != app):
            findings.append(
                Finding(
                    label,
                    f"{where} metadata.namespace",
                    f"{namespace!r} is "
                    + (f"a namespace of service {owner}" if owner and owner != app else "not a namespace of " + app)
                    + f", but the release belongs to {app} ({source}): a service's releases live only in its own "
                    f"namespaces {app}-<ref>",
                    f"use namespace {app}-<ref> (e.g. {app}-master)",
                )
            )
    for key, value in (
        ("metadata.annotations.biomage.net/ci-repo", _get(release, "metadata", "annotations", "biomage.net/ci-repo")),
        ("spec.values.biomageCi.repo", _get(release, "spec", "values", "biomageCi", "repo")),
    ):
        if isinstance(value, str) and value and PLACEHOLDER not in value and value.rsplit("/", 1)[-1] != app:
            findings.append(
                Finding(
                    label,
                    f"{where} {key}",
                    f"names repository {value}, but the release belongs to {app} ({source})",
                    f"the {app} repository's CI pushes {app}'s releases; another service's are not its to write",
                )
            )
    role = _get(release, "spec", "values", "serviceAccount", "iamRole")
    if isinstance(role, str) and role and PLACEHOLDER not in role:
        match = ROLE_ARN.match(role)
        name = match.group("name") if match else role
        role_app = IRSA_ROLE_NAME.match(name)
        if role_app and role_app.group("app") != app:
            findings.append(
                Finding(
                    label,
                    f"{where} spec.values.serviceAccount.iamRole",
                    f"is the IAM role of service {role_app.group('app')}, but the release belongs to {app}: its pods "
                    f"would run with {role_app.group('app')}'s permissions",
                    f"the RoleArn output of stack biomage-irsa-{app}-role-<environment>",
                )
            )
    return findings


def namespace_owner(namespace, services):
    """The service whose namespaces ``namespace`` is (the longest ``<service>-`` prefix), or None."""
    owners = [s for s in services if namespace.startswith(s + "-")]
    return max(owners, key=len) if owners else None


def _object_name(identity):
    _group, kind, namespace, name = identity
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _duplicates(reports):
    """Objects declared in two files of one environment (Flux's kustomize build refuses them)."""
    findings, seen = [], {}
    for report in reports:
        again: dict[str, list] = {}
        for identity, _document in report.objects:
            if identity in seen and seen[identity] != report.label:
                again.setdefault(seen[identity], []).append(identity)
            seen.setdefault(identity, report.label)
        for other, identities in again.items():
            identities.sort(key=lambda i: (i[1] != "HelmRelease", i[1], i[2], i[3]))
            also = ", ".join(_object_name(i) for i in identities[1:])
            findings.append(
                Finding(
                    report.label,
                    "metadata",
                    f"{_object_name(identities[0])} is also in {other}" + (f" (so are {also})." if also else "."),
                    "one file per release: keep one of the two (Flux's build of the folder fails on an object "
                    "declared twice)",
                )
            )
    return findings


def _shared_hosts(reports):
    """A host served by two releases of one environment: one of them would never get its traffic."""
    findings, owners = [], {}
    for report in reports:
        for host, release, index in report.hosts:
            owner = owners.get(host)
            if owner is None:
                owners[host] = (release, report.label)
            elif owner[0] != release:
                findings.append(
                    Finding(
                        report.label,
                        f"document {index} spec.values.ingress",
                        f"serves {host}, which HelmRelease {owner[0][0]}/{owner[0][1]} in {owner[1]} serves already",
                        "one host per release: a distinct ingress.subdomain (sandboxes: <app>-<sandbox>), or drop it "
                        "from ingress.extraHosts",
                    )
                )
    return findings
