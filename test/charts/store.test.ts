/**
 * The chart's `store` values (issue 18 item 8), rendered by the real helm: standalone takes the
 * PostgreSQL URL and the encryption key from Secrets; sidecar mode keeps a sqlite file on an
 * emptyDir (or a PersistentVolumeClaim); more than one replica needs PostgreSQL.
 */
import t from 'tap';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { applyEnv, buildConfig, parseConfigText } from '../../src/config.js';
import { chartCopy, chartDir, parseManifests, template, type Manifest, type RenderOptions } from './render.js';

const ci = join(chartDir, 'ci');
const copy = chartCopy();

function render(chart: string, o: RenderOptions): Manifest[] {
  const r = template(chart, o);
  if (!r.ok) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

function pod(docs: Manifest[], name: string): { spec: Manifest; container: Manifest; strategy?: Manifest } {
  const dep = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === name)!;
  new Deployment(dep as never).validate();
  const spec = dep.spec.template.spec;
  const container = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].find((c: Manifest) => c.name === 'cancel-gateway');
  return { spec, container, strategy: dep.spec.strategy };
}

/** The gateway configuration as the pod sees it: the ConfigMap plus the container's env. */
function gatewayConfig(docs: Manifest[], container: Manifest) {
  const raw = parseConfigText(docs.find((d) => d.kind === 'ConfigMap')!.data['config.yaml'], 'config.yaml');
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) if (e.valueFrom?.secretKeyRef) env[e.name] = 'postgres://gw:from-secret@db:5432/gw';
  applyEnv(raw, env);
  return buildConfig(raw, { checkFiles: false });
}

const mountOf = (c: Manifest, path: string) => (c.volumeMounts ?? []).find((m: Manifest) => m.mountPath === path);
const volumeOf = (spec: Manifest, name: string) => (spec.volumes ?? []).find((v: Manifest) => v.name === name);

t.test('standalone: PostgreSQL by default, URL from a Secret, key and CA mounted read-only', async (t) => {
  const docs = render(chartDir, { values: [join(ci, 'standalone-gp-connect-values.yaml')] });
  const { spec, container, strategy } = pod(docs, 'gpc-gateway');
  const url = (container.env ?? []).find((e: Manifest) => e.name === 'GATEWAY_STORE_URL');
  t.same(url?.valueFrom, { secretKeyRef: { name: 'gpc-store', key: 'database-url' } }, 'GATEWAY_STORE_URL from the Secret');
  const c = gatewayConfig(docs, container);
  t.equal(c.store.kind, 'postgres');
  t.equal(c.store.url, 'postgres://gw:from-secret@db:5432/gw', 'the URL reaches the gateway through the env override');
  t.equal(c.store.encryptionKeyFile, '/etc/cancel-gateway/store-key/current.key');
  t.same(c.store.decryptionKeyFiles, ['/etc/cancel-gateway/store-key/2025.key'], 'the previous key, from the same Secret');
  t.equal(c.store.tls?.ca, '/etc/cancel-gateway/store-ca/ca.crt');
  t.same([c.store.timeoutMs, c.store.lockWaitMs, c.store.poolSize, c.store.lockPoolSize, c.store.retentionDays], [1500, 8000, 8, 24, 90], 'tunables from config.store');
  t.equal(mountOf(container, '/etc/cancel-gateway/store-key')?.readOnly, true);
  t.equal(volumeOf(spec, mountOf(container, '/etc/cancel-gateway/store-key').name)?.secret?.secretName, 'gpc-store-keys');
  t.equal(volumeOf(spec, mountOf(container, '/etc/cancel-gateway/store-ca').name)?.secret?.secretName, 'gpc-store-ca');
  t.notOk(mountOf(container, '/var/lib/cancel-gateway'), 'no sqlite folder');
  t.equal(strategy?.type, 'RollingUpdate');
  const text = JSON.stringify(docs);
  t.notMatch(text, /from-secret/, 'the URL itself is never in a manifest');
});

t.test('sidecar: sqlite on an emptyDir by default, writable, in the vendor pod', async (t) => {
  const docs = render(copy.hostDir, { values: [join(copy.hostDir, 'ci', 'sidecar-values.yaml')] });
  const { spec, container } = pod(docs, 'rel-vendor-provider');
  const c = gatewayConfig(docs, container);
  t.equal(c.store.kind, 'sqlite');
  t.equal(c.store.path, '/var/lib/cancel-gateway/vault.db');
  const m = mountOf(container, '/var/lib/cancel-gateway');
  t.ok(m && !m.readOnly, 'the folder is writable (WAL files beside the database)');
  t.same(volumeOf(spec, m.name)?.emptyDir, { sizeLimit: '1Gi' });
  t.equal(container.env, undefined, 'no store URL');
});

