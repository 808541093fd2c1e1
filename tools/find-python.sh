#!/usr/bin/env bash
# Print the path of a Python interpreter of the version given (e.g. 3.12): python<version> on PATH
# if it really runs (a pyenv shim of an inactive version does not), else pyenv's newest patch of it.
set -euo pipefail
version="${1:?usage: find-python.sh <major.minor>}"
works() { "$1" -c 'import sys; sys.exit(0)' >/dev/null 2>&1; }
if candidate="$(command -v "python${version}" 2>/dev/null)" && works "$candidate"; then
  echo "$candidate"
  exit 0
fi
for candidate in $(find "${PYENV_ROOT:-$HOME/.pyenv}/versions" -mindepth 1 -maxdepth 1 -name "${version}.*" 2>/dev/null | sort -V -r); do
  if works "$candidate/bin/python${version}"; then
    echo "$candidate/bin/python${version}"
    exit 0
  fi
done
echo "find-python.sh: no Python ${version} found (install it, or run make with PYTHON_BASE=/path/to/python${version})" >&2
exit 1
