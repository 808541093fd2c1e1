#!/usr/bin/env bash
# Install the pinned Kubernetes tools: build (once per machine, see build.sh) the local stack's
# binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, helm, KWOK and
# Flux's source, kustomize and helm controllers), and link kubectl and helm into the virtualenv's bin
# folder, so kubernetes.core's k8s and helm modules find them on PATH. Idempotent; a second run takes
# well under a second.
#
# Usage: tools/kube/install-tools.sh [BIN_DIR]     (default: <repo>/.venv/bin)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
bin_dir="${1:-${repo}/.venv/bin}"

[[ -d "${bin_dir}" ]] || {
	echo "tools/kube/install-tools.sh: ${bin_dir} does not exist. Fix: create the virtualenv first (make setup)." >&2
	exit 1
}

declare -A paths=()
while IFS='=' read -r key value; do
	paths["${key}"]="${value}"
done < <("${here}/build.sh")

for tool in kubectl helm; do
	key="${tool^^}_BIN"
	target="${paths[${key}]:-}"
	[[ -x "${target}" ]] || {
		echo "tools/kube/install-tools.sh: build.sh did not produce ${tool} (${key}='${target}')" >&2
		exit 1
	}
	ln -sfn "${target}" "${bin_dir}/${tool}"
done
echo "kubectl, kube-apiserver, kube-controller-manager, kube-scheduler ${paths[KUBE_VERSION]}," \
	"etcd ${paths[ETCD_VERSION]}, helm ${paths[HELM_VERSION]}, kwok ${paths[KWOK_VERSION]}," \
	"source-controller ${paths[SOURCE_CONTROLLER_VERSION]}, kustomize-controller ${paths[KUSTOMIZE_CONTROLLER_VERSION]}," \
	"helm-controller ${paths[HELM_CONTROLLER_VERSION]} ready; kubectl and helm linked into ${bin_dir}"
