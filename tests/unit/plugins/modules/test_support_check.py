"""The support_check module in-process: warnings, failure past the end, the override."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.biomage.iac.plugins.modules import support_check

from tests.lib.ansible_run import REPO_ROOT
from tests.lib.module_run import run_module

FIXTURE = str(REPO_ROOT / "tests/fixtures/support/calendar.yml")


def test_a_version_89_days_from_its_end_warns(monkeypatch) -> None:
    warnings: list[str] = []
    outcome = run_module(
        support_check.main,
        {"calendar": FIXTURE, "versions": {"eks": "1.35"}, "today": "2027-01-01"},
        warn=lambda self, msg: warnings.append(msg),
    )
    assert not outcome.failed
    assert [item["status"] for item in outcome.result["support"]] == ["warning"]
    assert warnings == [outcome.result["support"][0]["message"]]


def test_past_the_end_fails_naming_the_override() -> None:
    outcome = run_module(
        support_check.main,
        {"calendar": FIXTURE, "versions": {"eks": "1.34", "helm": "4.0.0"}, "today": "2027-01-01"},
        warn=lambda self, msg: None,
    )
    assert outcome.failed
    assert outcome.result["msg"].startswith("past the end of support: Amazon EKS 1.34: support ended 2026-12-31")
    assert "Fix: upgrade eks (docs/support.md), or set preflight_support_accept_expired: [eks]" in outcome.result["msg"]
    assert {item["product"]: item["status"] for item in outcome.result["support"]} == {"eks": "expired", "helm": "ok"}


def test_the_override_turns_the_failure_into_a_warning() -> None:
    warnings: list[str] = []
    outcome = run_module(
        support_check.main,
        {"calendar": FIXTURE, "versions": {"eks": "1.34"}, "today": "2027-01-01", "accept_expired": ["eks"]},
        warn=lambda self, msg: warnings.append(msg),
    )
    assert not outcome.failed and outcome.result["support"][0]["accepted"]
    assert "accepted by preflight_support_accept_expired" in warnings[0]


def test_a_missing_calendar_fails_with_the_fix(tmp_path: Path) -> None:
    outcome = run_module(support_check.main, {"calendar": str(tmp_path / "none.yml"), "versions": {}})
    assert outcome.failed and outcome.result["msg"].startswith(f"cannot read the support calendar {tmp_path}/none.yml")
