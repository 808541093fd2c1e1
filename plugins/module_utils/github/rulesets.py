# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository ruleset converged to exactly what is declared (biomage.iac.github_ruleset).

The collection uses it for the releases guard: a branch ruleset on the default branch requiring the
``releases-guard`` status check, with the release GitHub App as the only actor allowed past it. The
managed parts (target, enforcement, branches, required checks, bypass actors) are compared in a
normal form, so a ruleset loosened by hand (disabled, a check dropped, someone added to the bypass
list) shows as a difference and is put back; one that matches makes no call but reads.
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError

MANAGED = ("target", "enforcement", "conditions", "rules", "bypass_actors")
DEFAULT_BRANCH = "~DEFAULT_BRANCH"


def desired(name, checks, bypass_app_ids, enforcement="active", branches=None, strict=False):
    """The body of the ruleset (POST/PUT) requiring ``checks`` on ``branches`` (default branch)."""
    return {
        "name": name,
        "target": "branch",
        "enforcement": enforcement,
        "conditions": {"ref_name": {"include": list(branches or [DEFAULT_BRANCH]), "exclude": []}},
        "rules": [
            {
                "type": "required_status_checks",
                "parameters": {
                    "strict_required_status_checks_policy": bool(strict),
                    "required_status_checks": [{"context": check} for check in checks],
                },
            }
        ],
        "bypass_actors": [
            {"actor_id": int(app_id), "actor_type": "Integration", "bypass_mode": "always"} for app_id in bypass_app_ids
        ],
    }


def _normal_rule(rule):
    parameters = dict(rule.get("parameters") or {})
    if rule.get("type") == "required_status_checks":
        checks = [
            {k: v for k, v in check.items() if v is not None} for check in parameters.get("required_status_checks", [])
        ]
        parameters["required_status_checks"] = sorted(
            checks, key=lambda c: (c.get("context", ""), c.get("integration_id", 0))
        )
        parameters.setdefault("strict_required_status_checks_policy", False)
        if not parameters.get("do_not_enforce_on_create"):
            parameters.pop("do_not_enforce_on_create", None)
    out = {"type": rule.get("type")}
    if parameters:
        out["parameters"] = parameters
    return out


def normal(ruleset):
    """The managed parts of a ruleset (as GitHub answers it, or a desired body), comparable."""
    if ruleset is None:
        return None
    conditions = (ruleset.get("conditions") or {}).get("ref_name") or {}
    return {
        "target": ruleset.get("target", "branch"),
        "enforcement": ruleset.get("enforcement"),
        "conditions": {
            "ref_name": {
                "include": sorted(conditions.get("include") or []),
                "exclude": sorted(conditions.get("exclude") or []),
            }
        },
        "rules": sorted((_normal_rule(r) for r in ruleset.get("rules") or []), key=lambda r: r["type"]),
        "bypass_actors": sorted(
            (
                {
                    "actor_id": a.get("actor_id"),
                    "actor_type": a.get("actor_type"),
                    "bypass_mode": a.get("bypass_mode", "always"),
                }
                for a in ruleset.get("bypass_actors") or []
            ),
            key=lambda a: (a["actor_type"] or "", a["actor_id"] or 0, a["bypass_mode"]),
        ),
    }


def differences(current, wanted):
    """The managed parts that differ (their names), in MANAGED's order."""
    if current is None:
        return list(MANAGED)
    before, after = normal(current), normal(wanted)
    return [part for part in MANAGED if before[part] != after[part]]


def find(client, owner, repo, name):
    """The full ruleset named ``name`` of the repository, or None."""
    for summary in client.list_rulesets(owner, repo):
        if summary.get("name") == name and summary.get("source_type", "Repository") == "Repository":
            return client.get_ruleset(owner, repo, summary["id"])
    return None


def ensure(client, owner, repo, wanted, check_mode=False):
    """Converge the ruleset ``wanted["name"]``; a result dict (changed, action, differences, ...)."""
    current = find(client, owner, repo, wanted["name"])
    changed_parts = differences(current, wanted)
    action = "create" if current is None else ("update" if changed_parts else "unchanged")
    ruleset_id = current.get("id") if current else None
    if action != "unchanged" and not check_mode:
        try:
            if current is None:
                answer = client.create_ruleset(owner, repo, wanted)
            else:
                answer = client.update_ruleset(owner, repo, ruleset_id, wanted)
        except GitHubError as exc:
            if exc.status in (403, 404) and not exc.details.get("rate_limited"):
                raise GitHubError(
                    f"cannot {action} ruleset {wanted['name']!r} of {owner}/{repo}: {exc}",
                    status=exc.status,
                    fix="the token (or App) needs the repository's administration permission (write)",
                ) from exc
            raise
        ruleset_id = (answer or {}).get("id", ruleset_id)
    reason = {
        "create": "releases guard not required yet",
        "update": "loosened: " + ", ".join(changed_parts),
        "unchanged": "",
    }[action]
    return {
        "changed": action != "unchanged",
        "action": action,
        "id": ruleset_id,
        "differences": changed_parts if current is not None else [],
        "diff": {"before": normal(current) or {}, "after": normal(wanted)},
        "plan": [plan_entries.entry("GitHub ruleset", f"{owner}/{repo}:{wanted['name']}", action, reason)]
        if action != "unchanged"
        else [],
    }
