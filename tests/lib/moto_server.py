"""The local stack's patched AWS emulator, run inside the test process.

Tests that change the emulator's behaviour (force a stack status, slow a change set down) need its
backends in their own process, so they cannot use the session's moto server. They get the same
emulator the stack runs: moto with the stack's extension (`devstack.moto_ext`) applied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import moto_ext
from moto.server import ThreadedMotoServer


@contextmanager
def in_process_moto(state: Path, region: str, devstack_dir: bool = False) -> Iterator[dict[str, str]]:
    """Start the patched emulator on a free loopback port; yield the env an operator's shell would
    have (profile ``local`` with its credentials and config files in ``state``). With
    ``devstack_dir`` the env also names ``state`` as the stack's folder and writes its ``env`` file
    there, as ``make dev-up`` does. The server is stopped on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_ext.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        (state / "credentials").write_text("[local]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        (state / "config").write_text(f"[profile local]\nregion = {region}\n")
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_PROFILE": "local",
            "AWS_SHARED_CREDENTIALS_FILE": str(state / "credentials"),
            "AWS_CONFIG_FILE": str(state / "config"),
        }
        if devstack_dir:
            env["BIOMAGE_DEVSTACK_DIR"] = str(state)
            (state / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        yield env
    finally:
        server.stop()
