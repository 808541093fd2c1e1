"""Run moto's server with the stack's labelled extensions (devstack.moto_ext) applied.

python tools/devstack/moto_server.py -H 127.0.0.1 -p PORT      (moto_server's own options)
python tools/devstack/moto_server.py --patches                  (list the patches and exit)
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script: its folder (tools/devstack, which holds a moto.py of its own) must not shadow the
# moto package; its parent makes `devstack` importable
if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from moto.server import main as moto_main

from devstack import moto_ext


def main(argv: list[str]) -> None:
    patches = moto_ext.apply()
    if argv[:1] == ["--patches"]:
        for name, behaviour in patches:
            print(f"{name}: {behaviour}")
        return
    print("moto server with biomage.iac patches: " + ", ".join(name for name, _behaviour in patches), flush=True)
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