t.test('sqlite on an existing PersistentVolumeClaim, one replica, Recreate', async (t) => {
  const docs = render(chartDir, { values: [join(ci, 'networkpolicy-servicemonitor-values.yaml')] });
  const { spec, container, strategy } = pod(docs, 'rel-cancel-gateway');
  t.same(volumeOf(spec, mountOf(container, '/var/lib/cancel-gateway').name)?.persistentVolumeClaim, { claimName: 'cancel-gateway-vault' });
  t.same(strategy, { type: 'Recreate' }, 'the old pod closes the file before the new one opens it');
  t.equal(gatewayConfig(docs, container).store.kind, 'sqlite');
});

t.test('memory: no store volume, no URL', async (t) => {
  const docs = render(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['replicaCount=1', 'store.kind=memory'] });
  const { container, strategy } = pod(docs, 'rel-cancel-gateway');
  t.equal(gatewayConfig(docs, container).store.kind, 'memory');
  t.same(strategy, { type: 'Recreate' }, 'two pods with their own in-process locks never serve side by side (ruling 23)');
  t.notOk((container.volumeMounts ?? []).some((m: Manifest) => /store/.test(m.name)));
});

t.test('refusals: several replicas without PostgreSQL; PostgreSQL without its URL Secret; a chart-owned key in config', async (t) => {
  for (const kind of ['sqlite', 'memory']) {
    const r = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: [`store.kind=${kind}`] });
    t.notOk(r.ok, `replicaCount 2 with ${kind} is refused`);
    t.match(r.stderr, new RegExp(`replicaCount 2 needs store.kind postgres: with ${kind}`));
  }
  t.ok(template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['store.kind=sqlite', 'replicaCount=1'] }).ok, 'one replica with sqlite renders');
  const noUrl = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['store.postgres.urlSecret.name='] });
  t.notOk(noUrl.ok);
  t.match(noUrl.stderr, /store.kind postgres needs store.postgres.urlSecret.name/);
  const owned = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['config.store.url=postgres://x/y'] });
  t.notOk(owned.ok, 'config.store.url is not a value (the URL comes from a Secret)');
  const ca = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['config.store.tls.ca=/x'] });
  t.notOk(ca.ok);
  t.match(ca.stderr, /config.store.tls.ca is set by the chart/);
  const cert = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: ['config.store.tls.cert=/x', 'config.store.tls.key=/y'] });
  t.notOk(cert.ok, 'a database client certificate is not mounted by the chart: refused, not left to fail at start-up');
  t.match(cert.stderr, /config.store.tls.cert\/key: the chart mounts no client certificate/);
});

