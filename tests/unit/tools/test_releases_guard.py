"""tools/releases_guard.py on real temporary git repositories, and the workflow that runs it.

Each test builds a repository with a `main` branch shaped like this one (releases/<env>/README.md),
branches a pull request off it, commits, and runs the guard as CI does: a subprocess, judged by its
exit status and output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
GUARD = REPO_ROOT / "tools" / "releases_guard.py"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "releases-guard.yml"
ENVIRONMENTS = ("development", "staging", "production")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        for env in ENVIRONMENTS:
            self.write(f"releases/{env}/README.md", f"# releases/{env}\n")
        self.write("releases/staging/ui.yaml", "kind: HelmRelease\n")
        self.write("docs/flux.md", "# Flux\n")
        self.write("README.md", "# iac\n")
        self.commit("initial")

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def write(self, relpath: str, text: str) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def branch(self, name: str, start: str = "main") -> None:
        self.git("checkout", "-q", "-b", name, start)

    def guard(self, base: str = "main", head: str = "pr") -> subprocess.CompletedProcess[str]:
        return run_guard("--repo", str(self.path), "--base", base, "--head", head)


def run_guard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GUARD), *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "iac")
    repo.branch("pr")
    return repo


def assert_rejected(result: subprocess.CompletedProcess[str], *paths: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REJECTED" in result.stdout
    for path in paths:
        assert path in result.stdout, result.stdout
    # the fix is always printed
    assert ".flux.ci" in result.stdout
    assert "written by the CI" in result.stdout


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "REJECTED" not in result.stdout


# --- verdicts on git ranges ------------------------------------------------------------------------


def test_markdown_only_change_under_releases_passes(repo: Repo) -> None:
    repo.write("releases/staging/README.md", "# releases/staging\n\nMore documentation.\n")
    repo.write("releases/production/NOTES.md", "notes\n")
    repo.commit("docs")
    result = repo.guard()
    assert_passed(result)
    assert "2 Markdown file(s)" in result.stdout


def test_change_outside_releases_passes(repo: Repo) -> None:
    repo.write("roles/flux/defaults/main.yml", "---\nflux_version: 2.9.6\n")
    repo.write("docs/flux.md", "# Flux v2\n")
    repo.commit("outside releases")
    assert_passed(repo.guard())


@pytest.mark.parametrize(
    ("action", "path", "word"),
    [
        ("add", "releases/production/api.yaml", "added"),
        ("modify", "releases/staging/ui.yaml", "modified"),
        ("delete", "releases/staging/ui.yaml", "deleted"),
        ("add", "releases/staging/kustomization.yaml", "added"),
        ("add", "releases/new-env/worker.yml", "added"),
        ("add", "releases/staging/.flux.ci", "added"),
    ],
)
def test_a_manifest_added_modified_or_deleted_is_rejected_by_name(
    repo: Repo, action: str, path: str, word: str
) -> None:
    if action == "delete":
        (repo.path / path).unlink()
    else:
        repo.write(path, "kind: HelmRelease\nspec: {}\n")
    repo.commit(action)
    result = repo.guard()
    assert_rejected(result, path)
    assert re.search(rf"^  {word}\s+{re.escape(path)}$", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("releases/staging/ui.yaml", "archive/ui.yaml"),  # out of releases/
        ("docs/flux.md", "releases/staging/flux.yaml"),  # into releases/
        ("releases/staging/ui.yaml", "releases/staging/ui.md"),  # a manifest disguised as documentation
        ("releases/staging/README.md", "releases/staging/README.yaml"),  # documentation made a manifest
        ("releases/staging/ui.yaml", "releases/production/ui.yaml"),  # promotion by hand
    ],
)
def test_renames_touching_a_manifest_on_either_side_are_rejected(repo: Repo, old: str, new: str) -> None:
    (repo.path / new).parent.mkdir(parents=True, exist_ok=True)
    repo.git("mv", old, new)
    repo.commit("rename")
    result = repo.guard()
    assert_rejected(result, f"{old} -> {new}")
    assert "renamed" in result.stdout


def test_renaming_markdown_within_releases_passes(repo: Repo) -> None:
    repo.write("releases/staging/OLD.md", "old notes\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "notes")
    repo.git("mv", "releases/staging/OLD.md", "docs/old-notes.md")
    repo.commit("move notes")
    assert_passed(repo.guard())


def test_every_commit_of_the_pull_request_is_judged_not_only_the_last_push(repo: Repo) -> None:
    repo.write("releases/staging/api.yaml", "kind: HelmRelease\n")
    repo.commit("first push: a manifest")
    repo.write("releases/staging/README.md", "# more docs\n")
    last = repo.commit("second push (synchronize): documentation only")
    # the last commit alone is harmless: the guard of the original system (on `opened` only) missed this
    assert_passed(repo.guard(base="pr~1", head=last))
    assert_rejected(repo.guard(), "releases/staging/api.yaml")


def test_a_manifest_added_then_removed_in_the_same_pull_request_passes(repo: Repo) -> None:
    repo.write("releases/staging/api.yaml", "kind: HelmRelease\n")
    repo.commit("oops")
    (repo.path / "releases/staging/api.yaml").unlink()
    repo.commit("revert the oops")
    assert_passed(repo.guard())


def test_manifests_the_ci_wrote_on_the_base_branch_meanwhile_are_not_the_pull_requests(repo: Repo) -> None:
    repo.write("docs/flux.md", "# Flux, reworded\n")
    repo.commit("docs")
    repo.git("checkout", "-q", "main")
    repo.write("releases/staging/api.yaml", "kind: HelmRelease\n")  # a service's CI pushes to main
    repo.commit("api CI: release")
    # base...head: judged from the merge base, the base branch's own new manifests are not counted
    assert_passed(repo.guard(base="main", head="pr"))
    # and a pull request that merged main in is still judged on its own changes only
    repo.git("checkout", "-q", "pr")
    repo.git("merge", "-q", "--no-edit", "main")
    assert_passed(repo.guard(base="main", head="pr"))


def test_paths_with_spaces_and_unicode(repo: Repo) -> None:
    repo.write("releases/staging/my sandbox/ünïcode app.yaml", "kind: HelmRelease\n")
    repo.write("releases/staging/notes with spaces.md", "notes\n")
    repo.write("docs/a file with spaces.yaml", "x: 1\n")
    repo.commit("spaces")
    result = repo.guard()
    assert_rejected(result, '"releases/staging/my sandbox/ünïcode app.yaml"')
    assert "notes with spaces" not in result.stdout
    assert "a file with spaces" not in result.stdout


def test_a_crafted_file_name_cannot_forge_output_lines(repo: Repo) -> None:
    repo.write("releases/staging/x\n::error::all good.yaml", "kind: HelmRelease\n")
    repo.commit("newline in a name")
    result = repo.guard()
    assert_rejected(result, '"releases/staging/x\\n::error::all good.yaml"')
    assert not any(line.startswith("::") for line in result.stdout.splitlines())


def test_deleting_releases_entirely_is_rejected_even_with_only_markdown_in_it(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "iac")
    (repo.path / "releases/staging/ui.yaml").unlink()
    repo.commit("only documentation under releases/")
    repo.branch("pr")
    repo.git("rm", "-r", "-q", "releases")
    repo.commit("remove releases/")
    result = repo.guard()
    assert_rejected(result, "releases/ (a folder Flux applies", "releases/staging/ (a folder Flux applies")


def test_deleting_an_environment_folder_is_rejected(repo: Repo) -> None:
    repo.git("rm", "-q", "releases/production/README.md")
    repo.commit("the production folder goes with its only file")
    assert_rejected(repo.guard(), "releases/production/")


def test_replacing_releases_with_a_file_is_rejected(repo: Repo) -> None:
    repo.git("rm", "-r", "-q", "releases")
    repo.write("releases", "not a folder\n")
    repo.commit("releases is a file now")
    result = repo.guard()
    assert_rejected(result, "releases")
    assert re.search(r"^  added\s+releases$", result.stdout, re.MULTILINE), result.stdout


def test_it_runs_from_inside_the_checkout_without_repo(repo: Repo) -> None:
    repo.write("releases/staging/ui.yaml", "kind: HelmRelease\nchanged: true\n")
    repo.commit("modify")
    result = run_guard("--base", "main", "--head", "HEAD", cwd=repo.path)
    assert_rejected(result, "releases/staging/ui.yaml")


# --- explicit path lists ---------------------------------------------------------------------------


def test_explicit_paths(tmp_path: Path) -> None:
    assert_passed(run_guard("--paths", "releases/staging/README.md", "docs/x.yaml", "README.md", cwd=tmp_path))
    result = run_guard("--paths", "docs/x.md", "./releases//staging/ui.yaml", "releases/a b/c.yaml", cwd=tmp_path)
    assert_rejected(result, "./releases//staging/ui.yaml", '"releases/a b/c.yaml"')
    assert "docs/x.md" not in result.stdout
    assert_rejected(run_guard("--paths", "releases", cwd=tmp_path), "releases")
    assert_passed(run_guard("--paths", "releasesX/a.yaml", "other/releases/a.yaml", cwd=tmp_path))


# --- errors: exit status 2 -------------------------------------------------------------------------


def test_an_unknown_ref_is_an_error_with_the_fix(repo: Repo) -> None:
    result = repo.guard(base="origin/does-not-exist")
    assert result.returncode == 2
    assert "does not name a commit" in result.stderr
    assert "fetch-depth: 0" in result.stderr


def test_an_option_is_not_taken_for_a_ref(repo: Repo) -> None:
    result = run_guard("--repo", str(repo.path), "--base=--output=/tmp/x", "--head", "pr")
    assert result.returncode == 2
    assert "is not a git ref" in result.stderr


def test_unrelated_histories_are_an_error(repo: Repo) -> None:
    repo.git("checkout", "-q", "--orphan", "unrelated")
    repo.commit("no common ancestor")
    result = repo.guard(base="main", head="unrelated")
    assert result.returncode == 2
    assert "no common ancestor" in result.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["--base", "main"], ["--paths", "a", "--base", "main", "--head", "pr"], ["--paths"]],
)
def test_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = run_guard(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr


# --- the workflow ----------------------------------------------------------------------------------


def load_workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def guard_job() -> dict:
    return load_workflow()["jobs"]["releases-guard"]


def test_workflow_runs_on_every_pull_request_update_from_the_default_branch_definition() -> None:
    triggers = load_workflow()["on"]
    # pull_request_target: the workflow definition comes from the default branch, not from the pull
    # request (with pull_request a pull request could edit this file to pass itself); see its header
    assert set(triggers) == {"pull_request_target"}
    assert triggers["pull_request_target"]["types"] == ["opened", "synchronize", "reopened", "edited"]
    assert "branches" not in triggers["pull_request_target"], "every base branch is guarded"


def test_workflow_token_is_read_only_and_no_secret_is_used() -> None:
    workflow = load_workflow()
    assert workflow["permissions"] == {"contents": "read"}
    assert "permissions" not in guard_job(), "the job inherits the read-only token"
    assert "secrets." not in WORKFLOW.read_text()


def test_workflow_status_check_name_is_stable() -> None:
    # branch protection requires this name (docs/releases.md); renaming the job silently drops the check
    assert guard_job()["name"] == "releases-guard"
    assert "if" not in guard_job(), "a skipped required job counts as passed"
    assert all("if" not in step for step in guard_job()["steps"])
    assert all(not step.get("continue-on-error") for step in guard_job()["steps"])


def test_workflow_actions_are_pinned_by_commit_sha_with_a_version_comment() -> None:
    uses_lines = [line.strip() for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert uses_lines
    for line in uses_lines:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


def test_workflow_checks_out_the_base_never_the_pull_request() -> None:
    steps = guard_job()["steps"]
    checkouts = [step for step in steps if step.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 1
    options = checkouts[0]["with"]
    assert options["ref"] == "${{ github.event.pull_request.base.ref }}"
    assert options["fetch-depth"] == 0
    text = WORKFLOW.read_text()
    for untrusted in ("head.ref", "head_ref", "merge_commit_sha", "refs/pull/${PR_NUMBER}/merge"):
        assert untrusted not in text
    # pull request data reaches the shell through the environment only, never spliced into a script
    for step in steps:
        assert "${{" not in step.get("run", ""), step["name"]


def test_workflow_runs_the_base_branchs_copy_of_the_guard_on_the_whole_range() -> None:
    run = "\n".join(step.get("run", "") for step in guard_job()["steps"])
    assert 'git show "origin/${BASE_REF}:tools/releases_guard.py" > "${RUNNER_TEMP}/releases_guard.py"' in run
    assert 'python3 "${RUNNER_TEMP}/releases_guard.py" --base "origin/${BASE_REF}" --head "${HEAD_SHA}"' in run
    assert "python3 tools/releases_guard.py" not in run


def test_workflow_steps_reject_a_pull_request_that_also_rewrites_the_guard(tmp_path: Path) -> None:
    """Run the workflow's own shell steps against a stand-in of GitHub's repository: the pull request
    (refs/pull/7/head) adds a manifest and edits tools/releases_guard.py to always pass."""
    origin = Repo(tmp_path / "origin")
    (origin.path / "tools").mkdir()
    (origin.path / "tools" / "releases_guard.py").write_bytes(GUARD.read_bytes())
    origin.commit("the guard")
    origin.branch("feature")
    origin.write("tools/releases_guard.py", "import sys\nsys.exit(0)\n")
    origin.write("releases/production/api.yaml", "kind: HelmRelease\n")
    head_sha = origin.commit("sneak a release in")
    origin.git("update-ref", "refs/pull/7/head", head_sha)
    origin.git("checkout", "-q", "main")
    origin.git("branch", "-q", "-D", "feature")  # a fork's branch: only refs/pull/7/head exists here

    # actions/checkout: the base branch, full history
    runner = tmp_path / "runner"
    subprocess.run(
        ["git", "clone", "-q", "--branch", "main", str(origin.path), str(runner / "work")],
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    (runner / "temp").mkdir()
    env = {
        **os.environ,
        **GIT_ENV,
        "PR_NUMBER": "7",
        "HEAD_SHA": head_sha,
        "BASE_REF": "main",
        "RUNNER_TEMP": str(runner / "temp"),
    }
    outputs = []
    for step in guard_job()["steps"]:
        if "run" not in step:
            continue
        result = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=runner / "work",
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        outputs.append(result)
        if result.returncode:
            break
    assert [r.returncode for r in outputs] == [0, 1], [(r.stdout, r.stderr) for r in outputs]
    assert_rejected(outputs[-1], "releases/production/api.yaml")
