"""Reject changes to the release manifests under releases/: only the services' CI writes them.

    python tools/releases_guard.py --base origin/main --head HEAD     # judge a branch (a pull request)
    python tools/releases_guard.py --repo DIR --base A --head B       # in another checkout
    python tools/releases_guard.py --paths releases/staging/ui.yaml   # judge an explicit list of paths

With refs, the change judged is the whole pull request: ``git diff --name-status -M -z base...head``
(every commit from the merge base of the two refs to the head, not only the last push). Every
added, copied, modified, deleted, renamed (either side) or type-changed path under ``releases/``
that is not Markdown documentation (``*.md``) is an offence; so is deleting one of the folders
Flux reads (``releases/`` or ``releases/<env>/``), even when only Markdown was in it.

Exit status: 0 the change may be merged, 1 it changes release manifests (each offending path is
printed with the fix), 2 usage or git error. Python 3.9+ standard library only; git is run with
argument lists, never through a shell. The CI workflow .github/workflows/releases-guard.yml runs the
base branch's copy of this file; docs/releases.md explains the rule and the required status check.
"""

from __future__ import annotations

import argparse
import posixpath
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

RELEASES = "releases"
DOCUMENTATION_SUFFIX = ".md"
FIX = (
    "Release manifests under releases/ are written by the CI of each service's repository (from its "
    ".flux.ci template), not by pull requests here. To change a release, change the service "
    "repository's .flux.ci template (or its CI) and let its pipeline push the manifest. Revert the "
    "paths above from this branch; Markdown documentation (*.md) under releases/ may still be edited."
)
STATUS_WORDS = {
    "A": "added",
    "C": "copied",
    "D": "deleted",
    "M": "modified",
    "R": "renamed",
    "T": "type changed",
    "U": "unmerged",
    "X": "unknown",
    "?": "changed",  # --paths: the status is not known
}


class GuardError(Exception):
    """A usage or git error: exit status 2."""


@dataclass(frozen=True)
class Change:
    status: str  # one letter of git diff --name-status (the score of R/C dropped)
    paths: tuple[str, ...]  # one path, or (old, new) for renames and copies

    def judged_paths(self) -> tuple[str, ...]:
        # a copy leaves its source untouched: only the new path is changed
        return self.paths[1:] if self.status == "C" else self.paths


def normalise(path: str) -> str:
    """A repository-relative POSIX path without ``./`` or doubled slashes (git's own are already so)."""
    normal = posixpath.normpath(path.strip("/")) if path not in ("", ".") else ""
    return "" if normal == "." else normal


def is_under_releases(path: str) -> bool:
    parts = PurePosixPath(normalise(path)).parts
    return bool(parts) and parts[0] == RELEASES


def is_documentation(path: str) -> bool:
    name = PurePosixPath(normalise(path)).name
    return name.endswith(DOCUMENTATION_SUFFIX) and name != DOCUMENTATION_SUFFIX


def offends(path: str) -> bool:
    return is_under_releases(path) and not is_documentation(path)


def shown(path: str) -> str:
    """A path printable on one line: control characters, undecodable bytes and other unprintable
    characters are escaped (so a crafted file name cannot forge CI log lines or workflow commands);
    a path with spaces or escapes is quoted."""
    out = []
    for char in path:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char.isprintable():
            out.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    text = "".join(out)
    return f'"{text}"' if text != path or " " in path or not path else path


def git(repo: str, *args: str) -> bytes:
    command = ["git", "-C", repo, "-c", "core.quotePath=false", *args]
    try:
        result = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise GuardError("git is not on PATH") from exc
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()
        raise GuardError(f"`git {' '.join(args)}` failed (exit {result.returncode}): {detail}")
    return result.stdout


