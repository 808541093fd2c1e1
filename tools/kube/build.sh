#!/usr/bin/env bash
# Build kube-apiserver, kubectl, etcd and helm from their published Go modules; cache them machine-wide.
#
# Usage: tools/kube/build.sh [--print]
#   --print   only print the cached binary paths (KEY=path lines), building nothing.
#
# The versions are pinned by tools/kube/kubernetes/go.mod (k8s.io/kubernetes + staging modules:
# kube-apiserver, kubectl), tools/kube/etcd/go.mod (go.etcd.io/etcd/*) and tools/kube/helm/go.mod
# (helm.sh/helm/v3). A binary is cached under
#   ${BIOMAGE_CACHE:-$HOME/.cache/biomage-iac}/kube/<name>-<version>-<hash of go.mod, go.sum, build.sh>/
# so a fresh clone on the same machine reuses it; only the first run on a machine pays for the
# build (kube-apiserver: several minutes on 2 cores). Concurrent runs wait on a lock file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${BIOMAGE_CACHE:-${HOME}/.cache/biomage-iac}/kube"
jobs="${BIOMAGE_BUILD_JOBS:-2}"

die() {
	echo "tools/kube/build.sh: $*" >&2
	exit 1
}

# module_version DIR MODULE: the version DIR/go.mod pins for MODULE (no Go invocation: fast).
module_version() {
	local version
	version="$(awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1/go.mod")"
	[[ -n "${version}" ]] || die "$1/go.mod does not require $2; fix the go.mod pin"
	echo "${version}"
}

# cache_dir NAME VERSION MODULE_DIR: the cache folder for a binary, keyed by its version, its
# module's pins and this script (its build flags).
cache_dir() {
	local digest
	digest="$(cat "$3/go.mod" "$3/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-10)"
	echo "${cache_root}/$1-$2-${digest}"
}

kube_version="$(module_version "${here}/kubernetes" k8s.io/kubernetes)"
etcd_version="$(module_version "${here}/etcd" go.etcd.io/etcd/server/v3)"
helm_version="$(module_version "${here}/helm" helm.sh/helm/v3)"
kube_dir="$(cache_dir kubernetes "${kube_version}" "${here}/kubernetes")"
etcd_dir="$(cache_dir etcd "${etcd_version}" "${here}/etcd")"
helm_dir="$(cache_dir helm "${helm_version}" "${here}/helm")"

print_paths() {
	echo "KUBE_VERSION=${kube_version}"
	echo "ETCD_VERSION=${etcd_version}"
	echo "HELM_VERSION=${helm_version}"
	echo "KUBE_APISERVER_BIN=${kube_dir}/kube-apiserver"
	echo "KUBECTL_BIN=${kube_dir}/kubectl"
	echo "ETCD_BIN=${etcd_dir}/etcd"
	echo "HELM_BIN=${helm_dir}/helm"
}

if [[ "${1:-}" == "--print" ]]; then
	print_paths
	exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument '$1' (usage: build.sh [--print])"
command -v go >/dev/null || die "the Go toolchain is not on PATH; install Go >= 1.24"

# go_build MODULE_DIR OUT_FILE PACKAGE [LDFLAGS...]: one reproducible, stripped build.
go_build() {
	local module_dir="$1" out="$2" package="$3"
	shift 3
	local ldflags="-s -w $*"
	local started=${SECONDS}
	echo "building ${out##*/} (${package}) into ${out%/*} ..." >&2
	(
		cd "${module_dir}"
		GOFLAGS=-mod=mod GOMAXPROCS="${jobs}" CGO_ENABLED=0 \
			go build -p "${jobs}" -trimpath -buildvcs=false -ldflags="${ldflags}" -o "${out}.tmp" "${package}"
	)
	mv -f "${out}.tmp" "${out}"
	echo "$((SECONDS - started))" >"${out}.build-seconds"
	echo "built ${out} in $((SECONDS - started)) s" >&2
}

# version_ldflags VERSION: the -X flags Kubernetes' own release build sets (hack/lib/version.sh),
# so /version reports the real release and clients (kubectl, helm) see a proper server version.
version_ldflags() {
	local version="$1" major minor pkg
	major="${version#v}"
	major="${major%%.*}"
	minor="${version#v*.}"
	minor="${minor%%.*}"
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		printf -- "-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean " \
			"${pkg}" "${version}" "${pkg}" "${major}" "${pkg}" "${minor}" "${pkg}"
	done
}

# helm_ldflags VERSION: what helm's own Makefile sets: its version, and the Kubernetes version
# its client libraries target (used for .Capabilities when rendering without a cluster).
helm_ldflags() {
	local client_go major minor pkg
	client_go="$(cd "${here}/helm" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/client-go)"
	major="$((${client_go:1:1} + 1))"
	minor="${client_go#v*.}"
	minor="${minor%%.*}"
	printf -- "-X helm.sh/helm/v3/internal/version.version=%s -X helm.sh/helm/v3/internal/version.gitTreeState=clean " "$1"
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		printf -- "-X %s.k8sVersionMajor=%s -X %s.k8sVersionMinor=%s " "${pkg}" "${major}" "${pkg}" "${minor}"
	done
}

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.build.lock"
flock 9

if [[ ! -x "${etcd_dir}/etcd" ]]; then
	mkdir -p "${etcd_dir}"
	go_build "${here}/etcd" "${etcd_dir}/etcd" .
fi
mkdir -p "${kube_dir}"
for command in kube-apiserver kubectl; do
	if [[ ! -x "${kube_dir}/${command}" ]]; then
		# shellcheck disable=SC2046 # the flags are split on purpose
		go_build "${here}/kubernetes" "${kube_dir}/${command}" "k8s.io/kubernetes/cmd/${command}" \
			$(version_ldflags "${kube_version}")
	fi
done
if [[ ! -x "${helm_dir}/helm" ]]; then
	mkdir -p "${helm_dir}"
	# shellcheck disable=SC2046 # the flags are split on purpose
	go_build "${here}/helm" "${helm_dir}/helm" helm.sh/helm/v3/cmd/helm $(helm_ldflags "${helm_version}")
fi
print_paths
