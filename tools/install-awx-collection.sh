#!/usr/bin/env bash
# Install the pinned awx.awx collection (awx/configure.yml, the AWX / Automation Controller as code)
# into the virtualenv's ansible_collections, where the Ansible package puts its collections.
#
# The Ansible 14 package no longer carries awx.awx, and Galaxy cannot be reached here: the collection
# is taken from the last Ansible package that shipped it (12.3.0, awx.awx 24.6.1), downloaded from
# the Python package index with its SHA-256 checked, cached per machine under
# ${BIOMAGE_CACHE:-$HOME/.cache/biomage-iac}/awx/. Operators with Galaxy access install the same
# version with `ansible-galaxy collection install -r ee/requirements.yml`. Idempotent.
#
# Usage: tools/install-awx-collection.sh [VENV]     (default: <repo>/.venv)
set -euo pipefail

collection_version="24.6.1"
wheel="ansible-12.3.0-py3-none-any.whl"
wheel_sha256="cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-${here}/../.venv}"
cache="${BIOMAGE_CACHE:-${HOME}/.cache/biomage-iac}/awx/${collection_version}"

[[ -x "${venv}/bin/python" ]] || {
	echo "tools/install-awx-collection.sh: ${venv} is not a virtualenv. Fix: make setup." >&2
	exit 1
}
target="$("${venv}/bin/python" -c 'import ansible_collections, os; print(ansible_collections.__path__[0])')/awx/awx"
installed() {
	"${venv}/bin/python" - "$1" "${collection_version}" <<'PY'
import json, sys
try:
    with open(f"{sys.argv[1]}/MANIFEST.json") as manifest:
        sys.exit(json.load(manifest)["collection_info"]["version"] != sys.argv[2])
except OSError:
    sys.exit(1)
PY
}
installed "${target}" && exit 0

if ! installed "${cache}/ansible_collections/awx/awx"; then
	tmp="$(mktemp -d)"
	trap 'rm -rf "${tmp}"' EXIT
	echo "install-awx-collection: fetching awx.awx ${collection_version} (from ${wheel}, once per machine)"
	echo "ansible==12.3.0 --hash=sha256:${wheel_sha256}" >"${tmp}/pin.txt"
	"${venv}/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
		--require-hashes -r "${tmp}/pin.txt" -d "${tmp}"
	"${venv}/bin/python" - "${tmp}/${wheel}" "${tmp}/extract" <<'PY'
import sys, zipfile
prefix = "ansible_collections/awx/awx/"
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2], [name for name in wheel.namelist() if name.startswith(prefix)])
PY
	mkdir -p "$(dirname "${cache}")"
	rm -rf "${cache}" && mv "${tmp}/extract" "${cache}"
fi
rm -rf "${target}" && mkdir -p "$(dirname "${target}")"
cp -a "${cache}/ansible_collections/awx/awx" "${target}"
echo "install-awx-collection: awx.awx ${collection_version} installed"
