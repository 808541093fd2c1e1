{{/* The name of every object of a release: the release name (what HPA and PDB target). */}}
{{- define "nodejs.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodejs.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nodejs.labels" -}}
{{ include "nodejs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.kubernetes.env }}
biomage.net/environment: {{ . }}
{{- end }}
{{- end -}}

{{- define "nodejs.image" -}}
{{- $repository := required "image.repository is required (the app's image name)" .Values.image.repository -}}
{{- $tag := required "image.tag is required (e.g. <ref>-<sha>)" .Values.image.tag -}}
{{- if .Values.image.registry -}}
{{ printf "%s/%s:%s" .Values.image.registry $repository $tag }}
{{- else -}}
{{ printf "%s:%s" $repository $tag }}
{{- end -}}
{{- end -}}

{{/* The Ingress host, from the environment's domain: never hard-coded here. */}}
{{- define "nodejs.host" -}}
{{- $domain := required "ingress.domainName is required when ingress.enabled (the environment's domain)" .Values.ingress.domainName -}}
{{- if .Values.ingress.subdomain -}}
{{ printf "%s.%s" .Values.ingress.subdomain $domain }}
{{- else -}}
{{ $domain }}
{{- end -}}
{{- end -}}
