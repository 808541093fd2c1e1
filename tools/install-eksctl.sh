#!/usr/bin/env bash
# Install the pinned eksctl (meta/tool-versions.env EKSCTL_VERSION) into the virtualenv, for runs
# against real AWS (CI's plan and apply workflows, an operator's laptop). Downloads the release
# archive and the release's checksum file, refuses an archive whose SHA-256 is not the listed one
# or, for the Linux amd64 archive, not the digest pinned below, and installs nothing then.
# Idempotent: an installed eksctl of the pinned version is kept.
# Not used by `make demo` or `make test` (the development inventory runs no eksctl).
#
# Usage: tools/install-eksctl.sh [BIN_DIR]       (default: <repo>/.venv/bin)
# EKSCTL_RELEASE_URL overrides the release folder (a mirror; the tests serve one on loopback);
# EKSCTL_SHA256 overrides the pinned digest (the tests' stand-in archive).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${1:-${here}/../.venv/bin}"
version="$(sed -n 's/^EKSCTL_VERSION=//p' "${here}/../meta/tool-versions.env")"
[[ -n "${version}" ]] || { echo "install-eksctl: EKSCTL_VERSION missing from meta/tool-versions.env" >&2; exit 1; }
case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) echo "install-eksctl: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
asset="eksctl_$(uname -s)_${arch}.tar.gz"
# The SHA-256 of the pinned release's Linux amd64 archive, as its eksctl_checksums.txt lists it (copied
# from public pins of the same release, docs/eks-cluster.md "eksctl"); other archives are checked
# against the release's checksum file only. Change it together with EKSCTL_VERSION.
case "${version}/${asset}" in
	0.230.0/eksctl_Linux_amd64.tar.gz) pinned="a2060956f117c3065abafda5c1f681679b9c3716675d70ce4ffff46033b02c35" ;;
	*) pinned="" ;;
esac
pinned="${EKSCTL_SHA256:-${pinned}}"
base="${EKSCTL_RELEASE_URL:-https://github.com/eksctl-io/eksctl/releases/download/v${version}}"

if [[ -x "${bin_dir}/eksctl" ]] && [[ "$("${bin_dir}/eksctl" version 2>/dev/null)" == "${version}" ]]; then
	echo "eksctl ${version} already installed in ${bin_dir}"
	exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
curl --fail --silent --show-error --location --retry 3 --output "${tmp}/${asset}" "${base}/${asset}"
curl --fail --silent --show-error --location --retry 3 --output "${tmp}/checksums.txt" "${base}/eksctl_checksums.txt"
expected="$(awk -v name="${asset}" '$2 == name { print $1 }' "${tmp}/checksums.txt")"
actual="$(sha256sum "${tmp}/${asset}" | awk '{ print $1 }')"
if [[ -z "${expected}" || "${expected}" != "${actual}" ]]; then
	echo "install-eksctl: ${asset} has SHA-256 ${actual}, the release lists '${expected}'. Nothing installed." >&2
	echo "Fix: retry; if it persists, the download or the mirror is not the eksctl ${version} release." >&2
	exit 1
fi
if [[ -n "${pinned}" && "${pinned}" != "${actual}" ]]; then
	echo "install-eksctl: ${asset} has SHA-256 ${actual}, not the pinned ${pinned}. Nothing installed." >&2
	echo "Fix: the release folder does not serve the eksctl ${version} release; use the official one." >&2
	exit 1
fi
tar -xzf "${tmp}/${asset}" -C "${tmp}" eksctl
install -m 0755 "${tmp}/eksctl" "${bin_dir}/eksctl"
echo "eksctl $("${bin_dir}/eksctl" version) installed in ${bin_dir}"