t.test('the README install values render as they are (standalone, two replicas, PostgreSQL from a Secret)', async (t) => {
  const { readFileSync, writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const readme = readFileSync(join(chartDir, '..', '..', 'README.md'), 'utf8');
  const block = /```yaml\n\s*# my-values\.yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  t.ok(block, 'the README has the my-values.yaml block');
  const indent = /^( *)/.exec(block!.split('\n').find((l) => l.trim()) ?? '')![1]!.length;
  const file = join(mkdtempSync(join(tmpdir(), 'gw-readme-values-')), 'my-values.yaml');
  writeFileSync(file, block!.split('\n').map((l) => l.slice(indent)).join('\n'));
  const docs = render(chartDir, { values: [file] });
  const dep = docs.find((d) => d.kind === 'Deployment');
  t.equal(dep?.spec?.replicas, 2);
  const env = (dep?.spec?.template?.spec?.containers?.[0]?.env ?? []) as Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string } } }>;
  t.equal(env.find((e) => e.name === 'GATEWAY_STORE_URL')?.valueFrom?.secretKeyRef?.name, 'cancel-gateway-store', 'the store URL from the Secret of step 1');
});

t.test('NetworkPolicy with the PostgreSQL store: egress to the database is rendered, and required', async (t) => {
  const netpol = ['networkPolicy.enabled=true', 'networkPolicy.provider.podSelector.app=legacy-provider'];
  const missing = template(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: netpol });
  t.notOk(missing.ok, 'a policy that would cut the gateway off from its store is refused');
  t.match(missing.stderr, /networkPolicy\.store: give podSelector, namespaceSelector or ipBlock/);
  const docs = render(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: [...netpol, 'networkPolicy.store.podSelector.app=postgres'] });
  const np = docs.find((d) => d.kind === 'NetworkPolicy')!;
  t.same(np.spec.egress.at(-1), { to: [{ podSelector: { app: 'postgres' } }], ports: [{ port: 5432, protocol: 'TCP' }] }, 'egress to the database on 5432');
  const managed = render(chartDir, { values: [join(ci, 'standalone-values.yaml')], set: [...netpol, 'networkPolicy.store.ipBlock.cidr=10.7.0.0/24', 'networkPolicy.store.port=6432'] });
  t.same(managed.find((d) => d.kind === 'NetworkPolicy')!.spec.egress.at(-1), { to: [{ ipBlock: { cidr: '10.7.0.0/24' } }], ports: [{ port: 6432, protocol: 'TCP' }] }, 'a managed database by address, its port');
  const sqlite = render(chartDir, { values: [join(ci, 'networkpolicy-servicemonitor-values.yaml')] });
  t.equal(sqlite.find((d) => d.kind === 'NetworkPolicy')!.spec.egress.length, 2, 'sqlite: provider and DNS only');
});

t.test('a file audit trail gets its own volume (the 16Mi /tmp would fill and evict the pod); a file elsewhere is refused at render', async (t) => {
  const base = [join(ci, 'standalone-values.yaml')];
  const docs = render(chartDir, { values: base, set: ['config.audit.destination=/var/log/cancel-gateway/audit.jsonl'] });
  const { spec, container } = pod(docs, 'rel-cancel-gateway');
  t.same(volumeOf(spec, 'cancel-gateway-audit'), { name: 'cancel-gateway-audit', emptyDir: { sizeLimit: '1Gi' } }, 'an emptyDir of its own');
  t.equal(mountOf(container, '/var/log/cancel-gateway')?.name, 'cancel-gateway-audit');
  const claim = render(chartDir, { values: base, set: ['config.audit.destination=/var/log/cancel-gateway/audit.jsonl', 'auditVolume.existingClaim=audit-trail'] });
  t.same(volumeOf(pod(claim, 'rel-cancel-gateway').spec, 'cancel-gateway-audit')?.persistentVolumeClaim, { claimName: 'audit-trail' });
  // One claim for every pod (replicas, a rolling update's extra pod): a file per pod, never one shared.
  const env = pod(claim, 'rel-cancel-gateway').container.env as Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  t.same(env.find((e) => e.name === 'CANCEL_GATEWAY_POD_NAME')?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } }, 'the pod name from the downward API');
  t.equal(env.find((e) => e.name === 'GATEWAY_AUDIT_DESTINATION')?.value, '/var/log/cancel-gateway/$(CANCEL_GATEWAY_POD_NAME)-audit.jsonl', 'the audit file named after the pod');
  t.ok(env.findIndex((e) => e.name === 'CANCEL_GATEWAY_POD_NAME') < env.findIndex((e) => e.name === 'GATEWAY_AUDIT_DESTINATION'), 'defined before it is used (Kubernetes expands only earlier variables)');
  t.notOk((pod(docs, 'rel-cancel-gateway').container.env ?? []).some((e: { name: string }) => e.name === 'GATEWAY_AUDIT_DESTINATION'), 'an emptyDir is the pod\'s own: the file keeps its name');
  const stdout = render(chartDir, { values: base });
  t.notOk(volumeOf(pod(stdout, 'rel-cancel-gateway').spec, 'cancel-gateway-audit'), 'stdout: no audit volume');
  const elsewhere = template(chartDir, { values: base, set: ['config.audit.destination=/var/log/audit.jsonl'] });
  t.notOk(elsewhere.ok, 'a file the gateway could not write is refused at render');
  t.match(elsewhere.stderr, /auditVolume\.mountPath/);
  t.notOk(template(chartDir, { values: base, set: ['auditVolume.mountPath=/', 'config.audit.destination=/audit.jsonl'] }).ok, 'a volume over / is refused');
});

t.test('a loopback admin listener is refused at render: the kubelet probes the pod address, and the pod would restart for ever', async (t) => {
  const base = [join(ci, 'standalone-values.yaml')];
  for (const host of ['127.0.0.1', 'localhost', '::1']) {
    const r = template(chartDir, { values: base, set: [`config.admin.host=${host}`] });
    t.notOk(r.ok, host);
    t.match(r.stderr, /config\.admin\.host .*loopback admin listener fails every probe/, host);
  }
  t.ok(template(chartDir, { values: base, set: ['config.admin.host=0.0.0.0'] }).ok, '0.0.0.0 renders');
});

