# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The support calendar (``meta/support-calendar.yml``): how long each pinned or running version is supported.

:func:`assess` compares versions (``{product: version}``) with the calendar on a given day and returns
one finding per product: ``ok``, ``warning`` (within ``warn_days`` of the end, an estimated date that
has passed, a version the calendar does not know) or ``expired`` (past the end; ``accepted`` when the
operator listed the product in the override). The preflight role turns warnings into run warnings and
fails on expired findings that are not accepted.
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.biomage.iac.plugins.module_utils import safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError

STATUSES = ("ok", "warning", "expired")
DEFAULT_WARN_DAYS = 90
# a calendar not compared with its sources for this long is itself worth a warning
STALE_CALENDAR_DAYS = 183
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")


class SupportCalendarError(BiomageError):
    """The calendar file is missing, not YAML, or not in the calendar's shape."""


def _date(value, where):
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise SupportCalendarError(
            f"{where}: {value!r} is not a date", fix="write dates as YYYY-MM-DD (or null when none is published)"
        ) from None


def parse(text, source="support calendar"):
    """The calendar as ``{"checked": date, "products": {name: {...}}}``, every date parsed and checked."""
    data = safe_yaml.load(text, source)
    if not isinstance(data, dict) or not isinstance(data.get("products"), dict):
        raise SupportCalendarError(
            f"{source}: no `products` mapping", fix="see the header of meta/support-calendar.yml"
        )
    products = {}
    for name, product in data["products"].items():
        where = f"{source}: products.{name}"
        if not isinstance(product, dict) or not isinstance(product.get("releases"), dict):
            raise SupportCalendarError(
                f"{where}: no `releases` mapping", fix="add releases: {<line>: {end: YYYY-MM-DD}}"
            )
        if not product.get("source"):
            raise SupportCalendarError(f"{where}: no `source`", fix="every product names the page its dates come from")
        releases = {}
        for line, release in product["releases"].items():
            if not isinstance(release, dict) or "end" not in release:
                raise SupportCalendarError(f"{where}.releases.{line}: no `end`", fix="set end: YYYY-MM-DD, or null")
            releases[str(line)] = {
                "end": _date(release["end"], f"{where}.releases.{line}.end"),
                "extended_end": _date(release.get("extended_end"), f"{where}.releases.{line}.extended_end"),
                "estimated": bool(release.get("estimated", False)),
            }
        products[str(name)] = {
            "title": str(product.get("title") or name),
            "source": str(product["source"]),
            "checked": _date(product.get("checked"), f"{where}.checked"),
            "releases": releases,
        }
    return {"checked": _date(data.get("checked"), f"{source}: checked"), "products": products}


def release_line(version, releases):
    """The calendar line of ``version`` (its longest matching prefix at a dot), or None."""
    found = _VERSION.match(str(version).strip())
    if not found:
        return None
    parts = found.group(1).split(".")
    for size in range(len(parts), 0, -1):
        line = ".".join(parts[:size])
        if line in releases:
            return line
    return None


def _finding(product, version, status, message, line=None, end=None, info=None):
    info = info or {}
    return {
        "product": product,
        "version": str(version),
        "line": line,
        "status": status,
        "end": end.isoformat() if end else None,
        "days_left": info.get("days_left"),
        "estimated": info.get("estimated", False),
        "accepted": info.get("accepted", False),
        "source": info.get("source"),
        "message": message,
    }


def assess_one(calendar, product, version, today, warn_days=DEFAULT_WARN_DAYS, accepted=()):
    """One finding for ``product`` at ``version`` on ``today``."""
    entry = calendar["products"].get(product)
    if entry is None:
        return _finding(product, version, "warning", f"{product} {version}: not in the support calendar (add it)")
    line = release_line(version, entry["releases"])
    if line is None:
        return _finding(
            product,
            version,
            "warning",
            f"{entry['title']} {version}: no release line in the support calendar matches it "
            f"(add the line with its end of support from {entry['source']})",
            info={"source": entry["source"]},
        )
    release = entry["releases"][line]
    end = release["end"]
    info = {"source": entry["source"], "estimated": release["estimated"]}
    if end is None:
        message = f"{entry['title']} {version}: no end of support published"
        return _finding(product, version, "ok", message, line, info=info)
    days = (end - today).days
    info["days_left"] = days
    est = " (estimated)" if release["estimated"] else ""
    head = f"{entry['title']} {version}: support"
    src = entry["source"]
    extended = f"; extended support until {release['extended_end'].isoformat()}" if release["extended_end"] else ""
    if days < 0:
        info["accepted"] = product in accepted
        if release["estimated"]:
            status, tail = "warning", "check the published date"
        elif info["accepted"]:
            status, tail = "expired", "accepted by preflight_support_accept_expired"
        else:
            status, tail = "expired", "upgrade it, or list it in preflight_support_accept_expired to run anyway"
        message = f"{head} ended {end.isoformat()}{est}, {-days} days ago{extended} ({tail}; {src})"
        return _finding(product, version, status, message, line, end, info)
    if days <= warn_days:
        message = f"{head} ends {end.isoformat()}{est}, in {days} days{extended} (plan the upgrade; {src})"
        return _finding(product, version, "warning", message, line, end, info)
    message = f"{entry['title']} {version}: supported until {end.isoformat()}{est}"
    return _finding(product, version, "ok", message, line, end, info)


def assess(calendar, versions, today, warn_days=DEFAULT_WARN_DAYS, accepted=()):
    """Findings for every ``{product: version}`` (empty versions skipped), sorted by product."""
    findings = [
        assess_one(calendar, product, version, today, warn_days, accepted)
        for product, version in sorted(versions.items())
        if version not in (None, "")
    ]
    checked = calendar.get("checked")
    if checked and (today - checked).days > STALE_CALENDAR_DAYS:
        findings.append(
            _finding(
                "support-calendar",
                checked.isoformat(),
                "warning",
                f"the support calendar was last checked {checked.isoformat()}, {(today - checked).days} days ago "
                "(compare meta/support-calendar.yml with its sources and update `checked`)",
            )
        )
    return findings


def blocking(findings):
    """The expired findings that were not accepted."""
    return [item for item in findings if item["status"] == "expired" and not item["accepted"]]


def today_from(value):
    """``value`` (YYYY-MM-DD) as a date; today (UTC) when empty."""
    if not value:
        return datetime.date(*time.gmtime()[:3])
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise SupportCalendarError(f"today={value!r} is not a date", fix="write it as YYYY-MM-DD") from None


def check_file(path, versions, today=None, warn_days=DEFAULT_WARN_DAYS, accepted=()):
    """The findings for ``versions`` (``{product: version}``, empty ones skipped) against the calendar file at
    ``path`` on ``today`` (YYYY-MM-DD, default today in UTC); SupportCalendarError when the file cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SupportCalendarError(
            f"cannot read the support calendar {path}: {exc.strerror}",
            fix="run from a checkout of the collection (meta/support-calendar.yml)",
        ) from None
    versions = {str(k): str(v) if v is not None else "" for k, v in versions.items()}
    return assess(parse(text, path), versions, today_from(today), warn_days, accepted)


def blocking_message(blocked):
    """Why the run stops for the ``blocked`` findings (see :func:`blocking`), with the fix."""
    names = ", ".join(item["product"] for item in blocked)
    return (
        f"past the end of support: {'; '.join(item['message'] for item in blocked)}. "
        f"Fix: upgrade {names} (docs/support.md), or set preflight_support_accept_expired: [{names}] "
        "to accept the risk for this environment."
    )
