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
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
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

{{/* Every host of the Ingress: the release's own host, then ingress.extraHosts (only when given). */}}
{{- define "nodejs.hosts" -}}
{{- $host := include "nodejs.host" . -}}
{{- $hosts := list $host -}}
{{- range .Values.ingress.extraHosts -}}
{{- if has . $hosts -}}
{{- fail (printf "ingress.extraHosts: %s is already a host of this release; list other hosts only" .) -}}
{{- end -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- toJson $hosts -}}
{{- end -}}

{{/* The IRSA role ARN: serviceAccount.iamRole when it is an ARN, or built from a role name and the
account; anything else fails the render (values.schema.json refuses it first). */}}
{{- define "nodejs.iamRoleArn" -}}
{{- $role := .Values.serviceAccount.iamRole | default "" | toString -}}
{{- if hasPrefix "arn:" $role -}}
{{- if not (regexMatch "^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$" $role) -}}
{{- fail (printf "serviceAccount.iamRole %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)" $role) -}}
{{- end -}}
{{- $role -}}
{{- else if $role -}}
{{- $account := required "serviceAccount.accountId is required when serviceAccount.iamRole is a role name (or give the role's ARN)" .Values.serviceAccount.accountId | toString -}}
{{- if not (regexMatch "^[0-9]{12}$" $account) -}}
{{- fail (printf "serviceAccount.accountId %q is not a 12-digit AWS account id (quote it)" $account) -}}
{{- end -}}
{{- printf "arn:%s:iam::%s:role/%s" (.Values.serviceAccount.partition | default "aws") $account $role -}}
{{- end -}}
{{- end -}}

{{/* One probe: probes' shared keys, overridden by probes.<which>. */}}
{{- define "nodejs.probe" -}}
{{- $shared := omit .root.Values.probes "readiness" "liveness" -}}
{{- $probe := merge (deepCopy (index .root.Values.probes .which | default dict)) $shared -}}
{{- if eq ($probe.type | default "httpGet") "tcpSocket" }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ required (printf "probes.path (or probes.%s.path) is required for an httpGet probe" .which) $probe.path | quote }}
  port: http
  {{- with $probe.scheme }}
  scheme: {{ . }}
  {{- end }}
{{- end }}
{{- range $key := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" }}
{{- if hasKey $probe $key }}
{{ $key }}: {{ index $probe $key }}
{{- end }}
{{- end }}
{{- end -}}
