"""Every playbook that changes an environment takes the environment lock (issue 15, docs/environment-lock.md):
its play runs biomage.iac.preflight first (lock enabled) and releases the lock in its post_tasks; a
playbook of imported playbooks keeps the lock between them and the last one releases it. The playbooks
that take no lock are listed here with their reason, and in docs/environment-lock.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
PREFLIGHT = "biomage.iac.preflight"
# playbook -> why it takes no lock (docs/environment-lock.md "Which playbooks take it")
NO_LOCK = {
    "release.yml": "writes one file of the IaC repository through GitHub's API; changes no environment itself",
    "unlock.yml": "reads or breaks the lock itself",
}
PLAYBOOKS = sorted(path.name for path in (REPO_ROOT / "playbooks").glob("*.yml"))


def plays(name: str) -> list[dict]:
    return yaml.safe_load((REPO_ROOT / "playbooks" / name).read_text())


def role_name(entry: object) -> str:
    return entry if isinstance(entry, str) else entry.get("role") or entry.get("name")


def releases_the_lock(task: dict) -> bool:
    include = task.get("ansible.builtin.include_role") or {}
    return include.get("name") == PREFLIGHT and include.get("tasks_from") == "unlock.yml"


def test_every_playbook_is_checked() -> None:
    assert {"base.yml", "ci.yml", "resources.yml", "sandbox.yml", "site.yml"} <= set(PLAYBOOKS)
    assert set(NO_LOCK) <= set(PLAYBOOKS), "an exemption for a playbook that no longer exists"


@pytest.mark.parametrize("name", [p for p in PLAYBOOKS if p not in NO_LOCK])
def test_a_changing_playbook_takes_the_lock_first_and_releases_it_last(name: str) -> None:
    for play in plays(name):
        if "ansible.builtin.import_playbook" in play:
            continue  # checked below
        roles = play.get("roles") or []
        assert roles and role_name(roles[0]) == PREFLIGHT, f"{name}: {play['name']} does not start with preflight"
        assert not isinstance(roles[0], dict) or "preflight_lock_enabled" not in roles[0], f"{name}: lock disabled"
        assert not [t for t in (play.get("pre_tasks") or []) + (play.get("tasks") or []) if releases_the_lock(t)]
        post = play.get("post_tasks") or []
        assert post and releases_the_lock(post[-1]), f"{name}: {play['name']} must release the lock last"
        assert post[-1].get("when") == "not biomage_lock_keep | default(false) | bool", f"{name}: release guard"


def test_imported_playbooks_keep_one_lock_and_the_last_releases_it() -> None:
    for name in PLAYBOOKS:
        imports = [p for p in plays(name) if "ansible.builtin.import_playbook" in p]
        if not imports:
            continue
        targets = [p["ansible.builtin.import_playbook"] for p in imports]
        assert not set(targets) & set(NO_LOCK) and all(t in PLAYBOOKS for t in targets), name
        assert [bool((p.get("vars") or {}).get("biomage_lock_keep")) for p in imports] == [True] * (
            len(imports) - 1
        ) + [False], f"{name}: every import but the last keeps the lock"


def test_the_playbooks_without_a_lock_are_documented() -> None:
    docs = (REPO_ROOT / "docs/environment-lock.md").read_text()
    for name in NO_LOCK:
        assert f"`playbooks/{name}`" in docs
    unlock = plays("unlock.yml")[0]["roles"][0]
    assert role_name(unlock) == PREFLIGHT and unlock["preflight_lock_enabled"] is False
