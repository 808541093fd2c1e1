"""The scripts the workflows run: tools/install-eksctl.sh (checksum-verified, from a release folder
served here on loopback) and tools/run-playbook.sh's input checks."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import platform
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lib.ansible_run import REPO_ROOT

VERSION = next(
    line.split("=", 1)[1]
    for line in (REPO_ROOT / "meta/tool-versions.env").read_text().splitlines()
    if line.startswith("EKSCTL_VERSION=")
)
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
ASSET = f"eksctl_Linux_{ARCH}.tar.gz"


def release_archive(version: str) -> bytes:
    script = f"#!/bin/sh\necho {version}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("eksctl")
        info.size, info.mode = len(script), 0o755
        archive.addfile(info, io.BytesIO(script))
    return buffer.getvalue()


@pytest.fixture
def release(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A release folder (archive + checksum file) served on a free loopback port."""
    folder = tmp_path / "release"
    folder.mkdir()
    archive = release_archive(VERSION)
    (folder / ASSET).write_bytes(archive)
    (folder / "eksctl_checksums.txt").write_text(f"{hashlib.sha256(archive).hexdigest()}  {ASSET}\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def install(url: str, bin_dir: Path, pinned: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the script against ``url``; the stand-in archive replaces the pinned digest unless ``pinned`` is given."""
    digest = pinned or hashlib.sha256(release_archive(VERSION)).hexdigest()
    return subprocess.run(
        [str(REPO_ROOT / "tools/install-eksctl.sh"), str(bin_dir)],
        env={**os.environ, "EKSCTL_RELEASE_URL": url, "EKSCTL_SHA256": digest},
        capture_output=True,
        text=True,
        check=False,
    )


def test_install_eksctl_verifies_and_installs_the_pinned_release(release: tuple[str, Path], tmp_path: Path) -> None:
    url = release[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    first = install(url, bin_dir)
    assert first.returncode == 0, first.stderr
    assert f"eksctl {VERSION} installed" in first.stdout
    assert (
        subprocess.run([bin_dir / "eksctl", "version"], check=True, capture_output=True, text=True).stdout.strip()
        == VERSION
    )
    again = install(url, bin_dir)
    assert again.returncode == 0 and "already installed" in again.stdout


def test_install_eksctl_refuses_an_archive_that_is_not_the_listed_one(
    release: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = release
    (folder / ASSET).write_bytes(release_archive("6.6.6"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    refused = install(url, bin_dir)
    assert refused.returncode == 1
    assert f"{ASSET} has SHA-256" in refused.stderr and "Nothing installed" in refused.stderr
    assert not (bin_dir / "eksctl").exists()


def test_install_eksctl_refuses_a_listed_archive_that_is_not_the_pinned_one(
    release: tuple[str, Path], tmp_path: Path
) -> None:
    url = release[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    refused = install(url, bin_dir, pinned="0" * 64)
    assert refused.returncode == 1
    assert f"{ASSET} has SHA-256" in refused.stderr
    assert f"not the pinned {'0' * 64}. Nothing installed" in refused.stderr
    assert not (bin_dir / "eksctl").exists()


def test_install_eksctl_pins_the_linux_amd64_digest_of_the_pinned_release() -> None:
    script = (REPO_ROOT / "tools/install-eksctl.sh").read_text()
    assert f"{VERSION}/eksctl_Linux_amd64.tar.gz) pinned=" in script


def test_install_eksctl_fails_clearly_when_the_release_is_unreachable(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    failed = install("http://127.0.0.1:9/missing", bin_dir)
    assert failed.returncode != 0
    assert not (bin_dir / "eksctl").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLAYBOOK": "site", "CHECK": "true"}, "ENVIRONMENT is not set"),
        ({"ENVIRONMENT": "qa", "PLAYBOOK": "site", "CHECK": "true"}, "ENVIRONMENT=qa is not an inventory"),
        ({"ENVIRONMENT": "../x", "PLAYBOOK": "site", "CHECK": "true"}, "is not an inventory"),
        ({"ENVIRONMENT": "staging", "PLAYBOOK": "site.yml", "CHECK": "true"}, "PLAYBOOK=site.yml is not a playbook"),
        ({"ENVIRONMENT": "staging", "PLAYBOOK": "site", "CHECK": "yes"}, "CHECK=yes. Fix: true (plan) or false"),
    ],
)
def test_run_playbook_refuses_bad_inputs_before_running_anything(env: dict[str, str], message: str) -> None:
    proc = subprocess.run(
        [str(REPO_ROOT / "tools/run-playbook.sh")],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "ansible-playbook" not in proc.stdout
