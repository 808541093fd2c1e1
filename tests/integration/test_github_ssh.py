"""Git over SSH on the local GitHub stand-in, with OpenSSH's git: the repository's deploy keys only
(a read-only key clones but cannot push, a deleted key is refused at once), nothing but git's two
services on known repositories, and a host key that stays the same for the life of the state folder
and verifies strictly against the published known_hosts line."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack import Stack

from tests.lib.github import OWNER, add_deploy_key, call, commit_files, git, new_ssh_key, ssh_argv, ssh_url

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("github-ssh"), ["github"])
    stack.stop_with_owner()
    env = stack.up()
    try:
        yield env
    finally:
        stack.down()


def head(env: dict[str, str], repo: str = "iac") -> str:
    return call(env, "GET", f"/_standin/commits/{OWNER}/{repo}")[1]["commit"]


def remote_head(env: dict[str, str], key: Path, repo: str = "iac") -> subprocess.CompletedProcess[str]:
    return git(env, key, "ls-remote", ssh_url(env, repo), "refs/heads/main")


def test_published_endpoint_and_known_hosts_line(github: dict[str, str]) -> None:
    port = int(github["GITHUB_SSH_URL"].removeprefix("ssh://git@127.0.0.1:"))
    line = Path(github["GITHUB_SSH_KNOWN_HOSTS_FILE"]).read_text()
    assert re.fullmatch(rf"\[127\.0\.0\.1\]:{port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=*\n", line)
    host_key = Path(github["BIOMAGE_DEVSTACK_DIR"]) / "github" / "ssh_host_ed25519_key"
    assert host_key.stat().st_mode & 0o077 == 0, "the host's private key is 0600"


def test_read_only_key_clones_the_checkouts_head(github: dict[str, str], tmp_path: Path) -> None:
    key, public = new_ssh_key(tmp_path, "reader")
    key_id = add_deploy_key(github, public, "reader")
    assert call(github, "GET", f"/repos/{OWNER}/iac/keys/{key_id}")[1]["last_used"] is None

    cloned = git(github, key, "clone", "--quiet", ssh_url(github), str(tmp_path / "iac"))
    assert cloned.returncode == 0, cloned.stderr
    checkout_head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD", "HEAD^{tree}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert git(github, key, "rev-parse", "HEAD^{tree}", cwd=tmp_path / "iac").stdout.strip() == checkout_head[1]
    assert (tmp_path / "iac" / "charts" / "nodejs" / "Chart.yaml").is_file()
    message = git(github, key, "log", "-1", "--format=%s", cwd=tmp_path / "iac").stdout
    assert checkout_head[0] in message
    assert call(github, "GET", f"/repos/{OWNER}/iac/keys/{key_id}")[1]["last_used"], "GitHub records the use"


def test_read_only_key_cannot_push_a_read_write_key_can(github: dict[str, str], tmp_path: Path) -> None:
    reader, reader_public = new_ssh_key(tmp_path, "reader", "rsa")
    writer, writer_public = new_ssh_key(tmp_path, "writer", "ecdsa")
    add_deploy_key(github, reader_public, "reader")
    add_deploy_key(github, writer_public, "writer", read_only=False)
    work = tmp_path / "work"
    assert git(github, reader, "clone", "--quiet", ssh_url(github), str(work)).returncode == 0
    (work / "releases" / "development").mkdir(parents=True, exist_ok=True)
    (work / "releases" / "development" / "pushed.yaml").write_text("pushed: true\n")
    git(github, reader, "add", "releases/development/pushed.yaml", cwd=work)
    assert git(github, reader, "commit", "--quiet", "-m", "a release", cwd=work).returncode == 0
    local = git(github, reader, "rev-parse", "HEAD", cwd=work).stdout.strip()
    before = head(github)

    refused = git(github, reader, "push", "origin", "HEAD:main", cwd=work)
    assert refused.returncode != 0
    assert "The key you are authenticating with has been marked as read only" in refused.stderr
    assert head(github) == before

    pushed = git(github, writer, "push", "origin", "HEAD:main", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    assert head(github) == local
    again = git(github, reader, "clone", "--quiet", ssh_url(github), str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "releases" / "development" / "pushed.yaml").read_text() == "pushed: true\n"
    status = call(github, "GET", f"/repos/{OWNER}/iac/contents/releases/development/pushed.yaml")[0]
    assert status == 200, "the REST API reads the same repository"


def test_admin_commits_are_what_ssh_serves(github: dict[str, str], tmp_path: Path) -> None:
    key, public = new_ssh_key(tmp_path, "flux")
    add_deploy_key(github, public, "flux")
    commit = commit_files(github, {"releases/development/x.yaml": "x: 1\n"}, message="add x")
    assert remote_head(github, key).stdout.split() == [commit, "refs/heads/main"]
    cloned = git(github, key, "clone", "--quiet", "--depth=1", ssh_url(github), str(tmp_path / "c"))
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "c" / "releases" / "development" / "x.yaml").read_text() == "x: 1\n"
    removed = commit_files(github, {"releases/development/x.yaml": None}, message="remove x")
    assert remote_head(github, key).stdout.split() == [removed, "refs/heads/main"]


def test_deleted_key_is_refused_at_once(github: dict[str, str], tmp_path: Path) -> None:
    key, public = new_ssh_key(tmp_path, "rotated")
    key_id = add_deploy_key(github, public, "rotated")
    assert remote_head(github, key).returncode == 0
    assert call(github, "DELETE", f"/repos/{OWNER}/iac/keys/{key_id}")[0] == 204
    refused = remote_head(github, key)
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr


def test_unknown_keys_other_repositories_and_other_users_are_refused(github: dict[str, str], tmp_path: Path) -> None:
    unknown = new_ssh_key(tmp_path, "unknown")[0]
    refused = remote_head(github, unknown)
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr

    ui_key, ui_public = new_ssh_key(tmp_path, "ui")
    add_deploy_key(github, ui_public, "ui", repo="ui")
    assert remote_head(github, ui_key, "ui").returncode == 0
    other = remote_head(github, ui_key, "iac")
    assert other.returncode != 0 and "ERROR: Repository not found." in other.stderr

    user = subprocess.run(
        [*ssh_argv(github, ui_key), "-l", "root", "127.0.0.1", "git-upload-pack 'biomage-org/ui.git'"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=False,
    )  # fmt: skip
    assert user.returncode == 255 and "Permission denied (publickey)" in user.stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("ls -la /", "Invalid command"),
        ("git-upload-archive 'biomage-org/iac.git'", "Invalid command"),
        ("git-upload-pack '../../../etc'", "Repository not found"),
        ("git-upload-pack 'biomage-org/../../github/token'", "Repository not found"),
        ("git-receive-pack 'biomage-org/nope.git'", "Repository not found"),
        (None, "the GitHub stand-in does not provide shell access"),
    ],
)
def test_only_git_on_the_keys_repository_is_served(
    github: dict[str, str], tmp_path: Path, command: str | None, message: str
) -> None:
    key, public = new_ssh_key(tmp_path, "writer")
    add_deploy_key(github, public, f"writer {command}", read_only=False)
    argv = [*ssh_argv(github, key), "-T", "git@127.0.0.1", *([command] if command else [])]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=False)
    assert result.returncode == 1 and f"ERROR: {message}" in result.stderr, result.stderr


def test_host_key_survives_a_restart_and_is_verified_strictly(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state", ["github"])
    first = stack.up()
    try:
        line = Path(first["GITHUB_SSH_KNOWN_HOSTS_FILE"]).read_text()
        key, public = new_ssh_key(tmp_path, "flux")
        add_deploy_key(first, public, "flux")
        assert remote_head(first, key).returncode == 0
        stack.down()
        second = stack.up()
        assert Path(second["GITHUB_SSH_KNOWN_HOSTS_FILE"]).read_text().split()[1:] == line.split()[1:]
        assert second["GITHUB_SSH_URL"] == first["GITHUB_SSH_URL"], "the port is kept while it is free"
        # the stand-in's repositories and deploy keys start afresh; its identity does not
        refused = remote_head(second, key)
        assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr
        add_deploy_key(second, public, "flux")
        # the line published by the first run still verifies the restarted server (StrictHostKeyChecking)
        saved = tmp_path / "known_hosts.first"
        saved.write_text(line)
        verified = git(second, key, "ls-remote", ssh_url(second), known_hosts=saved)
        assert verified.returncode == 0, verified.stderr

        other_host = new_ssh_key(tmp_path, "impostor")[1]
        wrong = tmp_path / "known_hosts.wrong"
        wrong.write_text(f"{line.split()[0]} {' '.join(other_host.split()[:2])}\n")
        mismatch = git(second, key, "ls-remote", ssh_url(second), known_hosts=wrong)
        assert mismatch.returncode != 0 and "Host key verification failed" in mismatch.stderr
    finally:
        stack.down()
