# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every release check shares: findings that name file, field and fix, and release YAML.

:class:`Finding` is one broken rule (``file: document N field.path: message Fix: ...``);
:func:`field_path` spells a path the way the findings do; :func:`load_documents` reads release files
(bounded by :mod:`..safe_yaml` when the text comes from anyone's repository) and the pinned CRDs.
Used by :mod:`.crd_schema` and :mod:`.releases`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

PLACEHOLDER = "FILLED_IN_BY_CI"
IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


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
        elif IDENTIFIER.match(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{json.dumps(str(part))}]"
    return text


def get_path(node, *keys):
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def has_placeholder(value) -> bool:
    if isinstance(value, dict):
        return any(has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(has_placeholder(v) for v in value)
    return isinstance(value, str) and PLACEHOLDER in value


def without_placeholders(node):
    if isinstance(node, dict):
        return {k: without_placeholders(v) for k, v in node.items() if not (isinstance(v, str) and PLACEHOLDER in v)}
    if isinstance(node, list):
        return [without_placeholders(v) for v in node]
    return node


def placeholders(node, parts=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from placeholders(value, (*parts, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from placeholders(value, (*parts, index))
    elif isinstance(node, str) and PLACEHOLDER in node:
        yield parts


def split_api_version(api_version):
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
