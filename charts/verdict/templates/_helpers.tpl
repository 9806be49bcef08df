{{/* The release's name for every object. */}}
{{- define "verdict.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "verdict.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "verdict.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "verdict.serviceAccountName" -}}
{{- default (include "verdict.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "verdict.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The in-cluster address Gatekeeper calls (the serving certificate's DNS name). */}}
{{- define "verdict.serviceHost" -}}
{{- printf "%s.%s.svc" (include "verdict.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Generated CA and serving certificate (unless cert-manager issues them), kept in one
     dictionary so the Secret and the Providers' caBundle agree within a render. */}}
{{- define "verdict.generatedTLS" -}}
{{- $ca := genCA (printf "%s-ca" (include "verdict.fullname" .)) (int .Values.tls.validityDays) -}}
{{- $host := include "verdict.serviceHost" . -}}
{{- $short := printf "%s.%s" (include "verdict.fullname" .) .Release.Namespace -}}
{{- $cert := genSignedCert $host nil (list $host $short (include "verdict.fullname" .)) (int .Values.tls.validityDays) $ca -}}
{{- dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key | toJson -}}
{{- end -}}
