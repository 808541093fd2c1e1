#!/usr/bin/env bash
# Install the pinned kubectl and helm (../meta/tool-versions.env) into BIN_DIR for the execution
# environment image. Each download is compared with the SHA-256 its release publishes beside it;
# on a mismatch nothing is installed and the build fails.
#
# Usage: install-kube-tools.sh BIN_DIR
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="${1:?usage: install-kube-tools.sh BIN_DIR}"
pins="${here}/../meta/tool-versions.env"
kubectl_version="$(sed -n 's/^KUBECTL_VERSION=//p' "${pins}")"
helm_version="$(sed -n 's/^HELM_VERSION=//p' "${pins}")"
[[ -n "${kubectl_version}" && -n "${helm_version}" ]] || { echo "install-kube-tools: pins missing from ${pins}" >&2; exit 1; }
case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) echo "install-kube-tools: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

fetch() { curl --fail --silent --show-error --location --retry 3 --output "$1" "$2"; }
verify() { # file expected-sha256
	local actual
	actual="$(sha256sum "$1" | awk '{ print $1 }')"
	if [[ -z "$2" || "$2" != "${actual}" ]]; then
		echo "install-kube-tools: $(basename "$1") has SHA-256 ${actual}, its release lists '$2'. Nothing installed." >&2
		exit 1
	fi
}

kubectl_url="${KUBECTL_RELEASE_URL:-https://dl.k8s.io/release/v${kubectl_version}/bin/linux/${arch}}"
fetch "${tmp}/kubectl" "${kubectl_url}/kubectl"
fetch "${tmp}/kubectl.sha256" "${kubectl_url}/kubectl.sha256"
verify "${tmp}/kubectl" "$(awk '{ print $1 }' "${tmp}/kubectl.sha256")"

helm_asset="helm-v${helm_version}-linux-${arch}.tar.gz"
helm_url="${HELM_RELEASE_URL:-https://get.helm.sh}"
fetch "${tmp}/${helm_asset}" "${helm_url}/${helm_asset}"
fetch "${tmp}/helm.sha256sum" "${helm_url}/${helm_asset}.sha256sum"
verify "${tmp}/${helm_asset}" "$(awk '{ print $1 }' "${tmp}/helm.sha256sum")"
tar -xzf "${tmp}/${helm_asset}" -C "${tmp}" "linux-${arch}/helm"

install -m 0755 "${tmp}/kubectl" "${bin_dir}/kubectl"
install -m 0755 "${tmp}/linux-${arch}/helm" "${bin_dir}/helm"
echo "kubectl ${kubectl_version} and helm ${helm_version} installed in ${bin_dir}"
