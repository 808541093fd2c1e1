{{/*
One Let's Encrypt ClusterIssuer. Arguments (a dict): name, server, root (the chart's context).
The ACME account key lives in the Secret <name>-account-key of cert-manager's namespace
(created by cert-manager on first registration).
*/}}
{{- define "issuers.clusterIssuer" -}}
{{- $acme := .root.Values.acme -}}
{{- $email := required "acme.email is required: the e-mail address Let's Encrypt registers the ACME account with (inventory variable cert_manager_acme_email)" $acme.email -}}
{{- if not (regexMatch "^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$" $email) -}}
{{- fail (printf "acme.email %q is not an e-mail address (inventory variable cert_manager_acme_email)" $email) -}}
{{- end -}}
{{- $class := required "acme.ingressClassName is required: the ingress class the HTTP-01 solver uses (e.g. traefik)" $acme.ingressClassName -}}
{{- $server := required (printf "the ACME server URL of %s is required" .name) .server -}}
{{- if not (hasPrefix "https://" $server) -}}
{{- fail (printf "the ACME server URL of %s must be https:// (got %q)" .name $server) -}}
{{- end -}}
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: {{ .name }}
  labels:
    app.kubernetes.io/name: {{ .root.Chart.Name }}
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/managed-by: {{ .root.Release.Service }}
    helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
spec:
  acme:
    server: {{ $server | quote }}
    email: {{ $email | quote }}
    privateKeySecretRef:
      name: {{ printf "%s-account-key" .name }}
    solvers:
      - http01:
          ingress:
            ingressClassName: {{ $class | quote }}
{{- end -}}
