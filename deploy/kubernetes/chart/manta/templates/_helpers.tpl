{{- define "manta.head" -}}{{ .Values.clusterName }}-head{{- end -}}

{{- define "manta.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}

{{- define "manta.headLabels" -}}
manta.io/cluster: {{ .Values.clusterName }}
manta.io/role: head
{{- end -}}
