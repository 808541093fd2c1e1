"""Every `Fix:` that names a variable names one an operator can set.

Roles' messages may name their own variables (`-e aws_resources_prune=true`): each such name must be an
option of that role's argument spec. Module messages name module options; a role that sets an option
from its own variable passes that variable in `option_variables`, so the module's error names it (the
rollback-complete message must say `aws_resources_recreate_rollback_complete`, not the module option).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.errors import CfnError
from ansible_collections.biomage.iac.plugins.module_utils.option_names import name_variables

REPO_ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "meta/argument_specs.yml").exists())
FIX = re.compile(r"Fix:(.{0,400}?)(?:\"\s*$|'\s*$|\"\)|\n\s*\n|$)", re.DOTALL | re.MULTILINE)
IDENTIFIER = re.compile(r"(?<![\w.\-/])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
END_OF_MESSAGE = re.compile(r"'\)|'\s+if\s|\{\{|\}\}|\{%")
MODULE_UTILS = REPO_ROOT / "plugins/module_utils"


def role_options(role: str) -> set[str]:
    specs = yaml.safe_load((REPO_ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    return {name for entry in specs.values() for name in (entry.get("options") or {})}


def fix_texts() -> list[tuple[str, str]]:
    found = []
    sources = [*REPO_ROOT.glob("roles/*/tasks/*.yml"), *REPO_ROOT.glob("roles/*/templates/*.j2")]
    sources += [*MODULE_UTILS.rglob("*.py"), *REPO_ROOT.glob("playbooks/*.yml")]
    for path in sorted(sources):
        text = path.read_text()
        for match in FIX.finditer(text):
            # the message only: not the Jinja code that follows it in a task (`...') if x else '' }}`)
            message = END_OF_MESSAGE.split(match.group(1))[0]
            found.append((str(path.relative_to(REPO_ROOT)), " ".join(message.split())))
    return found


def named_role_variables(text: str) -> list[tuple[str, str]]:
    """(role, variable) for every identifier of ``text`` that starts with a role's prefix."""
    names = []
    for identifier in IDENTIFIER.findall(text):
        role = next((r for r in sorted(ROLES, key=len, reverse=True) if identifier.startswith(r + "_")), None)
        if role is not None:
            names.append((role, identifier))
    return names


def test_the_scan_finds_the_messages_that_name_variables() -> None:
    named = {name for _source, text in fix_texts() for _role, name in named_role_variables(text)}
    assert {"route53_dns_hosted_zone_id", "preflight_lock_wait_timeout"} <= named


@pytest.mark.parametrize("source,text", fix_texts())
def test_every_role_variable_a_fix_names_is_in_that_roles_argument_spec(source: str, text: str) -> None:
    unknown = [f"{name} (role {role})" for role, name in named_role_variables(text) if name not in role_options(role)]
    assert unknown == [], f"{source}: Fix: {text}"


def module_option_names_in_fixes() -> set[str]:
    """Module options (identifiers with an underscore) named by the cloudformation room's and aws.py's fixes."""
    texts = [text for source, text in fix_texts() if "cloudformation/" in source or source.endswith("/aws.py")]
    return {name for text in texts for name in IDENTIFIER.findall(text)}


def cfn_stacks_calls() -> list[tuple[str, dict]]:
    calls = []
    for role in ROLES:
        for path in sorted((REPO_ROOT / "roles" / role / "tasks").glob("*.yml")):
            for task in _tasks(yaml.safe_load(path.read_text()) or []):
                if "biomage.iac.cfn_stacks" in task:
                    calls.append((role, task["biomage.iac.cfn_stacks"]))
    return calls


def _tasks(tasks: list) -> list[dict]:
    found = []
    for task in tasks:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += _tasks(task.get(key) or [])
    return found


@pytest.mark.parametrize("role,options", cfn_stacks_calls(), ids=[role for role, _options in cfn_stacks_calls()])
def test_roles_name_their_variables_for_the_options_module_messages_name(role: str, options: dict) -> None:
    named = module_option_names_in_fixes() | {"recreate_rollback_complete", "max_workers"}
    expected = {}
    for option, value in options.items():
        match = re.fullmatch(r"\{\{ *([a-z0-9_]+) *\}\}", str(value).strip())
        if option in named and match:
            expected[option] = match.group(1)
    assert {k: v for k, v in (options.get("option_variables") or {}).items() if k in expected} == expected
    assert all(variable in role_options(role) for variable in expected.values())


def test_the_rollback_complete_message_names_the_role_variable() -> None:
    problem = (
        "biomage-sqs-staging: the stack is ROLLBACK_COMPLETE (its creation failed and it cannot be updated). "
        "Fix: set recreate_rollback_complete: true to delete and recreate it, or delete it yourself."
    )
    exc = CfnError("1 stack cannot be deployed", problems=[problem])
    mapping = {"recreate_rollback_complete": "aws_resources_recreate_rollback_complete", "prune": "aws_resources_prune"}
    text = str(name_variables(exc, mapping))
    assert "Fix: set aws_resources_recreate_rollback_complete: true" in text
    assert " recreate_rollback_complete" not in text
    # a plain word is replaced only where it is a setting, never in prose
    prose = name_variables(CfnError("cannot prune: imported. Fix: run with prune: true."), mapping)
    assert str(prose) == "cannot prune: imported. Fix: run with aws_resources_prune: true."
