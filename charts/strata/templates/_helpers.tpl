{{- define "strata.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "strata.labels" -}}
app.kubernetes.io/name: strata-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: strata-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The rules the operator needs, nothing more: it watches its own resources and the
StatefulSets it owns, server-side applies (create + patch) and deletes the objects a
cluster consists of, and records Events. It never lists Services, ConfigMaps or PDBs.
ServiceAccounts: the brokers' own, for the rack lookup of clusters with spec.brokers.rack.
*/}}
{{- define "strata.rules" -}}
- apiGroups: ["strata.dev"]
  resources: ["kafkaclusters", "topics", "consumergroups"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["strata.dev"]
  resources: ["kafkaclusters/status", "topics/status", "consumergroups/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["create", "patch", "delete"]
# A TLS listener's Secret: its certificate's digest rolls the brokers when it is renewed.
# The coordinators' super user Secret: created once per cluster, read to reconfigure.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create"]
# Claims: a drained broker's is deleted with spec.brokers.storage.deleteClaim; all of a
# StatefulSet's grow with its storage size (which StorageClasses allow expansion is read).
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "patch", "delete"]
- apiGroups: ["storage.k8s.io"]
  resources: ["storageclasses"]
  verbs: ["get"]
# The rolling restart reads broker pods' revisions and readiness and deletes one at a time.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}


{{/* The ClusterRole broker pods' rack lookup is bound to: read a node's labels. */}}
{{- define "strata.brokerClusterRole" -}}
{{- printf "%s-broker" (include "strata.fullname" .) -}}
{{- end -}}
