{{/*
Names, labels, the rendered gateway configuration, and the sidecar templates.

Every helper that needs the chart's values takes a dict (dict "v" <gateway values> "top" <root
context>) so the same code serves this chart (v = .Values) and a vendor's chart that has this one
as a dependency (v = .Values.cancel-gateway, where Helm merges this chart's defaults). The public
sidecar entry points at the end take the vendor's root context and pick the values themselves.
*/}}

{{/* Mount folders: one per Secret, so each Secret swap is one folder change the gateway sees. */}}
{{- define "cancel-gateway.dir" -}}/etc/cancel-gateway{{- end -}}

{{- define "cancel-gateway.name" -}}
{{- default "cancel-gateway" .v.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Not derived from .Chart.Name: from a vendor's chart, .Chart is the vendor's chart. */}}
{{- define "cancel-gateway.fullname" -}}
{{- if .v.fullnameOverride -}}
{{- .v.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "cancel-gateway" .v.nameOverride -}}
{{- if contains $name .top.Release.Name -}}
{{- .top.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .top.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cancel-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cancel-gateway.name" . }}
app.kubernetes.io/instance: {{ .top.Release.Name }}
{{- end -}}

{{- define "cancel-gateway.labels" -}}
helm.sh/chart: {{ printf "cancel-gateway-%s" .top.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cancel-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .v.image.tag | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .top.Release.Service }}
{{- end -}}

{{- define "cancel-gateway.serviceAccountName" -}}
{{- if .v.serviceAccount.create -}}
{{- default (include "cancel-gateway.fullname" .) .v.serviceAccount.name -}}
{{- else -}}
{{- default "default" .v.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cancel-gateway.image" -}}
{{- if .v.image.digest -}}
{{- printf "%s@%s" .v.image.repository .v.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .v.image.repository (required "image.tag or image.digest is required" .v.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The pods the Service / ServiceMonitor / NetworkPolicy select: ours, or the vendor's. */}}
{{- define "cancel-gateway.podSelector" -}}
{{- if eq .v.mode "sidecar" -}}
{{- toYaml .v.sidecar.podSelector -}}
{{- else -}}
{{- include "cancel-gateway.selectorLabels" . -}}
{{- end -}}
{{- end -}}

{{/*
The gateway configuration file (config.yaml), from .v.config plus the file paths of the mounted
Secrets. Validated by the gateway at start-up (and by the chart tests with the gateway's own
buildConfig). Keys are sorted by toYaml.
*/}}
{{- define "cancel-gateway.configYaml" -}}
{{- $v := .v -}}
{{- $dir := include "cancel-gateway.dir" . -}}
{{- $c := deepCopy (default dict $v.config) -}}
{{- range $owned := list "cert" "key" "clientCa" "crl" -}}
{{- if hasKey (default dict $c.tls) $owned -}}
{{- fail (printf "config.tls.%s is set by the chart from tls.* Secrets; remove it from config" $owned) -}}
{{- end -}}
{{- end -}}
{{- range $owned := list "ca" "cert" "key" -}}
{{- if hasKey (default dict $c.upstream) $owned -}}
{{- fail (printf "config.upstream.%s is set by the chart from upstreamTls.* Secrets; remove it from config" $owned) -}}
{{- end -}}
{{- end -}}
{{- if hasKey (default dict $c.jwt) "jwksFile" -}}
{{- fail "config.jwt.jwksFile is set by the chart from jwks.configMap; remove it from config" -}}
{{- end -}}
{{- if hasKey (default dict $c.jwt) "jwksCa" -}}
{{- fail "config.jwt.jwksCa is set by the chart from jwks.caConfigMap; remove it from config" -}}
{{- end -}}
{{- $_ := required "config.publicBaseUrl is required (the public FHIR base URL consumers use)" $c.publicBaseUrl -}}
{{- $upstream := deepCopy (default dict $c.upstream) -}}
{{- $_ := required "config.upstream.url is required (the provider's FHIR base URL)" $upstream.url -}}
{{- $spine := default dict $c.spine -}}
{{- $_ := required "config.spine.providerAsids is required (the ASID(s) Ssp-To must equal)" $spine.providerAsids -}}
{{- /* The gateway's own admin.host default (127.0.0.1) would hide the probes from the kubelet. */ -}}
{{- $admin := deepCopy (default dict $c.admin) -}}
{{- if not $admin.host -}}{{- $_ := set $admin "host" "0.0.0.0" -}}{{- end -}}
{{- /* Loopback in any spelling: 127.x, localhost (any case, a trailing dot), ::1 short or long, IPv4-mapped 127.x, bracketed. */ -}}
{{- if regexMatch "^\\[?((::ffff:|(0{1,4}:){5}ffff:)(127\\.|0{0,2}7f[0-9a-f]{2}:)|127\\.|localhost\\.?\\]?$|(0{0,4}:){1,7}0{0,3}1\\]?$)" (lower (toString $admin.host)) -}}
{{- fail (printf "config.admin.host %s: the kubelet probes the pod's address, so a loopback admin listener fails every probe (the pod restarts for ever); use 0.0.0.0 or leave it out" (toString $admin.host)) -}}
{{- end -}}
{{- $_ := set $c "admin" $admin -}}
{{- $tls := deepCopy (default dict $c.tls) -}}
{{- $_ := set $tls "cert" (printf "%s/tls/%s" $dir $v.tls.server.certKey) -}}
{{- $_ := set $tls "key" (printf "%s/tls/%s" $dir $v.tls.server.keyKey) -}}
{{- $_ := required "tls.server.secretName is required (the Secret with the server certificate and key)" $v.tls.server.secretName -}}
{{- $_ := set $tls "clientCa" (printf "%s/client-ca/%s" $dir $v.tls.clientCa.key) -}}
{{- $_ := required "tls.clientCa.secretName is required (the Secret with the client CA bundle)" $v.tls.clientCa.secretName -}}
{{- if $v.tls.crl.secretName -}}
{{- $_ := set $tls "crl" (printf "%s/crl/%s" $dir $v.tls.crl.key) -}}
{{- end -}}
{{- $_ := set $c "tls" $tls -}}
{{- if $v.upstreamTls.ca.secretName -}}
{{- $_ := set $upstream "ca" (printf "%s/upstream-ca/%s" $dir $v.upstreamTls.ca.key) -}}
{{- end -}}
{{- if $v.upstreamTls.client.secretName -}}
{{- $_ := set $upstream "cert" (printf "%s/upstream-client/%s" $dir $v.upstreamTls.client.certKey) -}}
{{- $_ := set $upstream "key" (printf "%s/upstream-client/%s" $dir $v.upstreamTls.client.keyKey) -}}
{{- end -}}
{{- $_ := set $c "upstream" $upstream -}}
{{- $jwtIn := default dict $c.jwt -}}
{{- if and (eq (toString $jwtIn.mode) "signed") (not $v.jwks.configMap) (not $jwtIn.jwksUrl) -}}
{{- fail "config.jwt.mode signed needs a key set: jwks.configMap (a ConfigMap holding the JWKS) or config.jwt.jwksUrl" -}}
{{- end -}}
{{- if $v.jwks.configMap -}}
{{- $jwt := deepCopy (default dict $c.jwt) -}}
{{- $_ := set $jwt "jwksFile" (printf "%s/jwks/%s" $dir $v.jwks.key) -}}
{{- $_ := set $c "jwt" $jwt -}}
{{- end -}}
{{- if $v.jwks.caConfigMap -}}
{{- if not $jwtIn.jwksUrl -}}
{{- fail "jwks.caConfigMap is the CA of config.jwt.jwksUrl's server: give config.jwt.jwksUrl" -}}
{{- end -}}
{{- $jwt := deepCopy (default dict $c.jwt) -}}
{{- $_ := set $jwt "jwksCa" (printf "%s/jwks-ca/%s" $dir $v.jwks.caKey) -}}
{{- $_ := set $c "jwt" $jwt -}}
{{- end -}}
{{- if hasKey (default dict (default dict $c.store).tls) "ca" -}}
{{- fail "config.store.tls.ca is set by the chart from store.postgres.caSecret; remove it from config" -}}
{{- end -}}
{{- $storeTls := default dict (default dict $c.store).tls -}}
{{- if or (hasKey $storeTls "cert") (hasKey $storeTls "key") -}}
{{- fail "config.store.tls.cert/key: the chart mounts no client certificate for the database yet; log in with the password in the store URL Secret" -}}
{{- end -}}
{{- $_ := set $c "store" (include "cancel-gateway.store.config" . | fromYaml) -}}
{{- toYaml $c -}}
{{- end -}}

{{- define "cancel-gateway.configChecksum" -}}
{{- include "cancel-gateway.configYaml" . | sha256sum -}}
{{- end -}}

{{- define "cancel-gateway.secretMode" -}}
{{- if not (kindIs "invalid" .v.tls.defaultMode) -}}
{{- .v.tls.defaultMode | int -}}
{{- else if eq .v.mode "sidecar" -}}
292
{{- else -}}
288
{{- end -}}
{{- end -}}

{{/*
The pod's grace period. Default: the drain, then the hold a write in doubt keeps on its
appointment (upstream.inDoubtHoldMs, default upstream.timeoutMs: the process waits it out before
exiting, ruling 23), then 15 s (the tracer's 5 s export bound and a margin). A value given that is
shorter than the drain plus the hold is refused: the kubelet would kill in-flight requests or cut
the hold short.
*/}}
{{- define "cancel-gateway.terminationGracePeriodSeconds" -}}
{{- $shutdown := default dict .v.config.shutdown -}}
{{- /* hasKey, not default: 0 is a setting (no drain, no hold), not "unset". */ -}}
{{- $drainMs := ternary $shutdown.drainTimeoutMs 30000 (hasKey $shutdown "drainTimeoutMs") | int -}}
{{- $upstream := default dict .v.config.upstream -}}
{{- $timeoutMs := ternary $upstream.timeoutMs 10000 (hasKey $upstream "timeoutMs") | int -}}
{{- $holdMs := ternary $upstream.inDoubtHoldMs $timeoutMs (hasKey $upstream "inDoubtHoldMs") | int -}}
{{- $least := add (div $drainMs 1000) (div (add $holdMs 999) 1000) -}}
{{- if .v.terminationGracePeriodSeconds -}}
{{- if lt (.v.terminationGracePeriodSeconds | int) (int $least) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least config.shutdown.drainTimeoutMs + config.upstream.inDoubtHoldMs (%d s): the process waits out the hold of a write in doubt before it exits; leave it empty for the default" (.v.terminationGracePeriodSeconds | int) (int $least)) -}}
{{- end -}}
{{- .v.terminationGracePeriodSeconds | int -}}
{{- else -}}
{{- add $least 15 -}}
{{- end -}}
{{- end -}}

{{/* The gateway container (one list item), for the Deployment and for a vendor's pod. */}}
{{- define "cancel-gateway.container" -}}
{{- $v := .v -}}
{{- $dir := include "cancel-gateway.dir" . -}}
{{- $listen := default dict $v.config.listen -}}
{{- $admin := default dict $v.config.admin -}}
- name: cancel-gateway
  image: {{ include "cancel-gateway.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and (eq $v.mode "sidecar") $v.sidecar.native }}
  {{- if semverCompare "<1.29.0-0" .top.Capabilities.KubeVersion.Version }}
  {{- fail (printf "sidecar.native needs Kubernetes >= 1.29 (native sidecar containers); this cluster is %s" .top.Capabilities.KubeVersion.Version) }}
  {{- end }}
  # Native sidecar: an init container that keeps running alongside the pod's containers.
  restartPolicy: Always
  {{- end }}
  args: ["--config", "{{ $dir }}/config/config.yaml"]
  {{- $storeEnv := include "cancel-gateway.store.env" . }}
  {{- $auditEnv := include "cancel-gateway.audit.env" . }}
  {{- if or $storeEnv $auditEnv $v.extraEnv }}
  env:
    {{- with $storeEnv }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $auditEnv }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- range . }}
    {{- if has .name (list "GATEWAY_CONFIG" "GATEWAY_PORT" "GATEWAY_ADMIN_PORT" "GATEWAY_LISTEN_HOST" "GATEWAY_ADMIN_HOST" "GATEWAY_AUDIT_DESTINATION" "GATEWAY_TLS_CERT" "GATEWAY_TLS_KEY" "GATEWAY_TLS_CLIENT_CA" "GATEWAY_TLS_CRL" "GATEWAY_UPSTREAM_URL" "GATEWAY_UPSTREAM_TIMEOUT_MS" "GATEWAY_STORE_URL") }}
    {{- fail (printf "extraEnv %s: the chart derives the ports, probes, mounts, paths and network policy from config; set it under config instead" .name) }}
    {{- end }}
    {{- end }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: gateway-tls
      containerPort: {{ default 8443 $listen.port }}
      protocol: TCP
    - name: gateway-admin
      containerPort: {{ default 9090 $admin.port }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: gateway-admin
    {{- toYaml $v.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: gateway-admin
    {{- toYaml $v.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: gateway-admin
    {{- toYaml $v.probes.readiness | nindent 4 }}
  {{- with $v.lifecycle }}
  lifecycle:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: cancel-gateway-config
      mountPath: {{ $dir }}/config
      readOnly: true
    - name: cancel-gateway-tls
      mountPath: {{ $dir }}/tls
      readOnly: true
    - name: cancel-gateway-client-ca
      mountPath: {{ $dir }}/client-ca
      readOnly: true
    {{- if $v.tls.crl.secretName }}
    - name: cancel-gateway-crl
      mountPath: {{ $dir }}/crl
      readOnly: true
    {{- end }}
    {{- if $v.upstreamTls.ca.secretName }}
    - name: cancel-gateway-upstream-ca
      mountPath: {{ $dir }}/upstream-ca
      readOnly: true
    {{- end }}
    {{- if $v.upstreamTls.client.secretName }}
    - name: cancel-gateway-upstream-client
      mountPath: {{ $dir }}/upstream-client
      readOnly: true
    {{- end }}
    {{- if $v.jwks.configMap }}
    - name: cancel-gateway-jwks
      mountPath: {{ $dir }}/jwks
      readOnly: true
    {{- end }}
    {{- if $v.jwks.caConfigMap }}
    - name: cancel-gateway-jwks-ca
      mountPath: {{ $dir }}/jwks-ca
      readOnly: true
    {{- end }}
    {{- if $v.tmpVolume.enabled }}
    - name: cancel-gateway-tmp
      mountPath: /tmp
    {{- end }}
    {{- if include "cancel-gateway.auditOnVolume" . }}
    - name: cancel-gateway-audit
      mountPath: {{ $v.auditVolume.mountPath }}
    {{- end }}
    {{- with (include "cancel-gateway.store.volumeMounts" . | trim) }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The gateway's volumes (list items), for the Deployment and for a vendor's pod. */}}
{{- define "cancel-gateway.volumes" -}}
{{- $v := .v -}}
{{- $mode := include "cancel-gateway.secretMode" . | int -}}
- name: cancel-gateway-config
  configMap:
    name: {{ include "cancel-gateway.fullname" . }}
- name: cancel-gateway-tls
  secret:
    secretName: {{ required "tls.server.secretName is required" $v.tls.server.secretName }}
    defaultMode: {{ $mode }}
- name: cancel-gateway-client-ca
  secret:
    secretName: {{ required "tls.clientCa.secretName is required" $v.tls.clientCa.secretName }}
    defaultMode: {{ $mode }}
{{- if $v.tls.crl.secretName }}
- name: cancel-gateway-crl
  secret:
    secretName: {{ $v.tls.crl.secretName }}
    defaultMode: {{ $mode }}
{{- end }}
{{- if $v.upstreamTls.ca.secretName }}
- name: cancel-gateway-upstream-ca
  secret:
    secretName: {{ $v.upstreamTls.ca.secretName }}
    defaultMode: {{ $mode }}
{{- end }}
{{- if $v.upstreamTls.client.secretName }}
- name: cancel-gateway-upstream-client
  secret:
    secretName: {{ $v.upstreamTls.client.secretName }}
    defaultMode: {{ $mode }}
{{- end }}
{{- if $v.jwks.configMap }}
- name: cancel-gateway-jwks
  configMap:
    name: {{ $v.jwks.configMap }}
{{- end }}
{{- if $v.jwks.caConfigMap }}
- name: cancel-gateway-jwks-ca
  configMap:
    name: {{ $v.jwks.caConfigMap }}
{{- end }}
{{- if $v.tmpVolume.enabled }}
- name: cancel-gateway-tmp
  emptyDir:
    sizeLimit: {{ $v.tmpVolume.sizeLimit }}
{{- end }}
{{- if include "cancel-gateway.auditOnVolume" . }}
- name: cancel-gateway-audit
  {{- if $v.auditVolume.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ $v.auditVolume.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ $v.auditVolume.sizeLimit }}
  {{- end }}
{{- end }}
{{- include "cancel-gateway.store.volumes" . }}
{{- end -}}

{{/*
A file audit.destination (not stdout, stderr or none) lives on its own volume at
auditVolume.mountPath (the trail is append-only: the 16Mi /tmp would fill and get the pod evicted,
trail and all). "true" when the destination is under that folder; a file anywhere else but /tmp is
refused at render (the root filesystem is read-only: the gateway would not start).
*/}}
{{- define "cancel-gateway.auditOnVolume" -}}
{{- $dest := toString (default "stdout" ((.v.config.audit | default dict).destination)) -}}
{{- if not (has $dest (list "stdout" "stderr" "none")) -}}
{{- $dir := trimSuffix "/" .v.auditVolume.mountPath -}}
{{- $system := false -}}
{{- range (list "/app" "/usr" "/etc" "/bin" "/sbin" "/lib" "/lib64" "/proc" "/sys" "/dev" "/run" "/home" "/root" "/opt" "/srv" "/boot") -}}
{{- if or (eq $dir .) (hasPrefix (printf "%s/" .) (printf "%s/" $dir)) -}}{{- $system = true -}}{{- end -}}
{{- end -}}
{{- if or $system (eq $dir "") (eq $dir "/var") (eq $dir "/var/lib") (eq $dir "/var/log") -}}
{{- fail (printf "auditVolume.mountPath %s: a system folder of the image (an emptyDir there would hide what the image keeps in it); choose a folder of its own, e.g. /var/log/cancel-gateway" (default "/" $dir)) -}}
{{- end -}}
{{- if hasPrefix (printf "%s/" $dir) $dest -}}
{{- if ne (dir $dest) $dir -}}
{{- fail (printf "config.audit.destination %s: the file must sit directly in auditVolume.mountPath (%s): the gateway does not create folders, and the volume starts empty" $dest $dir) -}}
{{- end -}}
{{- if or (and .v.tmpVolume.enabled (or (eq $dir "/tmp") (hasPrefix "/tmp/" (printf "%s/" $dir)))) (and (eq $dir (include "cancel-gateway.store.dataDir" .)) (eq (include "cancel-gateway.store.kind" .) "sqlite")) (hasPrefix (printf "%s/" (include "cancel-gateway.dir" .)) (printf "%s/" $dir)) -}}
{{- fail (printf "auditVolume.mountPath %s: another volume is mounted there (/tmp, the sqlite store's folder, or the configuration under %s); choose a folder of its own" $dir (include "cancel-gateway.dir" .)) -}}
{{- end -}}
true
{{- else if not (hasPrefix "/tmp/" $dest) -}}
{{- fail (printf "config.audit.destination %s: a file must be under auditVolume.mountPath (%s) or /tmp, the only writable folders" $dest $dir) -}}
{{- else if ne (dir $dest) "/tmp" -}}
{{- fail (printf "config.audit.destination %s: a file in /tmp must sit directly in it: the gateway does not create folders, and the volume starts empty" $dest) -}}
{{- else if not .v.tmpVolume.enabled -}}
{{- fail (printf "config.audit.destination %s: /tmp is writable only with tmpVolume.enabled (the root filesystem is read-only)" $dest) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
An audit file on auditVolume.existingClaim is one volume for every pod (replicas, and the pod a
rolling update adds): each pod writes its own file, <pod name>-<file name>, so that no two
processes append to one file (the pod name comes from the downward API; Kubernetes expands
$(CANCEL_GATEWAY_POD_NAME) in the value). On an emptyDir each pod has its own volume: unchanged.
*/}}
{{- define "cancel-gateway.audit.env" -}}
{{- if and (eq (include "cancel-gateway.auditOnVolume" .) "true") .v.auditVolume.existingClaim -}}
{{- $dest := toString .v.config.audit.destination -}}
- name: CANCEL_GATEWAY_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: GATEWAY_AUDIT_DESTINATION
  value: {{ printf "%s/$(CANCEL_GATEWAY_POD_NAME)-%s" (dir $dest) (base $dest) | quote }}
{{- end -}}
{{- end -}}

{{/* ===== Public entry points for a vendor's chart (pass the root context: "."). ===== */}}

{{/*
Where this chart's values sit in the vendor's .Values: the key of the dependency, which is its
alias when the vendor gave it one ("." when called from this chart itself). Found by the shape of
the values (Helm merges this chart's defaults under that key), so an alias needs nothing more. With
two dependencies on this chart, name one: (dict "top" . "alias" "gw").
*/}}
{{- define "cancel-gateway.sidecar.key" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- if hasKey . "alias" -}}
{{- if not (kindIs "map" (index $top.Values .alias)) -}}
{{- fail (printf "cancel-gateway sidecar templates: .Values.%s does not exist; alias must be the dependency's name or alias in Chart.yaml" .alias) -}}
{{- end -}}
{{- .alias -}}
{{- else if and (hasKey $top.Values "mode") (hasKey $top.Values "sidecar") (hasKey $top.Values "upstreamTls") -}}
.
{{- else -}}
{{- $found := list -}}
{{- range $k, $val := $top.Values -}}
{{- if and (kindIs "map" $val) (hasKey $val "mode") (hasKey $val "sidecar") (hasKey $val "upstreamTls") -}}
{{- $found = append $found $k -}}
{{- end -}}
{{- end -}}
{{- if eq (len $found) 1 -}}
{{- first $found -}}
{{- else if eq (len $found) 0 -}}
{{- fail `cancel-gateway sidecar templates: no cancel-gateway values in this chart; list cancel-gateway under dependencies in Chart.yaml (an alias is fine), run helm dependency build, and pass the root context: include "cancel-gateway.sidecar.container" .` -}}
{{- else -}}
{{- fail (printf `cancel-gateway sidecar templates: several cancel-gateway dependencies (%s); name one, e.g. include "cancel-gateway.sidecar.container" (dict "top" . "alias" "%s")` (join ", " $found) (first $found)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The gateway values and root context for an entry point, as (dict "v" .. "top" ..), checked for sidecar mode. */}}
{{- define "cancel-gateway.sidecar.ctx" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.key" . -}}
{{- $v := $top.Values -}}
{{- if ne $key "." -}}{{- $v = index $top.Values $key -}}{{- end -}}
{{- if ne $v.mode "sidecar" -}}
{{- fail (printf "the cancel-gateway sidecar templates need %smode: sidecar" (ternary "" (printf "%s." $key) (eq $key "."))) -}}
{{- end -}}
{{- $key -}}
{{- end -}}

{{/*
The gateway container, one list item. Include it under `containers:`, or under `initContainers:`
when the sidecar is native (cancel-gateway.sidecar.native "true"; it then carries restartPolicy: Always):
  {{- include "cancel-gateway.sidecar.container" . | nindent 8 }}
*/}}
{{- define "cancel-gateway.sidecar.container" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.ctx" . -}}
{{- $v := ternary $top.Values (index $top.Values $key) (eq $key ".") -}}
{{- include "cancel-gateway.container" (dict "v" $v "top" $top) -}}
{{- end -}}

{{/* The gateway's volumes, list items for the pod's `volumes:`. */}}
{{- define "cancel-gateway.sidecar.volumes" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.ctx" . -}}
{{- $v := ternary $top.Values (index $top.Values $key) (eq $key ".") -}}
{{- include "cancel-gateway.volumes" (dict "v" $v "top" $top) -}}
{{- end -}}

{{/* Pod-template annotations: a checksum of the gateway configuration, so a change rolls the pods. */}}
{{- define "cancel-gateway.sidecar.annotations" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.ctx" . -}}
{{- $v := ternary $top.Values (index $top.Values $key) (eq $key ".") -}}
checksum/cancel-gateway-config: {{ include "cancel-gateway.configChecksum" (dict "v" $v "top" $top) }}
{{- end -}}

{{/* The vendor pod's terminationGracePeriodSeconds: the gateway's drain, its in-doubt hold, + 15 s (as for the chart's own pods). */}}
{{- define "cancel-gateway.sidecar.terminationGracePeriodSeconds" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.ctx" . -}}
{{- $v := ternary $top.Values (index $top.Values $key) (eq $key ".") -}}
{{- include "cancel-gateway.terminationGracePeriodSeconds" (dict "v" $v) -}}
{{- end -}}

{{/* "true" when the container belongs under initContainers (native sidecar), else "". */}}
{{- define "cancel-gateway.sidecar.native" -}}
{{- $top := . -}}{{- if hasKey . "top" -}}{{- $top = .top -}}{{- end -}}
{{- $key := include "cancel-gateway.sidecar.ctx" . -}}
{{- $v := ternary $top.Values (index $top.Values $key) (eq $key ".") -}}
{{- if $v.sidecar.native -}}true{{- end -}}
{{- end -}}
