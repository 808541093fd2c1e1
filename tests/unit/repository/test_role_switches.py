"""Every boolean switch of a role accepts what an operator types with -e (`name=true`, `no`, ...).

`-e name=true` reaches the play as the string "true", and extra vars outrank anything a role sets,
so a switch is only safe where every use converts it: a module option of type bool, or `| bool` in
a condition or expression. A bare string in `when:` fails the run (ansible-core refuses non-boolean
conditionals) and "false" is truthy in a Jinja `if`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
SOURCES = [
    *REPO_ROOT.glob("roles/*/tasks/*.yml"),
    *REPO_ROOT.glob("roles/*/templates/*.j2"),
    *REPO_ROOT.glob("playbooks/*.yml"),
]


def switches() -> list[str]:
    found = []
    for spec_file in sorted(REPO_ROOT.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry in specs.values():
            found += [name for name, option in (entry.get("options") or {}).items() if option.get("type") == "bool"]
    return sorted(set(found))


CONDITION_KEYS = {"when", "that", "failed_when", "changed_when", "until"}
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


def expressions(node: object, key: str = "") -> list[str]:
    """The Jinja expressions of a parsed playbook or task file (string literals removed)."""
    found: list[str] = []
    if isinstance(node, dict):
        for child_key, child in node.items():
            found += expressions(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            found += expressions(child, key)
    elif isinstance(node, str):
        if key in CONDITION_KEYS and "{{" not in node:
            found.append(node)
        # `option: "{{ name }}"`: a module's bool option converts the string itself
        if not re.fullmatch(r"\{\{ *[a-z0-9_]+ *\}\}", node.strip()):
            found += [a or b for a, b in JINJA.findall(node)]
    return [LITERAL.sub("''", text) for text in found]


def unsafe_uses(name: str) -> list[str]:
    """Expressions that use ``name`` without `| bool`."""
    use = re.compile(rf"\b{name}\b(?!\s*\|\s*bool)")
    found = []
    for path in SOURCES:
        text = path.read_text()
        parsed = (
            expressions(yaml.safe_load(text)) if path.suffix == ".yml" else [a or b for a, b in JINJA.findall(text)]
        )
        found += [f"{path.relative_to(REPO_ROOT)}: {expr.strip()}" for expr in parsed if use.search(expr)]
    return found


def test_the_roles_have_boolean_switches() -> None:
    assert {"ci_privileges_prune", "aws_resources_prune", "irsa_prune"} <= set(switches())


@pytest.mark.parametrize("name", switches())
def test_every_use_of_a_switch_converts_the_string_an_operator_types(name: str) -> None:
    assert unsafe_uses(name) == [], f"{name} is used without `| bool` (breaks -e {name}=true)"
