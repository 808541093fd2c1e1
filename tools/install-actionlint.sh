#!/usr/bin/env bash
# Install the pinned actionlint (the linter of .github/workflows) into the virtualenv: built once per
# machine from its Go module with the Go toolchain (no release binary can be downloaded here), cached
# under ${BIOMAGE_CACHE:-$HOME/.cache/biomage-iac}/actionlint/<version>/. Idempotent; a second run
# only re-links the cached binary.
#
# Usage: tools/install-actionlint.sh [BIN_DIR]     (default: <repo>/.venv/bin)
set -euo pipefail

version="v1.7.12"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${1:-${here}/../.venv/bin}"
cache="${BIOMAGE_CACHE:-${HOME}/.cache/biomage-iac}/actionlint/${version}"

[[ -d "${bin_dir}" ]] || {
	echo "tools/install-actionlint.sh: ${bin_dir} does not exist. Fix: create the virtualenv first (make setup)." >&2
	exit 1
}
if [[ ! -x "${cache}/actionlint" ]]; then
	command -v go >/dev/null || {
		echo "tools/install-actionlint.sh: the Go toolchain is needed to build actionlint ${version}. Fix: install Go (see README)." >&2
		exit 1
	}
	tmp="$(mktemp -d)"
	trap 'rm -rf "${tmp}"' EXIT
	echo "building actionlint ${version} (once per machine)"
	GOBIN="${tmp}" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@${version}"
	mkdir -p "${cache}"
	mv "${tmp}/actionlint" "${cache}/actionlint"
fi
ln -sfn "${cache}/actionlint" "${bin_dir}/actionlint"
