"""The GitHub stand-in's git repositories: one bare repository per stand-in repository, on disk.

They are what the stand-in serves over SSH (github_ssh.py) and what its REST file-content endpoint
reads (the default branch, ``main``). Every repository is created fresh when the stand-in starts,
like the rest of its state; a repository marked ``"checkout": true`` in the seed starts with one
commit holding the tree of this checkout's HEAD commit (committed work only, no history), the
others with their seed files (or empty, as a new GitHub repository is).

Commits are made with git's plumbing on a private index (never a work tree), and moved onto
``main`` with a compare-and-swap ``update-ref``, so a concurrent push over SSH is never overwritten.
Every git call is an argument list with an isolated environment (no user or system config, no hooks
of the checkout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

BRANCH = "main"
REF = f"refs/heads/{BRANCH}"
ZERO = "0" * 40
AUTHOR = ("biomage stand-in", "standin@biomage.test")
# a file path inside a repository: relative, slash-separated, no empty, '.', '..' or '.git' part
_PART = re.compile(r"^(?!\.{1,2}$)(?!\.git$)[^/\x00]+$", re.IGNORECASE)


class GitError(RuntimeError):
    """A git command failed, or a request names something git cannot store."""


class ConflictError(GitError):
    """The branch moved while a commit was being made (a push landed meanwhile)."""


def valid_path(path: str) -> bool:
    return bool(path) and all(_PART.match(part) for part in path.split("/"))


def git_env(home: Path) -> dict[str, str]:
    """The environment every git process of the stand-in runs with: no user or system config."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }


class GitStore:
    """Bare repositories under ``root``, as ``<root>/<owner>/<name>.git``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.env = git_env(self.root)
        self.commit_lock = threading.Lock()

    def path(self, owner: str, name: str) -> Path:
        return self.root / owner.lower() / f"{name.lower()}.git"

    def _git(self, repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        proc = subprocess.run(
            ["git", f"--git-dir={repo}", *args],
            input=stdin,
            capture_output=True,
            env={**self.env, **(env or {})},
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            raise GitError(f"git {args[0]} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    # -- creation ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Remove every repository (a fresh stand-in starts with fresh repositories)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, owner: str, name: str, files: dict[str, str] | None = None) -> Path:
        """A bare repository with ``files`` committed on ``main`` (none: an empty repository).
        An existing repository is kept, with ``files`` committed on top."""
        repo = self.path(owner, name)
        if not (repo / "HEAD").is_file():
            repo.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(repo)],
                env=self.env, check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        if files:
            self.commit(repo, dict(files), "Seed files")
        return repo

    def seed_from_checkout(self, repo: Path, checkout: Path) -> str | None:
        """Commit the tree of ``checkout``'s HEAD onto ``repo``'s ``main``; its sha, or None when
        ``checkout`` is not a git work tree with a commit."""
        probe = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--path-format=absolute", "--git-path", "objects",
             "HEAD^{commit}", "HEAD^{tree}"],
            # only the checkout itself, never a repository around it
            capture_output=True, env={**self.env, "GIT_CEILING_DIRECTORIES": str(checkout.resolve().parent)},
            check=False, timeout=60, text=True,
        )  # fmt: skip
        if probe.returncode != 0:
            return None
        objects, head, tree = probe.stdout.splitlines()
        alternates = repo / "objects" / "info" / "alternates"
        alternates.parent.mkdir(parents=True, exist_ok=True)
        # borrow the checkout's objects for one commit, copy what the tree needs, then stop borrowing
        alternates.write_text(objects + "\n", encoding="utf-8")
        try:
            parent = self.head(repo)
            commit = self._commit_tree(repo, tree, parent, f"Snapshot of the checkout's HEAD ({head})")
            self._git(repo, "update-ref", REF, commit, parent or ZERO)
            self._git(repo, "repack", "-a", "-d", "-q")
        finally:
            alternates.unlink(missing_ok=True)
        self._git(repo, "fsck", "--connectivity-only", "--no-dangling")
        return commit

    # -- reading -------------------------------------------------------------------------------
    def head(self, repo: Path) -> str | None:
        out = subprocess.run(
            ["git", f"--git-dir={repo}", "rev-parse", "--verify", "--quiet", f"{REF}^{{commit}}"],
            capture_output=True, env=self.env, check=False, timeout=60, text=True,
        )  # fmt: skip
        return out.stdout.strip() or None

    def log(self, repo: Path, path: str | None = None) -> list[dict[str, str]]:
        """Commits on ``main`` (newest first; those touching ``path`` when given): sha, author, subject."""
        if self.head(repo) is None:
            return []
        args = ["log", "--format=%H%x1f%an%x1f%s", REF, *(["--", path] if path else [])]
        lines = self._git(repo, *args).decode().splitlines()
        return [dict(zip(("sha", "author", "subject"), line.split("\x1f"), strict=True)) for line in lines if line]

    def read(self, repo: Path, path: str) -> bytes | None:
        """The content of file ``path`` on ``main``; None when it is missing or not a file."""
        if not valid_path(path):
            return None
        out = self._git(repo, "cat-file", "--batch", stdin=f"{REF}:{path}\n".encode())
        header, _newline, rest = out.partition(b"\n")
        fields = header.split()
        if len(fields) != 3 or fields[1] != b"blob":
            return None
        return rest[: int(fields[2])]

    # -- writing -------------------------------------------------------------------------------
    def _commit_tree(
        self, repo: Path, tree: str, parent: str | None, message: str, author: tuple[str, str] = AUTHOR
    ) -> str:
        name, email = author
        ident = {
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
        }  # fmt: skip
        parents = ["-p", parent] if parent else []
        return self._git(repo, "commit-tree", tree, *parents, "-m", message, env=ident).decode().strip()

    def commit(self, repo: Path, changes: dict[str, str | None], message: str, author: tuple[str, str] = AUTHOR) -> str:
        """Commit ``changes`` (path: new content, or None to delete) on ``main``; the new head.

        Raises KeyError naming a path to delete that does not exist, GitError for an invalid path,
        ConflictError when ``main`` moved meanwhile. Changes that alter nothing make no commit.
        """
        bad = [path for path in changes if not valid_path(path)]
        if bad:
            raise GitError(f"invalid file path(s): {', '.join(sorted(bad))}")
        with self.commit_lock, tempfile.TemporaryDirectory(prefix="index-", dir=repo) as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            parent = self.head(repo)
            if parent:
                self._git(repo, "read-tree", parent, env=index)
            for path, content in sorted(changes.items()):
                if content is None:
                    if self.read(repo, path) is None:
                        raise KeyError(path)
                    # mode 0: remove the entry (--force-remove would need a work tree)
                    self._git(repo, "update-index", "--index-info", stdin=f"0 {ZERO}\t{path}\n".encode(), env=index)
                else:
                    blob = self._git(repo, "hash-object", "-w", "--stdin", stdin=content.encode()).decode().strip()
                    self._git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
            tree = self._git(repo, "write-tree", env=index).decode().strip()
            if parent and tree == self._git(repo, "rev-parse", f"{parent}^{{tree}}").decode().strip():
                return parent
            commit = self._commit_tree(repo, tree, parent, message, author)
            try:
                self._git(repo, "update-ref", REF, commit, parent or ZERO)
            except GitError as exc:
                raise ConflictError(f"{BRANCH} moved while committing (a push landed): {exc}") from exc
            return commit
