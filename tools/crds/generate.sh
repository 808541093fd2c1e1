#!/usr/bin/env bash
# Regenerate tools/crds/generated/ from the cert-manager and Flux Go API types that go.mod pins
# (image-reflector and image-automation at the versions the flux role's pinned Flux release ships),
# with the controller-gen that go.mod pins. Never edit the generated files by hand: bump a version in
# go.mod (then `GOFLAGS=-mod=mod go mod tidy`) and run this script (`make -C tools/crds`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${here}/generated"
jobs="${BIOMAGE_BUILD_JOBS:-2}"
packages=(
	github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1
	github.com/fluxcd/source-controller/api/v1
	github.com/fluxcd/source-controller/api/v1beta1
	github.com/fluxcd/source-controller/api/v1beta2
	github.com/fluxcd/kustomize-controller/api/v1
	github.com/fluxcd/kustomize-controller/api/v1beta1
	github.com/fluxcd/kustomize-controller/api/v1beta2
	github.com/fluxcd/helm-controller/api/v2
	github.com/fluxcd/helm-controller/api/v2beta1
	github.com/fluxcd/helm-controller/api/v2beta2
	github.com/fluxcd/image-reflector-controller/api/v1
	github.com/fluxcd/image-automation-controller/api/v1
)

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

cd "${here}"
path_args=()
for package in "${packages[@]}"; do
	path_args+=("paths=${package}")
done
export GOFLAGS=-mod=mod GOMAXPROCS="${jobs}"
go build -p "${jobs}" -trimpath -buildvcs=false -o "${tmp}/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
"${tmp}/controller-gen" crd:crdVersions=v1 "${path_args[@]}" "output:crd:artifacts:config=${tmp}/crds"

rm -rf "${out}"
mkdir -p "${out}"
cp "${tmp}"/crds/*.yaml "${out}/"
{
	echo "# Generated CustomResourceDefinitions: do not edit"
	echo
	echo "Rendered by \`tools/crds/generate.sh\` (controller-gen over the projects' own Go API types)."
	echo "Installed into the local API server by the devstack \`kube\` component. Module versions:"
	echo
	go list -m -f '- {{.Path}} {{.Version}}' \
		sigs.k8s.io/controller-tools \
		github.com/cert-manager/cert-manager \
		github.com/fluxcd/source-controller/api \
		github.com/fluxcd/kustomize-controller/api \
		github.com/fluxcd/helm-controller/api \
		github.com/fluxcd/image-reflector-controller/api \
		github.com/fluxcd/image-automation-controller/api
} >"${out}/README.md"
ls "${out}"
