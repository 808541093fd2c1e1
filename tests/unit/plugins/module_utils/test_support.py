"""The support calendar: findings at 89 and 91 days, past the end, accepted, estimated, unknown, stale."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.biomage.iac.plugins.module_utils import support

from tests.lib.ansible_run import REPO_ROOT

FIXTURE = REPO_ROOT / "tests/fixtures/support/calendar.yml"
TODAY = datetime.date(2027, 1, 1)


@pytest.fixture
def calendar() -> dict:
    return support.parse(FIXTURE.read_text(), str(FIXTURE))


def one(calendar: dict, product: str, version: str, accepted: tuple[str, ...] = ()) -> dict:
    return support.assess_one(calendar, product, version, TODAY, accepted=accepted)


def test_89_days_before_the_end_warns_and_91_does_not(calendar: dict) -> None:
    near = one(calendar, "eks", "1.35")
    assert near["status"] == "warning" and near["days_left"] == 89
    assert near["message"] == (
        "Amazon EKS 1.35: support ends 2027-03-31, in 89 days; extended support until 2028-03-31 "
        "(plan the upgrade; https://example.invalid/eks)"
    )
    far = one(calendar, "eks", "v1.36.2")
    assert far["status"] == "ok" and far["line"] == "1.36" and far["days_left"] == 91


def test_past_the_end_is_expired_and_blocks_unless_accepted(calendar: dict) -> None:
    past = one(calendar, "eks", "1.34")
    assert past["status"] == "expired" and not past["accepted"] and past["days_left"] == -1
    assert "support ended 2026-12-31, 1 days ago" in past["message"]
    assert "list it in preflight_support_accept_expired" in past["message"]
    assert support.blocking([past]) == [past]
    accepted = one(calendar, "eks", "1.34", accepted=("eks",))
    assert accepted["status"] == "expired" and accepted["accepted"]
    assert support.blocking([accepted]) == []


def test_an_estimated_date_only_warns_and_a_line_without_date_is_ok(calendar: dict) -> None:
    estimated = one(calendar, "helm", "3.19.5")
    assert estimated["status"] == "warning" and estimated["estimated"] and estimated["line"] == "3"
    assert "(estimated)" in estimated["message"]
    assert one(calendar, "helm", "4.0.1")["status"] == "ok"


def test_unknown_versions_and_products_warn(calendar: dict) -> None:
    unknown_line = one(calendar, "eks", "1.40")
    assert unknown_line["status"] == "warning" and "no release line" in unknown_line["message"]
    assert one(calendar, "flux", "v2.9.6")["status"] == "warning"
    assert one(calendar, "eks", "latest")["status"] == "warning"


def test_assess_skips_empty_versions_and_flags_a_stale_calendar(calendar: dict) -> None:
    findings = support.assess(calendar, {"eks": "1.36", "helm": ""}, TODAY)
    assert [item["product"] for item in findings] == ["eks"]
    later = support.assess(calendar, {"eks": "1.36"}, datetime.date(2027, 7, 1))
    assert later[-1]["product"] == "support-calendar" and later[-1]["status"] == "warning"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("products: []", "no `products` mapping"),
        ("products: {eks: {source: x}}", "products.eks: no `releases` mapping"),
        ("products: {eks: {releases: {}}}", "products.eks: no `source`"),
        ("products: {eks: {source: x, releases: {'1.3': {}}}}", "releases.1.3: no `end`"),
        ("products: {eks: {source: x, releases: {'1.3': {end: soon}}}}", "'soon' is not a date"),
    ],
)
def test_a_malformed_calendar_is_refused_with_the_place(text: str, message: str) -> None:
    with pytest.raises(support.SupportCalendarError, match=message):
        support.parse(text, "cal.yml")


def test_the_repository_calendar_parses_and_names_a_source_for_every_product() -> None:
    calendar = support.parse((REPO_ROOT / "meta/support-calendar.yml").read_text())
    products = {"eks", "traefik", "ingress-nginx", "helm", "ansible-core", "flux", "cert-manager"}
    assert products <= set(calendar["products"])
    assert all(product["source"].startswith("https://") for product in calendar["products"].values())
    assert all(product["checked"] for product in calendar["products"].values())