def commit_of(repo: str, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise GuardError(f"{ref!r} is not a git ref")
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").decode().strip()
    except GuardError as exc:
        raise GuardError(
            f"{ref!r} does not name a commit in {repo}: fetch it first (CI: actions/checkout with fetch-depth: 0)"
        ) from exc


def parse_name_status(raw: bytes) -> list[Change]:
    """Parse ``git diff --name-status -z`` output: ``STATUS\\0path\\0``, or ``R<score>\\0old\\0new\\0``."""
    fields = [raw_field.decode("utf-8", "surrogateescape") for raw_field in raw.split(b"\0")]
    if fields and fields[-1] == "":
        fields.pop()
    changes = []
    index = 0
    while index < len(fields):
        status = fields[index][:1]
        width = 2 if status in ("R", "C") else 1
        paths = tuple(fields[index + 1 : index + 1 + width])
        if not status or len(paths) != width:
            raise GuardError(f"unexpected `git diff --name-status -z` output near field {index}: {fields[index:]!r}")
        changes.append(Change(status, paths))
        index += 1 + width
    return changes


def release_folders(repo: str, commit: str) -> set[str]:
    """``releases`` and its sub-folders (``releases/<env>``) that are folders (trees) in a commit."""

    def trees(*pathspec: str) -> set[str]:
        raw = git(repo, "ls-tree", "-z", "-d", "--name-only", commit, "--", *pathspec)
        return {name.decode("utf-8", "surrogateescape") for name in raw.split(b"\0") if name}

    if RELEASES not in trees():
        return set()
    return {RELEASES} | trees(f"{RELEASES}/")


def changes_between(repo: str, base: str, head: str) -> tuple[list[Change], list[str]]:
    """The changes of ``base...head`` and the release folders they delete."""
    base_commit = commit_of(repo, base)
    head_commit = commit_of(repo, head)
    try:
        merge_base = git(repo, "merge-base", base_commit, head_commit).decode().strip()
    except GuardError as exc:
        raise GuardError(
            f"{base} and {head} have no common ancestor in {repo} (a shallow clone? fetch the full history: "
            "actions/checkout with fetch-depth: 0)"
        ) from exc
    raw = git(
        repo,
        "diff",
        "--name-status",
        "-M",
        "-z",
        "--no-color",
        "--no-ext-diff",
        "--no-relative",
        "--end-of-options",
        f"{base_commit}...{head_commit}",
        "--",
    )
    removed_folders = sorted(release_folders(repo, merge_base) - release_folders(repo, head_commit))
    return parse_name_status(raw), removed_folders


def offences(changes: Iterable[Change]) -> list[Change]:
    return [change for change in changes if any(offends(path) for path in change.judged_paths())]


def describe(change: Change) -> str:
    word = STATUS_WORDS.get(change.status, change.status)
    return f"{word:<12} {' -> '.join(shown(path) for path in change.paths)}"


def verdict(changes: Sequence[Change], removed_folders: Sequence[str], out=sys.stdout) -> int:
    bad = offences(changes)
    if not bad and not removed_folders:
        touched = sum(1 for change in changes if any(is_under_releases(p) for p in change.paths))
        note = f" ({touched} Markdown file(s) under releases/ changed)" if touched else ""
        print(f"releases-guard: OK, no release manifest under releases/ is changed{note}.", file=out)
        return 0
    print("releases-guard: REJECTED: this change touches release manifests under releases/:", file=out)
    for change in bad:
        print(f"  {describe(change)}", file=out)
    for folder in removed_folders:
        print(f"  {'deleted':<12} {shown(folder)}/ (a folder Flux applies; it must stay)", file=out)
    print(file=out)
    print(f"How to fix: {FIX}", file=out)
    return 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="releases_guard.py",
        description="Reject changes to release manifests under releases/ (Markdown documentation excepted).",
    )
    parser.add_argument("--repo", default=".", help="the git checkout (default: the current directory)")
    parser.add_argument("--base", help="the pull request's base (e.g. origin/main or a commit)")
    parser.add_argument("--head", help="the pull request's head (e.g. HEAD or a commit)")
    parser.add_argument(
        "--paths",
        nargs="+",
        metavar="PATH",
        help="judge these repository-relative paths instead of a git range (every side of a rename)",
    )
    args = parser.parse_args(argv)
    if args.paths is not None and (args.base or args.head):
        parser.error("give either --paths or --base and --head, not both")
    if args.paths is None and not (args.base and args.head):
        parser.error("give --base and --head (a git range), or --paths")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.paths is not None:
            changes = [Change("?", (path,)) for path in args.paths]
            removed: list[str] = []
        else:
            changes, removed = changes_between(args.repo, args.base, args.head)
    except GuardError as exc:
        print(f"releases-guard: ERROR: {exc}", file=sys.stderr)
        return 2
    return verdict(changes, removed)


if __name__ == "__main__":
    sys.exit(main())
