#!/usr/bin/env bash
# Build the local stack's binaries from their published Go modules; cache them machine-wide.
#
# Usage: tools/kube/build.sh [--print]
#   --print   only print the cached paths (KEY=path lines), building nothing.
#
# The versions are pinned by tools/kube/kubernetes/go.mod (k8s.io/kubernetes + staging modules:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), tools/kube/etcd/go.mod
# (go.etcd.io/etcd/*), tools/kube/helm/go.mod (helm.sh/helm/v4) and tools/kube/controllers/go.mod
# (KWOK and Flux's source, kustomize and helm controllers; plus tools/kube/controllers/manifest-modules,
# the module sources of the rest of Flux's install manifest). Each module's binaries are built by one
# `go build`, so what they share compiles once, and cached under
#   ${BIOMAGE_CACHE:-$HOME/.cache/biomage-iac}/kube/<name>-<version>-<hash of the module's pins, build.sh>/
# so a fresh clone on the same machine reuses them; only the first run on a machine pays for the
# build (up to 30 minutes on 2 busy cores, docs/local-cluster.md). Concurrent runs wait on a lock
# file. Each binary's <name>.build-seconds holds the duration of the `go build` that made it (shared
# by the binaries built together).
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

# cache_dir NAME VERSION MODULE_DIR [FILE...]: the cache folder for a module's binaries, keyed by
# their version, the module's pins, this script (its build flags) and any further input FILE.
cache_dir() {
	local name="$1" version="$2" dir="$3" digest
	shift 3
	digest="$(cat "${dir}/go.mod" "${dir}/go.sum" "${BASH_SOURCE[0]}" "$@" | sha256sum | cut -c1-10)"
	echo "${cache_root}/${name}-${version}-${digest}"
}

kube_version="$(module_version "${here}/kubernetes" k8s.io/kubernetes)"
etcd_version="$(module_version "${here}/etcd" go.etcd.io/etcd/server/v3)"
helm_version="$(module_version "${here}/helm" helm.sh/helm/v4)"
controllers="${here}/controllers"
kwok_version="$(module_version "${controllers}" sigs.k8s.io/kwok)"
source_controller_version="$(module_version "${controllers}" github.com/fluxcd/source-controller)"
kustomize_controller_version="$(module_version "${controllers}" github.com/fluxcd/kustomize-controller)"
helm_controller_version="$(module_version "${controllers}" github.com/fluxcd/helm-controller)"
kube_dir="$(cache_dir kubernetes "${kube_version}" "${here}/kubernetes")"
etcd_dir="$(cache_dir etcd "${etcd_version}" "${here}/etcd")"
helm_dir="$(cache_dir helm "${helm_version}" "${here}/helm")"
controllers_dir="$(cache_dir controllers "${source_controller_version}" "${controllers}" \
	"${controllers}/render/main.go" "${controllers}/manifest-modules")"
kube_commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

print_paths() {
	echo "KUBE_VERSION=${kube_version}"
	echo "ETCD_VERSION=${etcd_version}"
	echo "HELM_VERSION=${helm_version}"
	echo "KWOK_VERSION=${kwok_version}"
	echo "SOURCE_CONTROLLER_VERSION=${source_controller_version}"
	echo "KUSTOMIZE_CONTROLLER_VERSION=${kustomize_controller_version}"
	echo "HELM_CONTROLLER_VERSION=${helm_controller_version}"
	echo "KUBE_APISERVER_BIN=${kube_dir}/kube-apiserver"
	echo "KUBE_CONTROLLER_MANAGER_BIN=${kube_dir}/kube-controller-manager"
	echo "KUBE_SCHEDULER_BIN=${kube_dir}/kube-scheduler"
	echo "KUBECTL_BIN=${kube_dir}/kubectl"
	echo "ETCD_BIN=${etcd_dir}/etcd"
	echo "HELM_BIN=${helm_dir}/helm"
	echo "KWOK_BIN=${controllers_dir}/kwok"
	echo "KWOK_STAGES=${controllers_dir}/kwok-stages.yaml"
	echo "SOURCE_CONTROLLER_BIN=${controllers_dir}/source-controller"
	echo "KUSTOMIZE_CONTROLLER_BIN=${controllers_dir}/kustomize-controller"
	echo "HELM_CONTROLLER_BIN=${controllers_dir}/helm-controller"
	echo "FLUX_INSTALL_MANIFEST=${controllers_dir}/flux-install.yaml"
}

if [[ "${1:-}" == "--print" ]]; then
	print_paths
	exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument '$1' (usage: build.sh [--print])"
command -v go >/dev/null || die "the Go toolchain is not on PATH; install Go >= 1.24"

