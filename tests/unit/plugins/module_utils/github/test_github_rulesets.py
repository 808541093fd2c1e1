"""The releases guard ruleset: what is declared, and which hand-made loosenings count as differences."""

from __future__ import annotations

import copy

from ansible_collections.biomage.iac.plugins.module_utils.github import rulesets


def answered(body: dict) -> dict:
    """A ruleset as GitHub answers it: ids, links, checks with null integration ids, in other orders."""
    found = copy.deepcopy(body)
    found.update(id=7, source="o/r", source_type="Repository", _links={})
    for rule in found["rules"]:
        for check in rule["parameters"]["required_status_checks"]:
            check["integration_id"] = None
    return found


def test_an_equal_ruleset_has_no_difference() -> None:
    wanted = rulesets.desired("releases guard", ["releases-guard"], [42])
    assert rulesets.differences(answered(wanted), wanted) == []
    assert wanted["bypass_actors"] == [{"actor_id": 42, "actor_type": "Integration", "bypass_mode": "always"}]
    assert wanted["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]


def test_each_loosening_is_a_difference() -> None:
    wanted = rulesets.desired("releases guard", ["releases-guard"], [42])
    cases = {
        "enforcement": lambda r: r.update(enforcement="evaluate"),
        "bypass_actors": lambda r: r["bypass_actors"].append({"actor_id": 1, "actor_type": "OrganizationAdmin"}),
        "rules": lambda r: r["rules"][0]["parameters"].update(required_status_checks=[]),
        "conditions": lambda r: r["conditions"]["ref_name"].update(include=["refs/heads/other"]),
    }
    for part, loosen in cases.items():
        current = answered(wanted)
        loosen(current)
        assert rulesets.differences(current, wanted) == [part]
    assert rulesets.differences(None, wanted) == list(rulesets.MANAGED)
