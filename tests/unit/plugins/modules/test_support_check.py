"""biomage.iac.support_check, an action plugin on the control node: warnings, failure past the end, the override.

The calendar's logic is tested through ``support.check_file``; the plugin itself in a play (its argument
checks, its warnings, check mode, and that no module is sent to the host).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.biomage.iac.plugins.module_utils import support

from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook

FIXTURE = str(REPO_ROOT / "tests/fixtures/support/calendar.yml")


def test_a_version_89_days_from_its_end_warns() -> None:
    findings = support.check_file(FIXTURE, {"eks": "1.35"}, "2027-01-01")
    assert [(item["product"], item["status"]) for item in findings] == [("eks", "warning")]
    assert findings[0]["message"].startswith("Amazon EKS 1.35: support ends 2027-03-31, in 89 days")
    assert support.blocking(findings) == []


def test_past_the_end_blocks_naming_the_override() -> None:
    findings = support.check_file(FIXTURE, {"eks": "1.34", "helm": "4.0.0"}, "2027-01-01")
    assert {item["product"]: item["status"] for item in findings} == {"eks": "expired", "helm": "ok"}
    message = support.blocking_message(support.blocking(findings))
    assert message.startswith("past the end of support: Amazon EKS 1.34: support ended 2026-12-31")
    assert "Fix: upgrade eks (docs/support.md), or set preflight_support_accept_expired: [eks]" in message


def test_the_override_turns_the_failure_into_a_warning() -> None:
    findings = support.check_file(FIXTURE, {"eks": "1.34"}, "2027-01-01", accepted=["eks"])
    assert findings[0]["accepted"] and support.blocking(findings) == []
    assert "accepted by preflight_support_accept_expired" in findings[0]["message"]


def test_a_missing_calendar_or_a_bad_day_fails_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(support.SupportCalendarError, match=rf"cannot read the support calendar {tmp_path}/none.yml"):
        support.check_file(str(tmp_path / "none.yml"), {})
    with pytest.raises(support.SupportCalendarError, match=r"today='31/12/2026' is not a date.*YYYY-MM-DD"):
        support.check_file(FIXTURE, {}, "31/12/2026")


def play(tmp_path: Path, task: dict[str, object]) -> Path:
    path = tmp_path / "play.yml"
    tasks = [{"name": "Check", "biomage.iac.support_check": task, "register": "found"},
             {"name": "Show", "ansible.builtin.debug": {"var": "found"}}]  # fmt: skip
    body = [{"name": "Support check", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "tasks": tasks}]  # fmt: skip
    path.write_text(json.dumps(body))
    return path


def test_the_plugin_warns_and_reports_in_check_mode_without_a_module_run(tmp_path: Path) -> None:
    # with -vvv, a module run shows the command that starts its interpreter (EXEC); the plugin runs none
    env = ansible_env()
    task = {"calendar": FIXTURE, "versions": {"eks": "1.35", "helm": None}, "today": "2027-01-01"}
    result = run_playbook(play(tmp_path, task), "localhost,", env=env, check=True, args=["-vvv"])
    result.assert_ok()
    assert "[WARNING]: Amazon EKS 1.35: support ends 2027-03-31, in 89 days" in result.output
    assert "        status: warning\n" in result.stdout and "    changed: false\n" in result.stdout
    assert "product: helm" not in result.stdout, "an empty version is skipped"
    assert "EXEC " not in result.output


def test_the_plugin_refuses_bad_arguments_and_expired_versions(tmp_path: Path) -> None:
    env = ansible_env()
    missing = run_playbook(play(tmp_path, {"versions": {}}), "localhost,", env=env)
    assert missing.returncode != 0 and "missing required arguments: calendar" in missing.output
    expired = run_playbook(
        play(tmp_path, {"calendar": FIXTURE, "versions": {"eks": "1.34"}, "today": "2027-01-01"}), "localhost,", env=env
    )
    assert expired.returncode != 0
    assert "past the end of support: Amazon EKS 1.34" in expired.output
    assert "Fix: upgrade eks (docs/support.md)" in expired.output
