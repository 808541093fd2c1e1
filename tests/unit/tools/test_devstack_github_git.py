"""The GitHub stand-in's git side without a server: its bare repositories (commits through the
plumbing, compare-and-swap on main, checkout seeding) and the SSH exec requests it accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from devstack.github_git import ConflictError, GitError, GitStore, valid_path
from devstack.github_ssh import AccessDenied, parse_command

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    store = GitStore(tmp_path / "git")
    store.reset()
    return store


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, text=True, check=True).stdout


def test_commits_change_main_and_identical_content_makes_no_commit(store: GitStore) -> None:
    repo = store.create("Biomage-Org", "UI", {".ci.yaml": "ci-policies: []\n"})
    assert repo == store.root / "biomage-org" / "ui.git"
    first = store.head(repo)
    assert store.read(repo, ".ci.yaml") == b"ci-policies: []\n"
    second = store.commit(repo, {"releases/development/a.yaml": "a: 1\n", "b.txt": "b\n"}, "two files")
    assert git(repo, "rev-list", "--count", "main").strip() == "2"
    assert git(repo, "rev-parse", f"{second}^").strip() == first
    assert store.commit(repo, {"b.txt": "b\n"}, "same content") == second
    third = store.commit(repo, {"b.txt": None}, "delete")
    assert store.read(repo, "b.txt") is None and store.read(repo, "releases/development/a.yaml") == b"a: 1\n"
    assert git(repo, "log", "-1", "--format=%s%n%an", third).split("\n")[:2] == ["delete", "biomage stand-in"]


def test_missing_files_directories_and_bad_paths(store: GitStore) -> None:
    repo = store.create("o", "r", {"dir/file": "x"})
    assert store.read(repo, "dir") is None, "a directory is not a file"
    assert store.read(repo, "nope") is None
    with pytest.raises(KeyError):
        store.commit(repo, {"nope": None}, "delete a missing file")
    for bad in ("../x", "/etc/passwd", "a//b", ".git/config", "a/./b", ""):
        assert not valid_path(bad)
        with pytest.raises(GitError, match="invalid file path"):
            store.commit(repo, {bad: "x"}, "bad")
        assert store.read(repo, bad) is None


def test_an_empty_repository_gets_a_root_commit(store: GitStore) -> None:
    repo = store.create("o", "empty")
    assert store.head(repo) is None and store.read(repo, "x") is None
    commit = store.commit(repo, {"x": "1"}, "first")
    assert store.head(repo) == commit and git(repo, "rev-list", "--count", "main").strip() == "1"


def test_a_branch_moved_meanwhile_is_a_conflict_not_an_overwrite(store: GitStore, monkeypatch) -> None:
    repo = store.create("o", "r", {"x": "1"})
    seen = store.head(repo)
    pushed = store.commit(repo, {"pushed": "by someone else"}, "a push")
    monkeypatch.setattr(store, "head", lambda path: seen)  # main as read before the push landed
    with pytest.raises(ConflictError, match="moved"):
        store.commit(repo, {"mine": "x"}, "mine")
    monkeypatch.undo()
    assert store.head(repo) == pushed


def test_seed_from_the_checkout_is_its_head_tree(store: GitStore, tmp_path: Path) -> None:
    repo = store.create("biomage-org", "iac")
    commit = store.seed_from_checkout(repo, REPO_ROOT)
    head_tree = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD^{tree}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert commit == store.head(repo)
    assert git(repo, "rev-parse", f"{commit}^{{tree}}").strip() == head_tree
    assert not (repo / "objects" / "info" / "alternates").exists(), "the repository stands on its own"
    git(repo, "fsck", "--full")
    assert store.seed_from_checkout(store.create("o", "other"), tmp_path) is None, "not a checkout"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("git-upload-pack 'biomage-org/iac.git'", ("git-upload-pack", "biomage-org", "iac")),
        ("git-upload-pack '/biomage-org/iac'", ("git-upload-pack", "biomage-org", "iac")),
        ("git-receive-pack '/Biomage-Org/iac.git/'", ("git-receive-pack", "Biomage-Org", "iac")),
        ("git-upload-pack biomage-org/ui", ("git-upload-pack", "biomage-org", "ui")),
    ],
)
def test_git_commands_that_are_served(command: str, expected: tuple[str, str, str]) -> None:
    assert parse_command(command) == expected


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (None, "shell access"),
        ("ls", "Invalid command"),
        ("git-upload-archive 'biomage-org/iac.git'", "Invalid command"),
        ("git upload-pack 'biomage-org/iac.git'", "Invalid command"),
        ("git-upload-pack 'biomage-org/iac.git' extra", "Invalid command"),
        ("git-upload-pack 'unterminated", "Invalid command"),
        ("git-upload-pack '../../etc'", "Repository not found"),
        ("git-upload-pack 'biomage-org/../../etc/passwd'", "Repository not found"),
        ("git-upload-pack '/srv/git/biomage-org/iac.git'", "Repository not found"),
        ("git-upload-pack 'biomage-org/..'", "Repository not found"),
        ("git-upload-pack 'biomage-org/iac;id'", "Repository not found"),
    ],
)
def test_everything_else_is_refused(command: str | None, message: str) -> None:
    with pytest.raises(AccessDenied, match=message):
        parse_command(command)