# go_build MODULE_DIR OUT_DIR LDFLAGS PACKAGE...: one reproducible, stripped `go build` of the
# main packages, each binary named after its package's last element, moved into OUT_DIR only when
# all were built.
go_build() {
	local module_dir="$1" out_dir="$2" ldflags="-s -w $3" package binary
	shift 3
	local started=${SECONDS} staging="${out_dir}/.building"
	echo "building ${*##*/} into ${out_dir} ..." >&2
	rm -rf "${staging}"
	mkdir -p "${staging}"
	(
		cd "${module_dir}"
		GOFLAGS=-mod=mod GOMAXPROCS="${jobs}" CGO_ENABLED=0 \
			go build -p "${jobs}" -trimpath -buildvcs=false -ldflags="${ldflags}" -o "${staging}/" "$@"
	)
	for package in "$@"; do
		binary="${package##*/}"
		mv -f "${staging}/${binary}" "${out_dir}/${binary}"
		echo "$((SECONDS - started))" >"${out_dir}/${binary}.build-seconds"
	done
	rmdir "${staging}"
	echo "built ${*##*/} in $((SECONDS - started)) s (one go build)" >&2
}

# missing DIR NAME...: the NAMEs that are not executable files in DIR.
missing() {
	local dir="$1" name
	shift
	for name in "$@"; do
		[[ -x "${dir}/${name}" ]] || echo "${name}"
	done
}

# module_dir MODULE@VERSION SUM: the module's source folder in the module cache, downloaded (and
# checked against the checksum database) when needed, and checked against SUM, the h1: hash pinned.
module_dir() {
	local json dir sum
	json="$(cd / && GOFLAGS=-mod=mod go mod download -json "$1")" || die "cannot download $1: ${json}"
	dir="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"${json}")"
	sum="$(sed -n 's/^\t"Sum": "\(.*\)",$/\1/p' <<<"${json}")"
	[[ -n "${dir}" && "${sum}" == "$2" ]] ||
		die "$1 has the hash '${sum}', not the pinned $2 (tools/kube/controllers/manifest-modules); fix the pin"
	echo "${dir}"
}

# render_manifests: Flux's install manifest and KWOK's stages, from module sources (render/main.go).
render_manifests() {
	local args=() module version sum role dir
	while read -r module version sum role; do
		[[ -z "${module}" || "${module}" == \#* ]] && continue
		dir="$(module_dir "${module}@${version}" "${sum}")"
		if [[ "${role}" == component=* ]]; then
			args+=(-component "${role#component=}=${dir}")
		else
			args+=("-${role}" "${dir}")
		fi
	done <"${controllers}/manifest-modules"
	for module in source-controller kustomize-controller helm-controller; do
		args+=(-component "${module}=$(cd "${controllers}" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' "github.com/fluxcd/${module}")")
	done
	args+=(-kwok "$(cd "${controllers}" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)")
	"${controllers_dir}/render" "${args[@]}" \
		-install "${controllers_dir}/flux-install.yaml" -stages "${controllers_dir}/kwok-stages.yaml"
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

# helm_ldflags VERSION: what helm's own Makefile sets (its version and tree state). Helm 4 reads the
# Kubernetes version its client libraries target from the binary's build information at run time.
helm_ldflags() {
	printf -- "-X helm.sh/helm/v4/internal/version.version=%s -X helm.sh/helm/v4/internal/version.gitTreeState=clean" "$1"
}

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.build.lock"
flock 9

if [[ ! -x "${etcd_dir}/etcd" ]]; then
	mkdir -p "${etcd_dir}"
	go_build "${here}/etcd" "${etcd_dir}" "" biomage.iac/tools/kube/etcd
fi
mapfile -t kube_missing < <(missing "${kube_dir}" "${kube_commands[@]}")
if ((${#kube_missing[@]})); then
	mkdir -p "${kube_dir}"
	go_build "${here}/kubernetes" "${kube_dir}" "$(version_ldflags "${kube_version}")" \
		"${kube_missing[@]/#/k8s.io/kubernetes/cmd/}"
fi
if [[ ! -x "${helm_dir}/helm" ]]; then
	mkdir -p "${helm_dir}"
	go_build "${here}/helm" "${helm_dir}" "$(helm_ldflags "${helm_version}")" helm.sh/helm/v4/cmd/helm
fi
if [[ -n "$(missing "${controllers_dir}" source-controller kustomize-controller helm-controller kwok render)" ||
	! -s "${controllers_dir}/flux-install.yaml" || ! -s "${controllers_dir}/kwok-stages.yaml" ]]; then
	mkdir -p "${controllers_dir}"
	go_build "${controllers}" "${controllers_dir}" "" github.com/fluxcd/source-controller \
		github.com/fluxcd/kustomize-controller github.com/fluxcd/helm-controller sigs.k8s.io/kwok/cmd/kwok \
		biomage.iac/tools/kube/controllers/render
	render_manifests
fi
print_paths
