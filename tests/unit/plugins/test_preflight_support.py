"""Preflight with a calendar fixture: warning at 89 days, error past the date, the override; the plan shows them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook

PLAY = REPO_ROOT / "tests/fixtures/playbooks/support/play.yml"
CALENDAR = REPO_ROOT / "tests/fixtures/support/calendar.yml"


def preflight(tmp_path: Path, eks: str, **extra: object):
    env = ansible_env(ANSIBLE_CALLBACKS_ENABLED="biomage.iac.plan", BIOMAGE_PLAN_JSON=str(tmp_path / "plan.json"))
    extra_vars = {
        "preflight_support_calendar": str(CALENDAR),
        "preflight_support_today": "2027-01-01",
        # the fixture calendar knows eks and helm; the other pins are left out
        "preflight_support_versions": {"eks": eks, "helm": "4.0.0", "ansible-core": "", "ingress-nginx": ""}
        | {"cert-manager": "", "flux": "", "traefik": ""},
        **extra,
    }
    result = run_playbook(PLAY, "localhost,", env=env, extra_vars=extra_vars)
    return result, json.loads((tmp_path / "plan.json").read_text())


def test_89_days_before_the_end_warns_and_the_plan_shows_it(tmp_path: Path) -> None:
    result, plan = preflight(tmp_path, "1.35")
    result.assert_ok()
    assert "[WARNING]: Amazon EKS 1.35: support ends 2027-03-31, in 89 days" in result.output
    assert "Support:\n    warning            Amazon EKS 1.35: support ends 2027-03-31, in 89 days" in result.stdout
    assert [(item["product"], item["status"]) for item in plan["support"]] == [("eks", "warning")]


def test_past_the_end_fails_the_run(tmp_path: Path) -> None:
    result, plan = preflight(tmp_path, "1.34")
    assert result.returncode != 0 and result.total("failed") == 1
    assert "past the end of support: Amazon EKS 1.34: support ended 2026-12-31" in result.stdout
    assert "set preflight_support_accept_expired: [eks]" in result.stdout
    assert "  ! expired            Amazon EKS 1.34" in result.stdout
    assert plan["support"][0]["status"] == "expired" and not plan["support"][0]["accepted"]


def test_the_override_lets_the_run_continue_with_a_warning(tmp_path: Path) -> None:
    result, plan = preflight(tmp_path, "1.34", preflight_support_accept_expired=["eks"])
    result.assert_ok()
    assert "accepted by preflight_support_accept_expired" in result.output
    assert "  ! expired (accepted) Amazon EKS 1.34" in result.stdout
    assert plan["support"][0]["accepted"]
