"""The GitHub API stand-in of the local stack (see github_standin.py), on a loopback port.

The stand-in's token is generated per stack and kept in a 0600 file whose path (never the token)
goes into the env file, as GITHUB_TOKEN_FILE.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from . import github_spec
from .core import LOOPBACK, Component, Context, DevstackError, free_port, http_ok

SEED = Path(__file__).with_name("github_seed.json")
OWNER = "biomage-org"


class GitHub(Component):
    name = "github"

    @staticmethod
    def url(port: int) -> str:
        return f"http://{LOOPBACK}:{port}"

    def start(self, ctx: Context) -> dict[str, str]:
        port_file, token_file = ctx.path("github.port"), ctx.path("github", "token")
        pid = ctx.read_pid(self.name)
        if pid is not None and port_file.is_file():
            port = int(port_file.read_text(encoding="ascii"))
            if not http_ok(self.url(port)):
                raise DevstackError(
                    f"GitHub stand-in (pid {pid}) runs but does not answer on {self.url(port)}. "
                    "Fix: run `make dev-down` then `make dev-up`."
                )
        else:
            github_spec.ensure_subset()
            token_file.parent.mkdir(parents=True, exist_ok=True)
            if not token_file.is_file():
                token_file.touch(mode=0o600)
                token_file.write_text(secrets.token_hex(20), encoding="ascii")
            port = free_port()
            argv = [
                sys.executable, "-m", "devstack.github_standin",
                "--host", LOOPBACK, "--port", str(port),
                "--token-file", str(token_file),
                "--key-file", str(ctx.path("github", "sealed-box.key")),
                "--seed", str(SEED),
            ]  # fmt: skip
            ctx.spawn(self.name, argv, env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
            port_file.write_text(f"{port}\n", encoding="ascii")
            ctx.wait_until(lambda: http_ok(self.url(port)), f"answering on {self.url(port)}", self.name)
        return {
            "GITHUB_API_URL": self.url(port),
            "GITHUB_TOKEN_FILE": str(token_file),
            "BIOMAGE_GITHUB_OWNER": OWNER,
        }

    def stop(self, ctx: Context) -> bool:
        stopped = ctx.terminate(self.name)
        ctx.path("github.port").unlink(missing_ok=True)
        return stopped
