"""Stops a stack once the process that owns it ends, however it ends (``Stack.stop_with_owner``).

``python -m devstack.reaper STATE_DIR COMPONENTS FD``: waits until the pipe ``FD`` reaches its end, which happens
when the last process holding its write end (the owner) exits, even when killed, then stops the stack's
components as ``devstack down`` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .stack import Stack


def main(argv: list[str]) -> int:
    state_dir, components, fd = Path(argv[0]), [c for c in argv[1].split(",") if c], int(argv[2])
    while os.read(fd, 4096):
        pass  # the owner never writes; a read returns b"" once every write end is closed
    Stack(state_dir, components).down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
