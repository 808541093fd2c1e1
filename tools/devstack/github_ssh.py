"""Git over SSH for the GitHub stand-in: ``ssh://git@127.0.0.1:<port>/<owner>/<repo>``, as GitHub
serves ``git@github.com:<owner>/<repo>.git``.

The server is asyncssh: a maintained, pure-Python SSH implementation (on cryptography) whose server
side is a first-class API (authentication callbacks, exec requests as processes), with the modern
algorithms OpenSSH and go-git (golang.org/x/crypto/ssh, what Flux's source-controller uses) offer:
curve25519 key exchange, ed25519 host keys, ed25519/ecdsa/rsa-sha2 user keys. It runs on one event
loop in a thread of the stand-in's process, so authentication reads the REST API's live deploy keys:
a key deleted through ``DELETE /repos/{owner}/{repo}/keys/{id}`` is refused on the next connection.
(paramiko would need a thread and a hand-written channel loop per connection for the same.)

Access, as GitHub grants it to deploy keys:

- user ``git`` only, public-key authentication only, with a key registered as a deploy key of some
  repository (anything else: ``Permission denied (publickey)``);
- exec requests only: ``git-upload-pack '<owner>/<repo>.git'`` (fetch, clone) or
  ``git-receive-pack '<owner>/<repo>.git'`` (push), path with or without a leading ``/`` and
  ``.git``; the repository must be one the key is a deploy key of, and a push needs a key with
  ``read_only: false``. Refusals are GitHub's words on stderr, exit status 1;
- the real ``git-upload-pack`` / ``git-receive-pack`` run on the stand-in's bare repository, whose
  path comes from the stand-in's own table (never from the request), as an argument list;
- no shell, pty, agent or port forwarding.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import shlex
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncssh

from .github_git import git_env

LOG = logging.getLogger("github_ssh")
SERVICES = ("git-upload-pack", "git-receive-pack")
# an owner (GitHub login) and a repository name, as GitHub allows them, then an optional .git
_REPO_PATH = re.compile(r"^/?(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100})/?$")
# the one variable a git client sends that git's server side uses (protocol v2 negotiation)
_GIT_PROTOCOL = re.compile(r"^version=[0-9]$")
CHUNK = 65536


class AccessDenied(Exception):
    """A refusal, worded for the git client (printed on its stderr)."""


@dataclass(frozen=True)
class Grant:
    """What an authenticated key may do on one repository."""

    repo_dir: Path
    full_name: str
    key_title: str


class DeployKeys(Protocol):
    """The stand-in's side: its deploy keys and repositories (see github_standin.GitHubStandin)."""

    def is_deploy_key(self, key_blob: bytes) -> bool: ...

    def git_grant(self, key_blob: bytes, owner: str, name: str, write: bool) -> Grant: ...


def parse_command(command: str | None) -> tuple[str, str, str]:
    """``(service, owner, name)`` of a git exec request; AccessDenied for anything else."""
    if command is None:
        raise AccessDenied("the GitHub stand-in does not provide shell access.")
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if len(words) != 2 or words[0] not in SERVICES:
        raise AccessDenied(f"Invalid command: only {' and '.join(SERVICES)} '<owner>/<repo>.git' are served.")
    match = _REPO_PATH.match(words[1].removesuffix("/").removesuffix(".git"))
    if match is None or match["name"] in {".", ".."}:
        raise AccessDenied("Repository not found.")
    return words[0], match["owner"], match["name"]


class _Connection(asyncssh.SSHServer):
    """One client connection: public-key authentication against the live deploy keys."""

    def __init__(self, keys: DeployKeys) -> None:
        self.keys = keys
        self.conn: asyncssh.SSHServerConnection | None = None
        self.accepted: bytes | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # called for the client's probe and again, signature verified, for the real attempt: the
        # last key accepted before auth_completed is the one the client authenticated with
        blob = key.public_data
        if username != "git" or not self.keys.is_deploy_key(blob):
            return False
        self.accepted = blob
        return True

    def auth_completed(self) -> None:
        assert self.conn is not None
        self.conn.set_extra_info(deploy_key=self.accepted)


class GitSshServer:
    """The SSH endpoint, served from an event loop in a daemon thread."""

    def __init__(self, keys: DeployKeys, host_key: Path) -> None:
        self.keys = keys
        self.host_key = asyncssh.read_private_key(str(host_key))
        self.binaries = {service: shutil.which(service) or service for service in SERVICES}
        self.git_env = git_env(host_key.parent)

    def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (blocks until listening; raises if it cannot)."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._listen(host, port))
            except BaseException as exc:  # handed to the starting thread
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()

        threading.Thread(target=run, name="git-ssh", daemon=True).start()
        ready.result(timeout=30)

    async def _listen(self, host: str, port: int) -> None:
        await asyncssh.create_server(
            lambda: _Connection(self.keys),
            host,
            port,
            server_host_keys=[self.host_key],
            process_factory=self._session,
            encoding=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=30,
            keepalive_interval=30,
        )

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        peer = process.get_extra_info("peername")
        key_blob: bytes = process.get_extra_info("deploy_key")
        try:
            service, owner, name = parse_command(process.command)
            grant = self.keys.git_grant(key_blob, owner, name, write=service == "git-receive-pack")
        except AccessDenied as exc:
            LOG.info("refused %s (key %s): %s", process.command, _fingerprint(key_blob), exc)
            process.stderr.write(f"ERROR: {exc}\n".encode())
            process.exit(1)
            return
        LOG.info("%s %s for key %r from %s", service, grant.full_name, grant.key_title, peer)
        env = dict(self.git_env)
        protocol = process.env.get("GIT_PROTOCOL")
        if isinstance(protocol, bytes):
            protocol = protocol.decode(errors="replace")
        if protocol and _GIT_PROTOCOL.match(protocol):
            env["GIT_PROTOCOL"] = protocol
        status = await self._run_git(process, [self.binaries[service], str(grant.repo_dir)], env)
        LOG.info("%s %s exited %s", service, grant.full_name, status)
        process.exit(status)

    @staticmethod
    async def _run_git(process: asyncssh.SSHServerProcess[bytes], argv: list[str], env: dict[str, str]) -> int:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        git_stdin = proc.stdin

        async def feed() -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while data := await process.stdin.read(CHUNK):
                    git_stdin.write(data)
                    await git_stdin.drain()
                git_stdin.close()

        async def forward(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()

        feeding = asyncio.create_task(feed())
        try:
            # git's output ends when git is done, whether or not the client closed its side
            await asyncio.gather(forward(proc.stdout, process.stdout), forward(proc.stderr, process.stderr))
            return await proc.wait()
        except (asyncssh.Error, BrokenPipeError, ConnectionError) as exc:
            LOG.info("client went away: %s", exc)
            return 255
        finally:
            feeding.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _fingerprint(blob: bytes | None) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (as ``ssh-keygen -l`` prints it)."""
    if not blob:
        return "none"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
