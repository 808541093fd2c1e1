// Package crds imports every API package whose CRDs generate.sh renders, so that `go mod tidy`
// keeps them (at the versions go.mod pins) and everything they need in go.mod and go.sum.
package crds

import (
	_ "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	_ "github.com/fluxcd/helm-controller/api/v2"
	_ "github.com/fluxcd/helm-controller/api/v2beta1"
	_ "github.com/fluxcd/helm-controller/api/v2beta2"
	_ "github.com/fluxcd/image-automation-controller/api/v1"
	_ "github.com/fluxcd/image-reflector-controller/api/v1"
	_ "github.com/fluxcd/kustomize-controller/api/v1"
	_ "github.com/fluxcd/kustomize-controller/api/v1beta1"
	_ "github.com/fluxcd/kustomize-controller/api/v1beta2"
	_ "github.com/fluxcd/source-controller/api/v1"
	_ "github.com/fluxcd/source-controller/api/v1beta1"
	_ "github.com/fluxcd/source-controller/api/v1beta2"
)
