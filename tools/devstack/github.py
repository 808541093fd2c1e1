"""The GitHub stand-in of the local stack (see github_standin.py): its REST API and git over SSH
(github_ssh.py), each on a loopback port.

The stand-in's token is generated per stack and kept in a 0600 file whose path (never the token)
goes into the env file, as GITHUB_TOKEN_FILE.

A GitHub App is registered at start: its RSA private key (PEM, 0600) is ``github/app.pem`` of the
state folder, and the env file gets GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and
GITHUB_APP_PRIVATE_KEY_FILE (a path, never the key).

Its SSH host key (ed25519, ``github/ssh_host_ed25519_key``, 0600) is made once per state folder and
kept across restarts, like the SSH port when it is still free; ``github/known_hosts`` holds the one
line a client needs (``[127.0.0.1]:<port> ssh-ed25519 AAAA...``). The env file gets GITHUB_SSH_URL
(``ssh://git@127.0.0.1:<port>``; a repository is ``$GITHUB_SSH_URL/<owner>/<repo>``) and
GITHUB_SSH_KNOWN_HOSTS_FILE (a path: a known_hosts line has spaces, which env files sourced by
shells cannot carry).
"""

from __future__ import annotations

import secrets
import socket
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import github_spec
from .core import LOOPBACK, REPO_ROOT, Component, Context, DevstackError, free_port, http_ok, port_in_use

SEED = Path(__file__).with_name("github_seed.json")
OWNER = "biomage-org"
# the GitHub App the stand-in registers (the release step's identity)
APP_ID = 4242
APP_INSTALLATION_ID = 4343


def app_private_key(key_file: Path) -> None:
    """The App's RSA private key (PEM, 0600), made once per state folder, as GitHub hands it out."""
    if key_file.is_file():
        return
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    key_file.write_bytes(pem)


def host_public_key(key_file: Path) -> str:
    """``ssh-ed25519 AAAA...`` of the stand-in's SSH host key, made (0600) on first use."""
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        key_file.write_bytes(pem)
    key = serialization.load_ssh_private_key(key_file.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def ssh_ok(port: int, timeout: float = 1.0) -> bool:
    """True when an SSH server greets on ``port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            return sock.recv(8).startswith(b"SSH-2.0-")
    except OSError:
        return False


class GitHub(Component):
    name = "github"

    @staticmethod
    def url(port: int) -> str:
        return f"http://{LOOPBACK}:{port}"

    @staticmethod
    def _ssh_port(port_file: Path) -> int:
        """The SSH port of the previous run of this state folder if it is free, else a free one."""
        try:
            port = int(port_file.read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            return free_port()
        return free_port() if port_in_use(port) else port

    def start(self, ctx: Context) -> dict[str, str]:
        port_file, token_file = ctx.path("github.port"), ctx.path("github", "token")
        ssh_port_file, host_key = ctx.path("github", "ssh.port"), ctx.path("github", "ssh_host_ed25519_key")
        pid = ctx.read_pid(self.name)
        if pid is not None and port_file.is_file() and ssh_port_file.is_file():
            port = int(port_file.read_text(encoding="ascii"))
            ssh_port = int(ssh_port_file.read_text(encoding="ascii"))
            if not (http_ok(self.url(port)) and ssh_ok(ssh_port)):
                raise DevstackError(
                    f"GitHub stand-in (pid {pid}) runs but does not answer on {self.url(port)} and SSH port "
                    f"{ssh_port}. Fix: run `make dev-down` then `make dev-up`."
                )
        else:
            github_spec.ensure_subset()
            token_file.parent.mkdir(parents=True, exist_ok=True)
            if not token_file.is_file():
                token_file.touch(mode=0o600)
                token_file.write_text(secrets.token_hex(20), encoding="ascii")
            host_public_key(host_key)
            app_private_key(ctx.path("github", "app.pem"))
            port, ssh_port = free_port(), self._ssh_port(ssh_port_file)
            argv = [
                sys.executable, "-m", "devstack.github_standin",
                "--host", LOOPBACK, "--port", str(port),
                "--token-file", str(token_file),
                "--key-file", str(ctx.path("github", "sealed-box.key")),
                "--seed", str(SEED),
                "--git-dir", str(ctx.path("github", "git")),
                "--checkout", str(REPO_ROOT),
                "--ssh-port", str(ssh_port),
                "--ssh-host-key", str(host_key),
                "--app-id", str(APP_ID),
                "--app-installation-id", str(APP_INSTALLATION_ID),
                "--app-key-file", str(ctx.path("github", "app.pem")),
            ]  # fmt: skip
            ctx.spawn(self.name, argv, env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
            port_file.write_text(f"{port}\n", encoding="ascii")
            ssh_port_file.write_text(f"{ssh_port}\n", encoding="ascii")
            ctx.wait_until(
                lambda: http_ok(self.url(port)) and ssh_ok(ssh_port),
                f"answering on {self.url(port)} and SSH port {ssh_port}",
                self.name,
            )
        known_hosts = ctx.path("github", "known_hosts")
        known_hosts.write_text(f"[{LOOPBACK}]:{ssh_port} {host_public_key(host_key)}\n", encoding="ascii")
        return {
            "GITHUB_API_URL": self.url(port),
            "GITHUB_TOKEN_FILE": str(token_file),
            "BIOMAGE_GITHUB_OWNER": OWNER,
            "GITHUB_SSH_URL": f"ssh://git@{LOOPBACK}:{ssh_port}",
            "GITHUB_SSH_KNOWN_HOSTS_FILE": str(known_hosts),
            "GITHUB_APP_ID": str(APP_ID),
            "GITHUB_APP_INSTALLATION_ID": str(APP_INSTALLATION_ID),
            "GITHUB_APP_PRIVATE_KEY_FILE": str(ctx.path("github", "app.pem")),
        }

    def stop(self, ctx: Context) -> bool:
        stopped = ctx.terminate(self.name)
        ctx.path("github.port").unlink(missing_ok=True)
        ssh_port_file = ctx.path("github", "ssh.port")
        if stopped and ssh_port_file.is_file():
            # the main thread is reaped before the server's thread lets go of its socket: wait for
            # the port to close, so that the next start finds it free and keeps it
            port = int(ssh_port_file.read_text(encoding="ascii"))
            deadline = time.monotonic() + 5
            while port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.05)
        return stopped
