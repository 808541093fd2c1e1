"""Every boolean switch of every role, typed on the command line as an operator does (`-e name=true`,
`-e name=no`: extra vars that reach the play as strings, not YAML booleans), against the session's local
stack: each role's argument spec accepts it, and the switches of playbooks/ci.yml take the branch they say.

The static side (every use converts the string) is tests/unit/repository/test_role_switches.py.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml

from tests.lib.ansible_run import REPO_ROOT, PlaybookResult, run_playbook

pytestmark = pytest.mark.slow
VALIDATED = re.compile(r"^TASK \[biomage\.iac\.(\w+) : Validating arguments against arg spec '(\w+)'", re.MULTILINE)
WORDS = {True: ("true", "yes"), False: ("no", "false")}  # what operators type, both spellings of each


def entry_points() -> dict[tuple[str, str], list[str]]:
    """``{(role, entry point): [boolean switch, ...]}`` of every role's argument specs."""
    found = {}
    for spec_file in sorted(REPO_ROOT.glob("roles/*/meta/argument_specs.yml")):
        for entry, spec in yaml.safe_load(spec_file.read_text())["argument_specs"].items():
            options = (spec.get("options") or {}).items()
            found[spec_file.parents[1].name, entry] = sorted(n for n, o in options if o.get("type") == "bool")
    return found


def command_line(values: dict[str, bool]) -> list[str]:
    """``-e name=word`` for each switch, alternating the spellings of each value."""
    spellings = {value: itertools.cycle(words) for value, words in WORDS.items()}
    return [arg for name, value in values.items() for arg in ("-e", f"{name}={next(spellings[value])}")]


def test_every_role_accepts_every_switch_as_the_string_an_operator_types() -> None:
    entries = entry_points()
    assert {role for role, _entry in entries} >= {"aws_resources", "ci_privileges", "flux", "preflight", "route53_dns"}
    names = sorted({name for found in entries.values() for name in found})
    assert len(names) >= 25
    # both values of every switch: the strings that mean true, then those that mean false
    for value in (True, False):
        result = run_playbook(
            Path("tests/integration/playbooks/switches.yml"),
            args=[*command_line(dict.fromkeys(names, value)), "--tags", "biomage_argument_specs_only"],
        ).assert_ok()
        validated = VALIDATED.findall(result.stdout)
        assert sorted(validated) == sorted(entries), "every entry point of every role checked them"
    # the validation is real: a word that is no boolean is refused, naming the switch
    refused = run_playbook(
        Path("tests/integration/playbooks/switches.yml"),
        args=["-e", "aws_resources_prune=maybe", "--tags", "biomage_argument_specs_only"],
    )
    assert refused.returncode != 0
    assert "argument 'aws_resources_prune' is of type str and we were unable to convert to bool" in refused.output


def ci(env: dict[str, str], values: dict[str, bool]) -> PlaybookResult:
    """playbooks/ci.yml in check mode with ``values`` typed as ``-e name=word``."""
    return run_playbook("playbooks/ci.yml", env=env, check=True, args=command_line(values))


def outcomes(result: PlaybookResult, task: str) -> set[str]:
    """How the task(s) named ``task`` ended for the host: {"ok", "skipping", "changed", "fatal", ...}."""
    found = set()
    for section in result.stdout.split("\nTASK [")[1:]:
        header, _newline, body = section.partition("\n")
        if header.split("] ")[0].endswith(f": {task}") or header.startswith(f"{task}]"):
            found |= set(re.findall(r"^(ok|skipping|changed|fatal|included): \[", body, re.MULTILINE))
    assert found, f"no task {task!r} in the output:\n{result.stdout[-3000:]}"
    return found


# ci.yml's switches, and how each shows in a check run
CI_SWITCHES = {
    "ci_privileges_owner",
    "ci_privileges_manage_oidc_provider",
    "ci_privileges_prune",
    "ci_privileges_legacy_secrets_remove",
    "ci_privileges_github_validate_certs",
    "ci_privileges_keep_change_sets",
    "releases_guard_github_validate_certs",
    "preflight_lock_enabled",
    "preflight_lock_check_mode",
    "preflight_lock_wait",
}


def test_the_ci_playbook_takes_the_branch_each_typed_switch_selects(stack_ansible_env: dict[str, str]) -> None:
    env = stack_ansible_env
    assert {n for names in entry_points().values() for n in names} >= CI_SWITCHES
    # every switch of the play, each set to the value whose branch shows in a check run; validate_certs and
    # keep_change_sets only reach module options of type bool (the stand-in is plain http, a check run keeps
    # no change set), so for them passing is the proof
    opposite = {
        "ci_privileges_owner": True,
        "ci_privileges_manage_oidc_provider": False,
        "ci_privileges_prune": True,
        "ci_privileges_legacy_secrets_remove": True,
        "ci_privileges_github_validate_certs": False,
        "releases_guard_github_validate_certs": False,
        "ci_privileges_keep_change_sets": False,
        "preflight_lock_enabled": True,
        "preflight_lock_check_mode": True,
        "preflight_lock_wait": False,
    }
    assert set(opposite) == CI_SWITCHES
    first = ci(env, opposite).assert_ok()
    assert outcomes(first, "Ensure the account trusts GitHub Actions' OIDC provider") == {"skipping"}
    assert "OIDC provider: not managed" in first.stdout
    assert outcomes(first, "Remove the old long-lived CI secrets") == {"ok"}
    assert outcomes(first, "Take the environment lock") >= {"ok"}
    assert re.search(r"orphans: ", first.stdout) and "(kept: run with -e ci_privileges_prune" not in first.stdout

    second = ci(
        env,
        {
            "ci_privileges_manage_oidc_provider": True,
            "ci_privileges_prune": False,
            "ci_privileges_legacy_secrets_remove": False,
            "ci_privileges_github_validate_certs": True,
            "preflight_lock_enabled": False,
            "preflight_lock_check_mode": True,
        },
    ).assert_ok()
    assert "skipping" not in outcomes(second, "Ensure the account trusts GitHub Actions' OIDC provider")
    assert "OIDC provider: not managed" not in second.stdout
    assert outcomes(second, "Remove the old long-lived CI secrets") == {"skipping"}
    assert outcomes(second, "Take the environment lock") == {"skipping"}, "lock_enabled=no wins over check_mode"
    assert re.search(r"orphans: .*\(kept: run with -e ci_privileges_prune=true to delete them\)", second.stdout)

    # `-e ci_privileges_owner=no` stops at the owner check, before preflight's first AWS call
    refused = ci(env, {"ci_privileges_owner": False})
    assert refused.returncode != 0
    assert "ci_privileges_owner: false" in refused.output and "Ask AWS who we are" not in refused.stdout
