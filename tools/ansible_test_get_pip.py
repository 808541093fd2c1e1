"""Offline stand-in for the pip bootstrap script that ``ansible-test --requirements`` downloads.

ansible-test creates an empty virtualenv per sanity test and runs a cached ``get-pip`` script in it
(from ``~/.ansible/test/cache``), fetching that script from a host this machine cannot reach. This
stand-in does the same job with what Python ships: pip from the interpreter's own bundled wheel
(``ensurepip``), then the pinned packages ansible-test asks for, from the package index.
``make sanity`` installs it into the cache under the name ansible-test looks for.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# options of the real get-pip script that pip itself does not know
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    saved_config = os.environ.get("PIP_CONFIG_FILE")
    ensurepip.bootstrap()
    # ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the install below must see the
    # machine's pip configuration (index, certificates) again
    if saved_config is None:
        os.environ.pop("PIP_CONFIG_FILE", None)
    else:
        os.environ["PIP_CONFIG_FILE"] = saved_config
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
