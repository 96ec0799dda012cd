import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { applyEnv, buildConfig, parseConfigText, type Config } from '../../src/config.js';
import { packageRoot } from '../../src/paths.js';
import { chartCopy, chartDir, helm, parseManifests, template, type Manifest } from './render.js';

/**
 * The Helm chart, rendered by the real helm for every values file under charts/cancel-gateway/ci/
 * (and the test vendor chart ci/sidecar-host with each of its ci/ files), without a cluster:
 *  - every manifest validates against the Kubernetes schemas (kubernetes-models validators) and,
 *    because those accept unknown fields, type-checks against the same models' TypeScript
 *    interfaces, whose excess-property check finds misspelt or misplaced fields (what the API
 *    server's strict field validation would refuse);
 *  - ports, mounts, probes, securityContext, the sidecar shape, the checksum annotation, which
 *    optional objects exist;
 *  - every rendered gateway configuration (the ConfigMap) passes the gateway's own validation,
 *    buildConfig(.., { checkFiles: false }): check-config minus file existence.
 */

const CONFIG_DIR = '/etc/cancel-gateway/config';
const MIN_KUBE = '1.25.0';
const NATIVE_KUBE = '1.29.0';

const MODELS: Record<string, { validate(d: Manifest): void; type: [string, string] }> = {
  'v1/ConfigMap': { validate: (d) => new ConfigMap(d as never).validate(), type: ['kubernetes-models/v1/ConfigMap', 'IConfigMap'] },
  'v1/Service': { validate: (d) => new Service(d as never).validate(), type: ['kubernetes-models/v1/Service', 'IService'] },
  'v1/ServiceAccount': { validate: (d) => new ServiceAccount(d as never).validate(), type: ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'] },
  'apps/v1/Deployment': { validate: (d) => new Deployment(d as never).validate(), type: ['kubernetes-models/apps/v1/Deployment', 'IDeployment'] },
  'policy/v1/PodDisruptionBudget': { validate: (d) => new PodDisruptionBudget(d as never).validate(), type: ['kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'] },
  'networking.k8s.io/v1/NetworkPolicy': { validate: (d) => new NetworkPolicy(d as never).validate(), type: ['kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'] },
  'monitoring.coreos.com/v1/ServiceMonitor': { validate: (d) => new ServiceMonitor(d as never).validate(), type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'] },
  'monitoring.coreos.com/v1/PrometheusRule': { validate: (d) => new PrometheusRule(d as never).validate(), type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'] },
};

const copy = chartCopy();
const strictQueue: Array<{ label: string; doc: Manifest }> = [];

interface Rendered { label: string; docs: Manifest[] }

/** Render, parse, validate every manifest; queue them for the strict (excess-field) check. */
function render(tt: Test, label: string, chart: string, o: Parameters<typeof template>[1]): Rendered {
  const r = template(chart, o);
  if (!r.ok) throw new Error(`${label}: helm template failed:\n${r.stderr}`);
  const docs = parseManifests(r.stdout);
  tt.ok(docs.length > 0, `${label}: renders manifests`);
  for (const doc of docs) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const model = MODELS[key];
    if (!model) {
      tt.fail(`${label}: unexpected kind ${key}`);
      continue;
    }
    let problem = '';
    try {
      model.validate(doc);
    } catch (e) {
      problem = (e as Error).message;
    }
    tt.equal(problem, '', `${label}: ${doc.kind} ${doc.metadata?.name} is valid against the Kubernetes schema`);
    tt.ok(typeof doc.metadata?.name === 'string' && doc.metadata.name.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(doc.metadata.name), `${label}: ${doc.kind} name is a DNS label`);
    strictQueue.push({ label: `${label}: ${doc.kind} ${doc.metadata?.name}`, doc });
  }
  return { label, docs };
}

function kinds(r: Rendered): string[] {
  return r.docs.map((d) => d.kind).sort();
}

function only(tt: Test, r: Rendered, kind: string, name?: string): Manifest {
  const found = r.docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  tt.equal(found.length, 1, `${r.label}: exactly one ${kind}${name ? ` ${name}` : ''}`);
  return found[0] ?? {};
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The gateway configuration in the ConfigMap, through the gateway's own validation. */
function gatewayConfig(tt: Test, r: Rendered, cmName: string): { config: Readonly<Config>; text: string; checksum: string } {
  const cm = only(tt, r, 'ConfigMap', cmName);
  const text: string = cm.data?.['config.yaml'] ?? '';
  tt.ok(text.length > 0, `${r.label}: the ConfigMap holds config.yaml`);
  let config: Readonly<Config> | undefined;
  let problems = '';
  try {
    const raw = parseConfigText(text, 'config.yaml');
    // The PostgreSQL URL reaches the gateway from a Secret as GATEWAY_STORE_URL (test/charts/store.test.ts).
    applyEnv(raw, (raw.store as { kind?: string } | undefined)?.kind === 'postgres' ? { GATEWAY_STORE_URL: 'postgres://from-the-secret/db' } : {});
    config = buildConfig(raw, { checkFiles: false });
  } catch (e) {
    problems = (e as Error).message;
  }
  tt.equal(problems, '', `${r.label}: the rendered configuration passes the gateway's validation (check-config)`);
  if (!config) throw new Error(`${r.label}: the rendered configuration is refused by the gateway: ${problems}`);
  // The annotation is the sha256 of the helper's output: the ConfigMap text minus the comment
  // line and the block scalar's final newline.
  const body = text.split('\n').slice(1).join('\n').replace(/\n$/, '');
  return { config, text, checksum: sha256(body) };
}

interface PodExpect {
  config: Readonly<Config>;
  configMapName: string;
  native: boolean;
  secretMode: number;
  /** config path -> [volume source kind, source name, key/file name] */
  files: Record<string, ['secret' | 'configMap', string, string]>;
}

function gatewayContainerOf(podSpec: Manifest): { c: Manifest; where: 'containers' | 'initContainers' } | undefined {
  const inMain = (podSpec.containers ?? []).filter((c: Manifest) => c.name === 'cancel-gateway');
  const inInit = (podSpec.initContainers ?? []).filter((c: Manifest) => c.name === 'cancel-gateway');
  if (inMain.length + inInit.length !== 1) return undefined;
  return inMain.length ? { c: inMain[0], where: 'containers' } : { c: inInit[0], where: 'initContainers' };
}

/** The gateway container in a pod: shape, ports, probes, securityContext, mounts. */
function checkGatewayPod(tt: Test, label: string, podSpec: Manifest, e: PodExpect): void {
  const found = gatewayContainerOf(podSpec);
  tt.ok(found, `${label}: exactly one cancel-gateway container in the pod`);
  if (!found) return;
  const { c, where } = found;
  if (e.native) {
    tt.equal(where, 'initContainers', `${label}: native sidecar: an init container`);
    tt.equal(c.restartPolicy, 'Always', `${label}: native sidecar: restartPolicy Always`);
  } else {
    tt.equal(where, 'containers', `${label}: an ordinary container`);
    tt.equal(c.restartPolicy, undefined, `${label}: no container restartPolicy`);
  }
  tt.same(c.args, ['--config', `${CONFIG_DIR}/config.yaml`], `${label}: runs the mounted configuration`);
  tt.equal(c.command, undefined, `${label}: keeps the image ENTRYPOINT`);

  const ports = Object.fromEntries((c.ports ?? []).map((p: Manifest) => [p.name, p]));
  tt.same(Object.keys(ports).sort(), ['gateway-admin', 'gateway-tls'], `${label}: two named ports`);
  tt.equal(ports['gateway-tls']?.containerPort, e.config.listen.port, `${label}: TLS port = config listen.port`);
  tt.equal(ports['gateway-admin']?.containerPort, e.config.admin.port, `${label}: admin port = config admin.port`);
  tt.equal(e.config.admin.host, '0.0.0.0', `${label}: admin listener reachable by the kubelet`);
  tt.equal(e.config.listen.host, '0.0.0.0', `${label}: TLS listener on all interfaces`);

  for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz'], ['startupProbe', '/healthz']] as const) {
    tt.same(c[probe]?.httpGet, { path, port: 'gateway-admin' }, `${label}: ${probe} GET ${path} on the admin port`);
  }
  tt.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${label}: resources set`);

  const sc = c.securityContext ?? {};
  tt.equal(sc.runAsNonRoot, true, `${label}: runAsNonRoot`);
  tt.equal(sc.runAsUser, 10001, `${label}: the image's uid`);
  tt.equal(sc.readOnlyRootFilesystem, true, `${label}: readOnlyRootFilesystem`);
  tt.equal(sc.allowPrivilegeEscalation, false, `${label}: allowPrivilegeEscalation false`);
  tt.same(sc.capabilities, { drop: ['ALL'] }, `${label}: drops ALL capabilities`);
  tt.same(sc.seccompProfile, { type: 'RuntimeDefault' }, `${label}: seccomp RuntimeDefault`);

  const volumes = new Map<string, Manifest>((podSpec.volumes ?? []).map((v: Manifest) => [v.name, v]));
  tt.equal(volumes.size, (podSpec.volumes ?? []).length, `${label}: volume names are unique`);
  const mounts = new Map<string, Manifest>();
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    tt.ok(v, `${label}: mount ${m.mountPath} has its volume ${m.name}`);
    if (m.mountPath === '/tmp') {
      tt.ok(v?.emptyDir, `${label}: /tmp is an emptyDir`);
      tt.notOk(m.readOnly, `${label}: /tmp is writable`);
    } else if (m.mountPath === '/var/lib/cancel-gateway') {
      tt.ok(v?.emptyDir || v?.persistentVolumeClaim, `${label}: the sqlite store folder is an emptyDir or a PVC`);
      tt.notOk(m.readOnly, `${label}: the sqlite store folder is writable`);
    } else {
      tt.equal(m.readOnly, true, `${label}: ${m.mountPath} is mounted read-only`);
    }
    tt.notOk(m.subPath, `${label}: ${m.mountPath}: whole volume, no subPath (subPath mounts never see a Secret update)`);
    mounts.set(m.mountPath, v ?? {});
  }
  tt.equal(mounts.size, (c.volumeMounts ?? []).length, `${label}: one mount per folder`);
  tt.equal(mounts.get(CONFIG_DIR)?.configMap?.name, e.configMapName, `${label}: the configuration folder is the ConfigMap`);

  // Every file the configuration names lies directly in the folder of its own Secret/ConfigMap.
  const cfgFiles: Record<string, string | undefined> = {
    'tls.cert': e.config.tls.cert, 'tls.key': e.config.tls.key, 'tls.clientCa': e.config.tls.clientCa, 'tls.crl': e.config.tls.crl,
    'upstream.ca': e.config.upstream.ca, 'upstream.cert': e.config.upstream.cert, 'upstream.key': e.config.upstream.key, 'jwt.jwksFile': e.config.jwt.jwksFile,
  };
  for (const [key, file] of Object.entries(cfgFiles)) {
    const want = e.files[key];
    if (!want) {
      tt.equal(file, undefined, `${label}: ${key} not configured`);
      continue;
    }
    tt.ok(file, `${label}: ${key} configured`);
    if (!file) continue;
    const v = mounts.get(posix.dirname(file));
    const [kind, name, item] = want;
    tt.equal(kind === 'secret' ? v?.secret?.secretName : v?.configMap?.name, name, `${label}: ${key} is in the folder where ${kind} ${name} is mounted`);
    tt.equal(posix.basename(file), item, `${label}: ${key} is the ${kind}'s key ${item}`);
    if (kind === 'secret') tt.equal(v?.secret?.defaultMode, e.secretMode, `${label}: ${key} secret file mode ${e.secretMode.toString(8)}`);
  }
  const tlsDirs = ['tls.cert', 'tls.clientCa', 'tls.crl'].map((k) => cfgFiles[k]).filter(Boolean).map((f) => posix.dirname(f!));
  tt.equal(new Set(tlsDirs).size, tlsDirs.length, `${label}: server certificate, client CA and CRL in separate folders`);
}

function checkDeploymentBasics(tt: Test, label: string, dep: Manifest, svc: Manifest, cfg: Readonly<Config>, checksum: string): void {
  const pod = dep.spec?.template ?? {};
  const selector = dep.spec?.selector?.matchLabels ?? {};
  tt.match(pod.metadata?.labels, selector, `${label}: pod labels carry the selector`);
  tt.same(svc.spec?.selector, selector, `${label}: the Service selects the gateway pods`);
  tt.equal(pod.metadata?.annotations?.['checksum/config'], checksum, `${label}: checksum/config annotation = sha256 of the rendered configuration`);
  tt.equal(pod.spec?.automountServiceAccountToken, false, `${label}: no API token mounted`);
  tt.ok(pod.spec?.terminationGracePeriodSeconds > cfg.shutdown.drainTimeoutMs / 1000, `${label}: grace period longer than the drain`);
  const psc = pod.spec?.securityContext ?? {};
  tt.equal(psc.runAsNonRoot, true, `${label}: pod runAsNonRoot`);
  tt.equal(psc.fsGroup, 10001, `${label}: pod fsGroup 10001 (the 0440 Secret files are readable)`);
  const ports = Object.fromEntries((svc.spec?.ports ?? []).map((p: Manifest) => [p.name, p]));
  tt.equal(ports.https?.targetPort, 'gateway-tls', `${label}: Service https -> the TLS port`);
  tt.equal(ports.https?.port, 443, `${label}: Service https on 443`);
  tt.equal(ports.admin?.targetPort, 'gateway-admin', `${label}: Service admin -> the admin port`);
}

const ciDir = join(chartDir, 'ci');
const ciFiles = readdirSync(ciDir).filter((f) => f.endsWith('.yaml')).sort();
const hostCiFiles = readdirSync(join(ciDir, 'sidecar-host', 'ci')).filter((f) => f.endsWith('.yaml')).sort();

t.test('the ci/ values files the chart tests know', async (t) => {
  t.same(ciFiles, ['networkpolicy-servicemonitor-values.yaml', 'standalone-gp-connect-values.yaml', 'standalone-values.yaml'], 'every chart ci/ file is asserted below (add a case for a new one)');
  t.same(hostCiFiles, ['native-sidecar-values.yaml', 'sidecar-values.yaml'], 'every sidecar-host ci/ file is asserted below');
});

t.test('every ci/ values file renders, validates, and its configuration passes check-config', async (t) => {
  for (const f of ciFiles) {
    const lint = helm(['lint', chartDir, '--strict', '--values', join(ciDir, f)]);
    t.ok(lint.ok, `${f}: helm lint --strict passes${lint.ok ? '' : `:\n${lint.stdout}${lint.stderr}`}`);
    for (const kube of [MIN_KUBE, NATIVE_KUBE, '1.32.0']) {
      const r = render(t, `${f} @${kube}`, chartDir, { values: [join(ciDir, f)], kubeVersion: kube });
      gatewayConfig(t, r, only(t, r, 'ConfigMap').metadata?.name);
    }
  }
  for (const f of hostCiFiles) {
    const kube = f.startsWith('native') ? NATIVE_KUBE : MIN_KUBE;
    if (kube === MIN_KUBE) {
      // helm 3.10's lint has no --kube-version (it assumes 1.25), so the native sidecar is not linted.
      const lint = helm(['lint', copy.hostDir, '--strict', '--values', join(copy.hostDir, 'ci', f)]);
      t.ok(lint.ok, `sidecar-host/${f}: helm lint --strict passes${lint.ok ? '' : `:\n${lint.stdout}${lint.stderr}`}`);
    }
    const r = render(t, `sidecar-host/${f} @${kube}`, copy.hostDir, { values: [join(copy.hostDir, 'ci', f)], kubeVersion: kube });
    gatewayConfig(t, r, 'rel-cancel-gateway');
  }
});

t.test('standalone (nhs-booking): Deployment, Service, ConfigMap, ServiceAccount, PDB by default; no ServiceMonitor or NetworkPolicy', async (t) => {
  const r = render(t, 'standalone', chartDir, { values: [join(ciDir, 'standalone-values.yaml')], kubeVersion: MIN_KUBE });
  t.same(kinds(r), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  const { config, checksum } = gatewayConfig(t, r, 'rel-cancel-gateway');
  t.equal(config.standard, 'nhs-booking');
  t.equal(config.upstream.url, 'http://legacy-provider.provider.svc.cluster.local:8080/STU3/1', 'upstream.url points at the provider Service');
  t.same(config.spine.providerAsids, ['918999198738'], 'ASIDs stay strings');
  t.equal(config.basePath, '/STU3/1');
  t.equal(config.tls.watch, true, 'Secret folders are watched for reloads');
  const dep = only(t, r, 'Deployment', 'rel-cancel-gateway');
  const svc = only(t, r, 'Service', 'rel-cancel-gateway');
  t.equal(dep.spec.replicas, 2);
  t.same(dep.spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 }, 'rolling update never drops below the replica count');
  t.equal(dep.spec.template.spec.serviceAccountName, 'rel-cancel-gateway');
  t.equal(dep.spec.template.spec.terminationGracePeriodSeconds, 55, 'drain 30 s + the in-doubt hold 10 s (timeoutMs) + 15 s');
  t.equal(dep.spec.template.spec.containers.length, 1, 'only the gateway container');
  t.equal(dep.spec.template.spec.initContainers, undefined);
  t.equal(dep.spec.template.spec.containers[0].image, 'registry.example.com/cancel-gateway:0.1.0');
  checkDeploymentBasics(t, r.label, dep, svc, config, checksum);
  checkGatewayPod(t, r.label, dep.spec.template.spec, {
    config, configMapName: 'rel-cancel-gateway', native: false, secretMode: 0o440,
    files: {
      'tls.cert': ['secret', 'cancel-gateway-server-tls', 'tls.crt'],
      'tls.key': ['secret', 'cancel-gateway-server-tls', 'tls.key'],
      'tls.clientCa': ['secret', 'spine-client-ca', 'ca.crt'],
    },
  });
  const pdb = only(t, r, 'PodDisruptionBudget', 'rel-cancel-gateway');
  t.same(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels, 'the PDB covers the gateway pods');
  t.equal(pdb.spec.maxUnavailable, 1, 'maxUnavailable 1 by default');
  t.equal(pdb.spec.minAvailable, undefined);
  const sa = only(t, r, 'ServiceAccount');
  t.equal(sa.automountServiceAccountToken, false);
});

t.test('standalone gp-connect: CRL, https provider with CA and client certificate, JWKS file, digest, custom ports', async (t) => {
  const r = render(t, 'gp-connect', chartDir, { values: [join(ciDir, 'standalone-gp-connect-values.yaml')], kubeVersion: MIN_KUBE });
  t.same(kinds(r), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  const { config, checksum } = gatewayConfig(t, r, 'gpc-gateway');
  t.equal(config.standard, 'gp-connect');
  t.equal(config.jwt.mode, 'signed');
  t.equal(config.interactions.amend, true);
  t.equal(config.report.profile, 'report');
  t.equal(config.limits.maxBodyBytes, 262144, 'numbers stay numbers');
  t.same(config.tls.allowedClients, { subjects: ['spine-consumer.example.nhs.uk'], sans: [] });
  t.same(config.spine.providerAsids, ['200000000359', '200000000360']);
  const dep = only(t, r, 'Deployment', 'gpc-gateway');
  const svc = only(t, r, 'Service', 'gpc-gateway');
  t.equal(dep.spec.replicas, 3);
  t.equal(dep.spec.template.spec.containers[0].image, 'registry.example.com/cancel-gateway@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'a digest pins the image');
  t.equal(dep.spec.template.spec.terminationGracePeriodSeconds, 40, 'drain 20 s + the in-doubt hold 5 s (timeoutMs) + 15 s');
  const held = render(t, 'a longer in-doubt hold', chartDir, { values: [join(ciDir, 'standalone-gp-connect-values.yaml')], set: ['config.upstream.inDoubtHoldMs=60000'] });
  t.equal(only(t, held, 'Deployment', 'gpc-gateway').spec.template.spec.terminationGracePeriodSeconds, 95, 'drain 20 s + inDoubtHoldMs 60 s + 15 s: the process waits the hold out before exiting');
  const short = template(chartDir, { values: [join(ciDir, 'standalone-gp-connect-values.yaml')], set: ['terminationGracePeriodSeconds=5'] });
  t.notOk(short.ok, 'a grace period shorter than the drain plus the hold is refused');
  t.match(short.stderr, /terminationGracePeriodSeconds \(5\) must be at least config.shutdown.drainTimeoutMs \+ config.upstream.inDoubtHoldMs \(25 s\)/);
  const justShort = template(chartDir, { values: [join(ciDir, 'standalone-gp-connect-values.yaml')], set: ['terminationGracePeriodSeconds=24'] });
  t.notOk(justShort.ok, 'one second short of drain + hold: refused');
  t.ok(template(chartDir, { values: [join(ciDir, 'standalone-gp-connect-values.yaml')], set: ['terminationGracePeriodSeconds=25'] }).ok, 'drain + hold: accepted');
  t.equal(dep.spec.template.spec.topologySpreadConstraints?.[0]?.topologyKey, 'topology.kubernetes.io/zone');
  checkDeploymentBasics(t, r.label, dep, svc, config, checksum);
  checkGatewayPod(t, r.label, dep.spec.template.spec, {
    config, configMapName: 'gpc-gateway', native: false, secretMode: 0o440,
    files: {
      'tls.cert': ['secret', 'gpc-gateway-tls', 'tls.crt'],
      'tls.key': ['secret', 'gpc-gateway-tls', 'tls.key'],
      'tls.clientCa': ['secret', 'gpc-client-ca', 'bundle.pem'],
      'tls.crl': ['secret', 'gpc-crl', 'crl.pem'],
      'upstream.ca': ['secret', 'gpc-provider-ca', 'ca.crt'],
      'upstream.cert': ['secret', 'gpc-provider-client', 'tls.crt'],
      'upstream.key': ['secret', 'gpc-provider-client', 'tls.key'],
      'jwt.jwksFile': ['configMap', 'gpc-jwks', 'jwks.json'],
    },
  });
  const ports = Object.fromEntries(dep.spec.template.spec.containers[0].ports.map((p: Manifest) => [p.name, p.containerPort]));
  t.same(ports, { 'gateway-tls': 9443, 'gateway-admin': 9091 });
  const pdb = only(t, r, 'PodDisruptionBudget');
  t.equal(pdb.spec.minAvailable, 2);
  t.equal(pdb.spec.maxUnavailable, undefined, 'minAvailable replaces maxUnavailable');
  const alone = render(t, 'pdb minAvailable alone', chartDir, { values: [join(ciDir, 'standalone-values.yaml')], set: ['podDisruptionBudget.minAvailable=1'] });
  t.equal(only(t, alone, 'PodDisruptionBudget').spec.minAvailable, 1, 'minAvailable set alone is enough');
});

t.test('opt-in NetworkPolicy and ServiceMonitor; PDB switched off', async (t) => {
  const r = render(t, 'netpol+monitor', chartDir, { values: [join(ciDir, 'networkpolicy-servicemonitor-values.yaml')], kubeVersion: MIN_KUBE });
  t.same(kinds(r), ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service', 'ServiceAccount', 'ServiceMonitor']);
  const dep = only(t, r, 'Deployment');
  const svc = only(t, r, 'Service');
  const podLabels = dep.spec.template.metadata.labels;

  const sm = only(t, r, 'ServiceMonitor', 'rel-cancel-gateway');
  t.match(svc.metadata.labels, sm.spec.selector.matchLabels, 'the ServiceMonitor selects the Service');
  t.same(sm.spec.namespaceSelector, { matchNames: ['gw'] });
  t.equal(sm.metadata.labels.release, 'kube-prometheus-stack', 'labels for the Prometheus selector');
  t.equal(sm.spec.endpoints.length, 1);
  t.equal(sm.spec.endpoints[0].port, 'admin');
  t.ok(svc.spec.ports.some((p: Manifest) => p.name === sm.spec.endpoints[0].port), 'the scraped port exists on the Service');
  t.equal(sm.spec.endpoints[0].path, '/metrics');

  const np = only(t, r, 'NetworkPolicy', 'rel-cancel-gateway');
  t.match(podLabels, np.spec.podSelector.matchLabels, 'the policy selects the gateway pods');
  t.same(np.spec.policyTypes, ['Ingress', 'Egress']);
  t.same(np.spec.ingress, [
    { ports: [{ port: 8443, protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.20.0.0/16' } }] },
    { ports: [{ port: 9090, protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
  ], 'ingress: the TLS port from the consumers, the admin port from the monitoring namespace, nothing else');
  t.same(np.spec.egress, [
    {
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'provider' } }, podSelector: { matchLabels: { app: 'legacy-provider' } } }],
      ports: [{ port: 8080, protocol: 'TCP' }],
    },
    {
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }],
    },
  ], 'egress: the provider (port from upstream.url) and DNS, nothing else');

  const https = render(t, 'netpol https provider', chartDir, {
    values: [join(ciDir, 'networkpolicy-servicemonitor-values.yaml')],
    set: ['config.upstream.url=https://provider.example', 'networkPolicy.provider.namespaceSelector=null', 'networkPolicy.provider.podSelector=null', 'networkPolicy.provider.ipBlock.cidr=10.9.8.0/24'],
  });
  t.same(only(t, https, 'NetworkPolicy').spec.egress[0], { to: [{ ipBlock: { cidr: '10.9.8.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] }, 'https without a port: 443; an ipBlock peer');

  const noProvider = template(chartDir, { values: [join(ciDir, 'networkpolicy-servicemonitor-values.yaml')], set: ['networkPolicy.provider.namespaceSelector=null', 'networkPolicy.provider.podSelector=null'] });
  t.notOk(noProvider.ok, 'a NetworkPolicy without a provider peer is refused');
  t.match(noProvider.stderr, /networkPolicy\.provider: give podSelector, namespaceSelector or ipBlock/);
});

t.test('sidecar mode: the vendor chart includes the container and volumes (ordinary container)', async (t) => {
  const r = render(t, 'sidecar-host', copy.hostDir, { values: [join(copy.hostDir, 'ci', 'sidecar-values.yaml')], kubeVersion: MIN_KUBE });
  t.same(kinds(r), ['ConfigMap', 'Deployment', 'Service'], 'no gateway Deployment, PDB or ServiceAccount: the vendor owns the pod');
  const { config, checksum } = gatewayConfig(t, r, 'rel-cancel-gateway');
  t.equal(config.upstream.url, 'http://127.0.0.1:8080/STU3/1', 'the provider in the same pod');
  const dep = only(t, r, 'Deployment', 'rel-vendor-provider');
  const pod = dep.spec.template;
  t.equal(pod.metadata.annotations['checksum/cancel-gateway-config'], checksum, 'the vendor pod rolls when the gateway configuration changes');
  t.equal(pod.spec.containers[0].name, 'provider', "the vendor's container is kept");
  t.equal(dep.spec.strategy?.type, 'Recreate', 'one pod at a time: each gateway holds its own lock (sqlite)');
  const drain = (config.shutdown?.drainTimeoutMs ?? 30000) / 1000;
  const hold = Math.ceil((config.upstream?.inDoubtHoldMs ?? config.upstream?.timeoutMs ?? 10000) / 1000);
  t.equal(pod.spec.terminationGracePeriodSeconds, drain + hold + 15, 'the vendor pod takes its grace period from cancel-gateway.sidecar.terminationGracePeriodSeconds');
  t.equal(pod.spec.initContainers, undefined, 'no init containers');
  t.ok(pod.spec.volumes.some((v: Manifest) => v.name === 'provider-data'), "the vendor's volumes are kept");
  checkGatewayPod(t, r.label, pod.spec, {
    config, configMapName: 'rel-cancel-gateway', native: false, secretMode: 0o444,
    files: {
      'tls.cert': ['secret', 'vendor-gateway-tls', 'tls.crt'],
      'tls.key': ['secret', 'vendor-gateway-tls', 'tls.key'],
      'tls.clientCa': ['secret', 'spine-client-ca', 'ca.crt'],
    },
  });
  const svc = only(t, r, 'Service', 'rel-cancel-gateway');
  t.same(svc.spec.selector, { 'app.kubernetes.io/name': 'vendor-provider' }, "sidecar mode: the Service selects the vendor's pods");
  t.match(pod.metadata.labels, svc.spec.selector);
  t.equal(svc.spec.ports.find((p: Manifest) => p.name === 'https')?.targetPort, 'gateway-tls', 'consumers reach the gateway port, not the provider');
});

t.test('sidecar mode: native sidecar (init container, restartPolicy Always), Kubernetes >= 1.29 only', async (t) => {
  const values = [join(copy.hostDir, 'ci', 'native-sidecar-values.yaml')];
  const r = render(t, 'native sidecar', copy.hostDir, { values, kubeVersion: NATIVE_KUBE });
  t.same(kinds(r), ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service', 'ServiceMonitor']);
  const { config, checksum } = gatewayConfig(t, r, 'rel-cancel-gateway');
  t.equal(config.standard, 'gp-connect');
  const dep = only(t, r, 'Deployment', 'rel-vendor-provider');
  const pod = dep.spec.template;
  t.equal(pod.metadata.annotations['checksum/cancel-gateway-config'], checksum);
  t.same(pod.spec.containers.map((c: Manifest) => c.name), ['provider'], 'the gateway is not among the containers');
  t.same(pod.spec.initContainers.map((c: Manifest) => c.name), ['cancel-gateway']);
  t.equal(pod.spec.initContainers[0].startupProbe.httpGet.path, '/healthz', 'startup waits for /healthz, not /readyz (the provider starts after the sidecar)');
  checkGatewayPod(t, r.label, pod.spec, {
    config, configMapName: 'rel-cancel-gateway', native: true, secretMode: 0o444,
    files: {
      'tls.cert': ['secret', 'vendor-gateway-tls', 'tls.crt'],
      'tls.key': ['secret', 'vendor-gateway-tls', 'tls.key'],
      'tls.clientCa': ['secret', 'spine-client-ca', 'ca.crt'],
      'tls.crl': ['secret', 'spine-crl', 'crl.pem'],
    },
  });
  const np = only(t, r, 'NetworkPolicy');
  t.same(np.spec.podSelector, { matchLabels: { 'app.kubernetes.io/name': 'vendor-provider' } }, "selects the vendor's pods");
  t.same(np.spec.policyTypes, ['Ingress'], "sidecar mode restricts ingress only: the provider's egress is the vendor's");
  t.same(np.spec.ingress.map((i: Manifest) => i.ports), [[{ port: 7443, protocol: 'TCP' }], [{ port: 7090, protocol: 'TCP' }]], 'only the gateway TLS and admin ports');
  t.equal(np.spec.egress, undefined);

  const old = template(copy.hostDir, { values, kubeVersion: '1.28.9' });
  t.notOk(old.ok, 'native sidecar refused below Kubernetes 1.29');
  t.match(old.stderr, /sidecar\.native needs Kubernetes >= 1\.29/);
});

t.test('the chart itself in sidecar mode renders no workload', async (t) => {
  const r = render(t, 'sidecar mode, no podSelector', chartDir, { values: [join(ciDir, 'standalone-values.yaml')], set: ['mode=sidecar'] });
  t.same(kinds(r), ['ConfigMap'], 'only the configuration (no Deployment, Service, PDB, ServiceAccount)');
  const sm = template(chartDir, { values: [join(ciDir, 'standalone-values.yaml')], set: ['mode=sidecar', 'serviceMonitor.enabled=true'] });
  t.notOk(sm.ok);
  t.match(sm.stderr, /serviceMonitor in sidecar mode needs sidecar\.podSelector/);
  const host = template(copy.hostDir, { values: [join(copy.hostDir, 'ci', 'sidecar-values.yaml')], set: ['cancel-gateway.mode=standalone', 'cancel-gateway.store.postgres.urlSecret.name=db'] });
  t.notOk(host.ok, 'the sidecar templates refuse a standalone configuration');
  t.match(host.stderr, /need cancel-gateway\.mode: sidecar/);
});

t.test('the admin listener stays reachable by the kubelet when config.admin is removed', async (t) => {
  const r = render(t, 'no config.admin', chartDir, { values: [join(ciDir, 'standalone-values.yaml')], set: ['config.admin=null'] });
  const { config } = gatewayConfig(t, r, 'rel-cancel-gateway');
  t.equal(config.admin.host, '0.0.0.0', "not the gateway's own default 127.0.0.1");
  const c = only(t, r, 'Deployment').spec.template.spec.containers[0];
  t.equal(c.ports.find((p: Manifest) => p.name === 'gateway-admin')?.containerPort, config.admin.port, 'the probed port is the configured one');
});

t.test('the checksum follows the configuration and nothing else', async (t) => {
  const base = [join(ciDir, 'standalone-values.yaml')];
  const sum = (set: string[]) => {
    const r = render(t, `checksum ${set.join(' ')}`, chartDir, { values: base, set });
    return only(t, r, 'Deployment').spec.template.metadata.annotations['checksum/config'] as string;
  };
  const a = sum([]);
  t.match(a, /^[0-9a-f]{64}$/);
  t.equal(sum(['replicaCount=5']), a, 'unchanged by a non-configuration value');
  t.not(sum(['config.log.level=debug']), a, 'changed by a configuration value');
  t.not(sum(['tls.crl.secretName=crl']), a, 'changed by a new CRL path');
});

t.test('refused values: schema and required checks name the problem', async (t) => {
  const bare = template(chartDir, {});
  t.notOk(bare.ok, 'the defaults alone do not render: the required values are missing');
  for (const re of [/publicBaseUrl is required/, /providerAsids is required/, /url is required/, /tls\.server\.secretName/, /tls\.clientCa\.secretName/]) t.match(bare.stderr, re);
  const base = [join(ciDir, 'standalone-values.yaml')];
  const cases: Array<[string[], RegExp, string]> = [
    [['config.tls.cert=/x.pem'], /config\.tls: Additional property cert is not allowed/, 'file paths belong to the chart'],
    [['config.spine.providerAsids[0]=918999198738'], /providerAsids\.0: Invalid type\. Expected: string/, 'an unquoted ASID'],
    [['config.standard=nhs-bookings'], /config\.standard/, 'an unknown standard'],
    [['config.listen.port=0'], /config\.listen\.port/, 'port 0 means nothing in a pod'],
    [['mode=daemon'], /mode/, 'an unknown mode'],
    [['replicas=3'], /Additional property replicas is not allowed/, 'a misspelt top-level key'],
    [['config.upstream.url=ftp://x'], /config\.upstream\.url/, 'a non-http upstream'],
    [['podDisruptionBudget.minAvailable=1', 'podDisruptionBudget.maxUnavailable=1'], /either minAvailable or maxUnavailable/, 'both PDB bounds'],
    // review of stop 34: values that rendered pods which could not start
    [['tmpVolume.enabled=false', 'config.audit.destination=/tmp/audit.jsonl'], /\/tmp is writable only with tmpVolume\.enabled/, 'an audit file in /tmp without the /tmp volume'],
    [['auditVolume.mountPath=/tmp', 'config.audit.destination=/tmp/audit.jsonl'], /auditVolume\.mountPath \/tmp: another volume is mounted there/, 'the audit volume on /tmp'],
    [['store.kind=sqlite', 'replicaCount=1', 'auditVolume.mountPath=/var/lib/cancel-gateway', 'config.audit.destination=/var/lib/cancel-gateway/audit.jsonl'], /another volume is mounted there/, 'the audit volume on the sqlite folder'],
    [['extraEnv[0].name=GATEWAY_ADMIN_PORT', 'extraEnv[0].value=9999'], /extraEnv GATEWAY_ADMIN_PORT: the chart derives the ports/, 'a port moved past the probes'],
    [['extraEnv[0].name=GATEWAY_UPSTREAM_URL', 'extraEnv[0].value=https://other.example:9443/STU3/1'], /extraEnv GATEWAY_UPSTREAM_URL: the chart derives/, 'a provider the network policy does not know'],
    // review of stop 35
    [['extraEnv[0].name=GATEWAY_UPSTREAM_TIMEOUT_MS', 'extraEnv[0].value=120000'], /extraEnv GATEWAY_UPSTREAM_TIMEOUT_MS: the chart derives/, 'a hold longer than the grace period'],
    [['config.audit.destination=/var/log/cancel-gateway/gw/audit.jsonl'], /must sit directly in auditVolume\.mountPath/, 'a folder the empty volume does not have'],
    [['tmpVolume.enabled=true', 'config.audit.destination=/tmp/gw/audit.jsonl'], /a file in \/tmp must sit directly in it/, 'a folder /tmp does not have'],
    ...['/app', '/app/dist', '/usr/local', '/etc/ssl', '/var'].map((dir): [string[], RegExp, string] => [[`auditVolume.mountPath=${dir}`, `config.audit.destination=${dir}/audit.jsonl`], /: a system folder of the image/, `an emptyDir over the image's own files (${dir})`]),
    ...['LOCALHOST', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:0:0:1', '[::1]', '127.0.0.2'].map((host): [string[], RegExp, string] => [[`config.admin.host=${host}`], /a loopback admin listener fails every probe/, `loopback admin host ${host}`]),
  ];
  for (const [set, re, why] of cases) {
    const r = template(chartDir, { values: base, set });
    t.notOk(r.ok, `refused: ${why}`);
    t.match(r.stderr, re, `message: ${why}`);
  }
  t.ok(template(chartDir, { values: base, set: ['auditVolume.mountPath=/var/log/gw', 'config.audit.destination=/var/log/gw/audit.jsonl'] }).ok, 'a folder of its own under /var/log renders');
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'fe80::1', '::ffff:a00:1']) t.ok(template(chartDir, { values: base, set: [`config.admin.host=${host}`] }).ok, `admin host ${host} renders`);
  // 0 is a setting, not "unset" (review of stop 35): no hold, no drain.
  t.ok(template(chartDir, { values: base, set: ['config.upstream.inDoubtHoldMs=0', 'terminationGracePeriodSeconds=30'] }).ok, 'no hold: the drain alone (30 s) is enough');
  t.ok(template(chartDir, { values: base, set: ['config.shutdown.drainTimeoutMs=0', 'terminationGracePeriodSeconds=10'] }).ok, 'no drain: the hold alone (10 s) is enough');
  const pdb0 = template(chartDir, { values: base, set: ['podDisruptionBudget.maxUnavailable=0'] });
  t.match(pdb0.stdout, /maxUnavailable: 0\n/, 'a PDB of maxUnavailable 0 stays 0 (no voluntary evictions)');
  const onTmp = template(chartDir, { values: base, set: ['tmpVolume.enabled=false', 'auditVolume.mountPath=/tmp', 'config.audit.destination=/tmp/audit.jsonl'] });
  t.ok(onTmp.ok, `the audit volume on /tmp when the /tmp volume is off: one volume there, renders${onTmp.ok ? '' : `: ${onTmp.stderr}`}`);
  const old = template(chartDir, { values: base, kubeVersion: '1.24.17' });
  t.notOk(old.ok, 'Kubernetes below 1.25 refused');
  t.match(old.stderr, /kubeVersion/);
});

t.test('NOTES.txt renders for every mode', async (t) => {
  // helm template does not print NOTES; render the same text through tpl in a copy of the chart.
  cpSync(join(copy.dir, 'templates', 'NOTES.txt'), join(copy.dir, 'notes-under-test.txt'));
  writeFileSync(join(copy.dir, 'templates', 'zz-notes-under-test.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | toJson }}\n');
  const notes = (values: string, set: string[] = []) => {
    const r = template(copy.dir, { values: [join(copy.dir, 'ci', values)], set, showOnly: 'templates/zz-notes-under-test.yaml' });
    t.ok(r.ok, `NOTES render (${values} ${set.join(' ')}): ${r.stderr}`);
    return String(parseManifests(r.stdout)[0]?.data?.notes ?? '');
  };
  const standalone = notes('standalone-values.yaml');
  t.match(standalone, 'https://rel-cancel-gateway.gw.svc:443/STU3/1');
  t.match(standalone, 'rollout status deployment/rel-cancel-gateway');
  const sidecar = notes('standalone-values.yaml', ['mode=sidecar', 'sidecar.native=true']);
  t.match(sidecar, 'spec.initContainers: {{- include "cancel-gateway.sidecar.container" . | nindent 8 }}');
  t.match(sidecar, 'include "cancel-gateway.sidecar.volumes"');
  t.notMatch(sidecar, 'rollout status');
  const monitored = notes('networkpolicy-servicemonitor-values.yaml');
  t.match(monitored, 'ServiceMonitor rel-cancel-gateway');
  t.match(monitored, 'egress only to the provider and DNS');
});

/** A copy of the test vendor chart whose dependency (or dependencies) on this chart carry aliases. */
function aliasedHost(name: string, aliases: string[]): string {
  const dir = join(copy.dir, 'ci', name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(copy.hostDir, dir, { recursive: true, filter: (src) => !src.startsWith(join(copy.hostDir, 'charts')) && !src.endsWith('Chart.lock') });
  const chartYaml = readFileSync(join(dir, 'Chart.yaml'), 'utf8');
  const dep = /dependencies:\n([\s\S]*)$/.exec(chartYaml)![1]!;
  writeFileSync(join(dir, 'Chart.yaml'), chartYaml.replace(dep, aliases.map((a) => `${dep.trimEnd()}\n    alias: ${a}\n`).join('')));
  for (const f of ['values.yaml', join('ci', 'sidecar-values.yaml'), join('ci', 'native-sidecar-values.yaml')]) {
    const v = parseYaml(readFileSync(join(dir, f), 'utf8'));
    for (const a of aliases) v[a] = structuredClone(v['cancel-gateway']);
    delete v['cancel-gateway'];
    writeFileSync(join(dir, f), toYaml(v));
  }
  const built = helm(['dependency', 'build', dir]);
  if (!built.ok) throw new Error(`helm dependency build (${name}) failed:\n${built.stderr}`);
  return dir;
}

t.test('sidecar templates under an alias: the same pod, the same checksum; several aliases must be named', async (t) => {
  const dir = aliasedHost('sidecar-host-alias', ['gw']);
  const values = [join(dir, 'ci', 'native-sidecar-values.yaml')];
  const lint = helm(['lint', dir, '--strict', '--values', join(dir, 'ci', 'sidecar-values.yaml')]);
  t.ok(lint.ok, `helm lint --strict on the aliased chart${lint.ok ? '' : `:\n${lint.stdout}${lint.stderr}`}`);
  const r = render(t, 'aliased sidecar', dir, { values, kubeVersion: NATIVE_KUBE });
  const { checksum } = gatewayConfig(t, r, 'rel-cancel-gateway');
  const pod = only(t, r, 'Deployment', 'rel-vendor-provider').spec.template;
  t.same(pod.spec.initContainers.map((c: Manifest) => c.name), ['cancel-gateway'], 'native sidecar read from .Values.gw');
  t.equal(pod.metadata.annotations['checksum/cancel-gateway-config'], checksum, 'the annotation sums the aliased values');
  t.ok(pod.spec.volumes.some((v: Manifest) => v.name === 'cancel-gateway-crl'), 'volumes from the aliased values (the CRL Secret)');
  const standalone = template(dir, { values: [join(dir, 'ci', 'sidecar-values.yaml')], kubeVersion: NATIVE_KUBE, set: ['gw.mode=standalone', 'gw.store.kind=memory', 'gw.replicaCount=1'] });
  t.notOk(standalone.ok);
  t.match(standalone.stderr, /the cancel-gateway sidecar templates need gw\.mode: sidecar/, 'the message names the alias');

  const two = aliasedHost('sidecar-host-two', ['gw', 'gw2']);
  const r2 = template(two, { values: [join(two, 'ci', 'sidecar-values.yaml')], kubeVersion: NATIVE_KUBE });
  t.notOk(r2.ok, 'two dependencies on the chart: the templates cannot guess');
  t.match(r2.stderr, /several cancel-gateway dependencies \(gw, gw2\); name one, e\.g\. include "cancel-gateway\.sidecar\.container" \(dict "top" \. "alias" "gw"\)/);
  writeFileSync(join(two, 'templates', 'deployment.yaml'), readFileSync(join(two, 'templates', 'deployment.yaml'), 'utf8')
    .replaceAll('include "cancel-gateway.sidecar.container" .', 'include "cancel-gateway.sidecar.container" (dict "top" . "alias" "gw")')
    .replaceAll('include "cancel-gateway.sidecar.volumes" .', 'include "cancel-gateway.sidecar.volumes" (dict "top" . "alias" "gw")')
    .replaceAll('include "cancel-gateway.sidecar.annotations" .', 'include "cancel-gateway.sidecar.annotations" (dict "top" . "alias" "gw")')
    .replaceAll('include "cancel-gateway.sidecar.native" .', 'include "cancel-gateway.sidecar.native" (dict "top" . "alias" "gw")')
    .replaceAll('include "cancel-gateway.sidecar.terminationGracePeriodSeconds" .', 'include "cancel-gateway.sidecar.terminationGracePeriodSeconds" (dict "top" . "alias" "gw")'));
  const named = template(two, { values: [join(two, 'ci', 'sidecar-values.yaml')], kubeVersion: NATIVE_KUBE });
  t.ok(named.ok, `named alias renders: ${named.stderr}`);
  const containers = parseManifests(named.stdout).find((d) => d.kind === 'Deployment' && d.metadata.name === 'rel-vendor-provider')?.spec.template.spec.containers ?? [];
  t.same(containers.map((c: Manifest) => c.name), ['provider', 'cancel-gateway']);
});

t.test('signed JWT mode without a key set is refused at render; with one it renders', async (t) => {
  const base = [join(ciDir, 'standalone-values.yaml')];
  const bare = template(chartDir, { values: base, set: ['config.jwt.mode=signed'] });
  t.notOk(bare.ok, 'no jwks.configMap, no config.jwt.jwksUrl: refused');
  t.match(bare.stderr, /jwks\.configMap/, 'the message names the missing key set');
  for (const set of [['jwks.configMap=provider-jwks'], ['config.jwt.jwksUrl=https://keys.example.nhs.uk/jwks.json']]) {
    const r = render(t, `signed ${set[0]}`, chartDir, { values: base, set: ['config.jwt.mode=signed', 'config.jwt.issuer=https://spine.example.nhs.uk', 'config.jwt.audience=https://provider.example.nhs.uk', ...set] });
    const { config } = gatewayConfig(t, r, 'rel-cancel-gateway');
    t.equal(config.jwt.mode, 'signed');
    t.ok(config.jwt.jwksFile || config.jwt.jwksUrl, `${set[0]}: the gateway gets its key set`);
  }
  // What the gateway would refuse at start-up (crash-looping the pod) is refused at render.
  const unpinned = template(chartDir, { values: base, set: ['config.jwt.mode=signed', 'config.jwt.jwksUrl=https://keys.example.nhs.uk/jwks.json'] });
  t.notOk(unpinned.ok, 'signed mode without issuer and audience: refused');
  t.match(unpinned.stderr, /issuer|audience/);
  // A key set server on a private CA: jwks.caConfigMap is mounted and named as config.jwt.jwksCa.
  const signed = ['config.jwt.mode=signed', 'config.jwt.issuer=https://spine.example.nhs.uk', 'config.jwt.audience=https://provider.example.nhs.uk'];
  const withCa = render(t, 'signed jwksUrl with jwks.caConfigMap', chartDir, { values: base, set: [...signed, 'config.jwt.jwksUrl=https://keys.example.nhs.uk/jwks.json', 'jwks.caConfigMap=idp-ca'] });
  t.equal(gatewayConfig(t, withCa, 'rel-cancel-gateway').config.jwt.jwksCa, '/etc/cancel-gateway/jwks-ca/ca.crt', 'config.jwt.jwksCa set by the chart');
  const spec = only(t, withCa, 'Deployment', 'rel-cancel-gateway').spec.template.spec;
  const container = spec.containers.find((c: { name: string }) => c.name === 'cancel-gateway');
  t.same(spec.volumes.find((v: { name: string }) => v.name === 'cancel-gateway-jwks-ca')?.configMap, { name: 'idp-ca' }, 'the CA ConfigMap as a volume');
  t.equal(container.volumeMounts.find((m: { name: string }) => m.name === 'cancel-gateway-jwks-ca')?.mountPath, '/etc/cancel-gateway/jwks-ca');
  const noUrl = template(chartDir, { values: base, set: [...signed, 'jwks.configMap=provider-jwks', 'jwks.caConfigMap=idp-ca'] });
  t.notOk(noUrl.ok, 'a CA for no key set server: refused');
  t.match(noUrl.stderr, /jwks\.caConfigMap .*config\.jwt\.jwksUrl/);
});

t.test('opt-in monitoring: a Grafana dashboard ConfigMap and a PrometheusRule', async (t) => {
  const base = [join(ciDir, 'standalone-values.yaml')];
  const off = render(t, 'monitoring off', chartDir, { values: base });
  t.notOk(kinds(off).includes('PrometheusRule'), 'no PrometheusRule by default');
  t.equal(off.docs.filter((d) => d.kind === 'ConfigMap').length, 1, 'no dashboard ConfigMap by default');
  const on = render(t, 'monitoring on', chartDir, { values: base, set: ['monitoring.dashboard.enabled=true', 'monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.labels.release=kps'] });
  const cm = only(t, on, 'ConfigMap', 'rel-cancel-gateway-dashboard');
  t.equal(cm.metadata.labels.grafana_dashboard, '1', "Grafana's sidecar label");
  const dashboard = JSON.parse(cm.data['cancel-gateway.json']);
  t.equal(dashboard.uid, 'cancel-gateway');
  t.same(dashboard, JSON.parse(readFileSync(join(chartDir, 'dashboards', 'cancel-gateway.json'), 'utf8')), 'the shipped JSON, unchanged');
  const rule = only(t, on, 'PrometheusRule', 'rel-cancel-gateway');
  t.equal(rule.metadata.labels.release, 'kps');
  const alerts = rule.spec.groups.flatMap((g: Manifest) => g.rules.map((r: Manifest) => r.alert));
  for (const a of ['CancelGatewayCertificateExpiresSoon', 'CancelGatewayCrlNextUpdateSoon', 'CancelGatewayCrlExpired', 'CancelGatewayRefusalSpike', 'CancelGatewayProviderErrors', 'CancelGatewayStoreErrors', 'CancelGatewayEventLoopLag']) {
    t.ok(alerts.includes(a), `alert ${a}`);
  }
  for (const g of rule.spec.groups) for (const r of g.rules) t.match(r.expr, 'namespace="gw"', `${r.alert}: scoped to the release namespace`);
  const bad = template(chartDir, { values: base, set: ['monitoring.prometheusRule.refusalRatePerSecond=0'] });
  t.notOk(bad.ok, 'a zero threshold is refused by the schema');
  const sidecar = render(t, 'monitoring in sidecar mode', chartDir, { values: base, set: ['mode=sidecar', 'monitoring.prometheusRule.enabled=true'] });
  t.ok(kinds(sidecar).includes('PrometheusRule'), 'rules need no pod selector: sidecar mode has them too');
});

t.test('every link in values.yaml and NOTES.txt resolves inside the repository', async (t) => {
  const texts = { 'values.yaml': readFileSync(join(chartDir, 'values.yaml'), 'utf8'), 'NOTES.txt': readFileSync(join(chartDir, 'templates', 'NOTES.txt'), 'utf8') };
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  let n = 0;
  for (const [name, text] of Object.entries(texts)) {
    for (const m of text.matchAll(/(?<![\w/.-])((?:docs|config|charts)\/[\w./-]+\.(?:md|json|yaml))/g)) {
      n++;
      t.ok(existsSync(join(packageRoot, m[1]!)), `${name}: ${m[1]} exists`);
    }
    for (const m of text.matchAll(/README "([^"]+)"/g)) {
      n++;
      t.match(readme, new RegExp(`^#+ ${m[1]}$`, 'm'), `${name}: README section "${m[1]}" exists`);
    }
    t.notMatch(text, /https?:\/\/(?!127\.0\.0\.1|provider\.|\{\{|[\w.-]*example|\.\.\.)/, `${name}: no external links (examples only)`);
  }
  t.ok(n >= 3, `links found: ${n}`);
});

t.test('chart metadata and values schema', async (t) => {
  const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));
  t.equal(chart.apiVersion, 'v2');
  t.equal(chart.appVersion, '0.1.0');
  t.equal(chart.kubeVersion, '>=1.25.0-0');
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));
  t.equal(chart.appVersion, pkg.version, 'appVersion is the package version');
  const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
  t.equal(values.image.tag, chart.appVersion, 'values image.tag = appVersion (the sidecar templates cannot read .Chart)');
  t.equal(values.mode, 'standalone');
  t.equal(values.podDisruptionBudget.enabled, true, 'PDB on by default');
  t.equal(values.serviceMonitor.enabled, false, 'ServiceMonitor opt-in');
  t.equal(values.networkPolicy.enabled, false, 'NetworkPolicy opt-in');
  t.equal(values.monitoring.dashboard.enabled, false, 'Grafana dashboard opt-in');
  t.equal(values.monitoring.prometheusRule.enabled, false, 'PrometheusRule opt-in');
  const host = parseYaml(readFileSync(join(ciDir, 'sidecar-host', 'Chart.yaml'), 'utf8'));
  t.same(host.dependencies, [{ name: 'cancel-gateway', version: chart.version, repository: 'file://../..' }], 'the test vendor chart depends on this chart');

  // values.schema.json's config section is the gateway's own schema minus the file paths the chart
  // sets (so a key added to config/config.schema.json must be added here too).
  const gw = JSON.parse(readFileSync(join(packageRoot, 'config', 'config.schema.json'), 'utf8'));
  const vs = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8'));
  const chartOwned = new Set(['tls.cert', 'tls.key', 'tls.clientCa', 'tls.crl', 'upstream.ca', 'upstream.cert', 'upstream.key', 'jwt.jwksFile', 'jwt.jwksCa',
    'store.kind', 'store.path', 'store.url', 'store.encryptionKeyFile', 'store.decryptionKeyFiles']);
  const cfg = vs.properties.config;
  for (const [top, s] of Object.entries<Manifest>(gw.properties)) {
    const mine = cfg.properties[top];
    t.ok(mine, `values.schema.json has config.${top}`);
    if (!s.properties) {
      t.same(mine, s, `config.${top}: same schema as the gateway's`);
      continue;
    }
    for (const [k, sub] of Object.entries<Manifest>(s.properties)) {
      const path = `${top}.${k}`;
      if (chartOwned.has(path)) {
        t.notOk(mine?.properties?.[k], `config.${path} is set by the chart, not by values`);
        continue;
      }
      const want = (path === 'listen.port' || path === 'admin.port') ? { ...sub, minimum: 1, description: mine?.properties?.[k]?.description } : sub;
      t.same(mine?.properties?.[k], want, `config.${path}: same schema as the gateway's`);
    }
    t.equal(mine?.additionalProperties, s.additionalProperties, `config.${top}: same additionalProperties`);
  }
  t.same(Object.keys(cfg.properties).sort(), Object.keys(gw.properties).sort(), 'no extra config keys');
});

t.test('every rendered manifest passes the strict field check (no unknown or misplaced fields)', async (t) => {
  t.ok(strictQueue.length > 40, `manifests collected: ${strictQueue.length}`);
  const file = join(packageRoot, 'test', 'charts', '__rendered_manifests__.ts');
  const lines: string[] = [];
  const owner: string[] = [];
  const imported = new Set<string>();
  for (const { doc } of strictQueue) {
    const [mod, type] = MODELS[`${doc.apiVersion}/${doc.kind}`]!.type;
    if (!imported.has(type)) lines.push(`import type { ${type} } from '${mod}';`), owner.push('(imports)'), imported.add(type);
  }
  strictQueue.forEach(({ label, doc }, i) => {
    const [, type] = MODELS[`${doc.apiVersion}/${doc.kind}`]!.type;
    for (const l of `export const m${i}: ${type} = ${JSON.stringify(doc, null, 1)};`.split('\n')) {
      lines.push(l);
      owner.push(label);
    }
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [],
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (f === file ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, ...rest));
  host.fileExists = (f) => f === file || fileExists(f);
  const program = ts.createProgram([file], options, host);
  const problems = ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    return `${owner[line] ?? '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 300)}`;
  });
  t.same(problems, [], 'no field outside the Kubernetes API types');
});

// Guard against a silently empty ci/ folder.
t.ok(ciFiles.length >= 3 && hostCiFiles.length >= 2, 'ci values files found');
