{{/*
The state store (issue 18; docs/store.md): which kind, where the sqlite file lives, and the
Secrets that carry the PostgreSQL URL, its CA and the encryption key. Every helper takes the same
dict (v, top) as those in _helpers.tpl.
*/}}

{{- define "cancel-gateway.store.dataDir" -}}/var/lib/cancel-gateway{{- end -}}

{{/* memory | sqlite | postgres; empty: postgres in standalone mode, sqlite in sidecar mode. */}}
{{- define "cancel-gateway.store.kind" -}}
{{- $s := default dict .v.store -}}
{{- if $s.kind -}}
{{- $s.kind -}}
{{- else if eq .v.mode "standalone" -}}
postgres
{{- else -}}
sqlite
{{- end -}}
{{- end -}}

{{/* Fails the render on a store the deployment cannot run. */}}
{{- define "cancel-gateway.store.validate" -}}
{{- $kind := include "cancel-gateway.store.kind" . -}}
{{- $s := default dict .v.store -}}
{{- if not (has $kind (list "memory" "sqlite" "postgres")) -}}
{{- fail (printf "store.kind must be memory, sqlite or postgres, not %q" $kind) -}}
{{- end -}}
{{- if and (eq .v.mode "standalone") (gt (int .v.replicaCount) 1) (ne $kind "postgres") -}}
{{- fail (printf "replicaCount %d needs store.kind postgres: with %s each replica locks only its own cancels, and two cancels of one appointment could both reach the provider (ruling 23)" (int .v.replicaCount) $kind) -}}
{{- end -}}
{{- if and (eq $kind "postgres") (not $s.postgres.urlSecret.name) -}}
{{- fail "store.kind postgres needs store.postgres.urlSecret.name (a Secret holding the PostgreSQL URL)" -}}
{{- end -}}
{{- end -}}

{{/* The `store` section of the gateway configuration (tunables from config.store, the rest from store.*). */}}
{{- define "cancel-gateway.store.config" -}}
{{- include "cancel-gateway.store.validate" . -}}
{{- $kind := include "cancel-gateway.store.kind" . -}}
{{- $s := default dict .v.store -}}
{{- $dir := include "cancel-gateway.dir" . -}}
{{- $c := deepCopy (default dict .v.config.store) -}}
{{- $_ := set $c "kind" $kind -}}
{{- if eq $kind "sqlite" -}}
{{- $_ := set $c "path" (printf "%s/%s" (include "cancel-gateway.store.dataDir" .) $s.sqlite.fileName) -}}
{{- end -}}
{{- if and (eq $kind "postgres") $s.postgres.caSecret.name -}}
{{- $tls := deepCopy (default dict $c.tls) -}}
{{- $_ := set $tls "ca" (printf "%s/store-ca/%s" $dir $s.postgres.caSecret.key) -}}
{{- $_ := set $c "tls" $tls -}}
{{- end -}}
{{- if and (ne $kind "memory") $s.encryptionKey.secretName -}}
{{- $_ := set $c "encryptionKeyFile" (printf "%s/store-key/%s" $dir $s.encryptionKey.key) -}}
{{- $previous := list -}}
{{- range $s.encryptionKey.previousKeys -}}{{- $previous = append $previous (printf "%s/store-key/%s" $dir .) -}}{{- end -}}
{{- if $previous -}}{{- $_ := set $c "decryptionKeyFiles" $previous -}}{{- end -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Env entries (list items) for the container: the PostgreSQL URL from its Secret. */}}
{{- define "cancel-gateway.store.env" -}}
{{- if eq (include "cancel-gateway.store.kind" .) "postgres" -}}
- name: GATEWAY_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .v.store.postgres.urlSecret.name }}
      key: {{ .v.store.postgres.urlSecret.key }}
{{- end -}}
{{- end -}}

{{/* volumeMounts (list items): the sqlite folder (writable), the key and CA Secrets (read-only). */}}
{{- define "cancel-gateway.store.volumeMounts" -}}
{{- $kind := include "cancel-gateway.store.kind" . -}}
{{- $s := .v.store -}}
{{- $dir := include "cancel-gateway.dir" . -}}
{{- if eq $kind "sqlite" }}
- name: cancel-gateway-store
  mountPath: {{ include "cancel-gateway.store.dataDir" . }}
{{- end }}
{{- if and (eq $kind "postgres") $s.postgres.caSecret.name }}
- name: cancel-gateway-store-ca
  mountPath: {{ $dir }}/store-ca
  readOnly: true
{{- end }}
{{- if and (ne $kind "memory") $s.encryptionKey.secretName }}
- name: cancel-gateway-store-key
  mountPath: {{ $dir }}/store-key
  readOnly: true
{{- end }}
{{- end -}}

{{/* volumes (list items). sqlite: an emptyDir (the history goes with the pod) or an existing PVC. */}}
{{- define "cancel-gateway.store.volumes" -}}
{{- $kind := include "cancel-gateway.store.kind" . -}}
{{- $s := .v.store -}}
{{- $mode := include "cancel-gateway.secretMode" . | int -}}
{{- if eq $kind "sqlite" }}
- name: cancel-gateway-store
  {{- if $s.sqlite.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ $s.sqlite.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ $s.sqlite.sizeLimit }}
  {{- end }}
{{- end }}
{{- if and (eq $kind "postgres") $s.postgres.caSecret.name }}
- name: cancel-gateway-store-ca
  secret:
    secretName: {{ $s.postgres.caSecret.name }}
    defaultMode: {{ $mode }}
{{- end }}
{{- if and (ne $kind "memory") $s.encryptionKey.secretName }}
- name: cancel-gateway-store-key
  secret:
    secretName: {{ $s.encryptionKey.secretName }}
    defaultMode: {{ $mode }}
{{- end }}
{{- end -}}
