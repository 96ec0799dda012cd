import { join } from 'node:path';
import { buildConfig, type Config } from '../src/config.js';
import type { Gateway } from '../src/server.js';
import { packageRoot } from '../src/paths.js';
import { STANDARDS } from '../src/standards/index.js';
import { ensureDevCertificates } from './certs.js';
import { startDemoProvider } from './provider/server.js';

/**
 * The embedded default of `npm start`: development certificates (generated once into .dev-certs/,
 * git-ignored), the bundled demo provider on a free loopback port, and the gateway in front of it,
 * then ready-to-paste curl commands. GATEWAY_STANDARD=gp-connect shows the second standard.
 * Nothing here is on the gateway's request path: the provider is just another upstream.
 */
export async function runDemo(run: (config: Readonly<Config>, onReady: (gw: Gateway) => void) => Promise<void>): Promise<void> {
  const standard = (process.env.GATEWAY_STANDARD === 'gp-connect' ? 'gp-connect' : 'nhs-booking') as Config['standard'];
  const certDir = join(packageRoot, '.dev-certs');
  const certs = ensureDevCertificates(certDir);
  const provider = await startDemoProvider({ seed: standard, host: '127.0.0.1', port: 0 });
  const port = Number(process.env.GATEWAY_PORT ?? 8443);
  const adminPort = Number(process.env.GATEWAY_ADMIN_PORT ?? 9090);
  const config = buildConfig({
    standard,
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort },
    basePath: '/STU3/1',
    publicBaseUrl: `https://localhost:${port}/STU3/1`,
    tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.caCert },
    upstream: { url: provider.url },
    spine: { providerAsids: ['918999198738'] },
    log: { level: (process.env.GATEWAY_LOG_LEVEL as Config['log']['level']) ?? 'info' },
    audit: { destination: 'none' },
  });
  await run(config, (gw) => {
    const std = STANDARDS[standard];
    const read = std.interactions.find((i) => i.name === 'read')!;
    const cancel = std.interactions.find((i) => i.name === 'cancel')!;
    const id = provider.store.ids()[0];
    const rel = (p: string) => p.replace(packageRoot + '/', '');
    const tls = `--cacert ${rel(certs.caCert)} --cert ${rel(certs.clientCert)} --key ${rel(certs.clientKey)}`;
    const spine = (interaction: string) =>
      `-H "Ssp-TraceID: $(node -p 'crypto.randomUUID()')" -H 'Ssp-From: 200000000359' -H 'Ssp-To: 918999198738' -H 'Ssp-InteractionID: ${interaction}'`;
    const base = `https://localhost:${gw.port}/STU3/1`;
    const addReason = standard === 'gp-connect'
      // Double quotes: this JS is pasted inside the single-quoted `node -e '...'` below.
      ? `a.extension=[...(a.extension||[]),{url:"${std.cancel.reasonExtensionUrl}",valueString:"Patient request"}];`
      : '';
    process.stdout.write(`
cancel-gateway demo (${std.title}) is running.
  gateway  ${base}   (mTLS: development CA and client certificate in .dev-certs/)
  admin    http://127.0.0.1:${gw.adminPort}/metrics  /healthz  /readyz
  provider ${provider.url}   (bundled demo provider, seeded: ${provider.store.ids().join(', ')})

Paste these into another terminal, from this folder:

# 1. read the appointment (a fresh token each time: tokens live 300 s)
curl -sS ${tls} ${spine(read.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js read ${standard})" \\
  -D read-headers.txt -o appointment.json ${base}/Appointment/${id} && cat read-headers.txt

# 2. cancel it: the same resource with status "cancelled", If-Match from the ETag
node -e 'const fs=require("fs");const a=JSON.parse(fs.readFileSync("appointment.json"));a.status="cancelled";${addReason}fs.writeFileSync("cancel.json",JSON.stringify(a))'
curl -sS ${tls} ${spine(cancel.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js write ${standard})" \\
  -H "If-Match: $(grep -i '^etag:' read-headers.txt | cut -d' ' -f2 | tr -d '\\r')" \\
  -H 'Content-Type: application/fhir+json' -X PUT --data-binary @cancel.json \\
  -D - ${base}/Appointment/${id}

# 3. send the same cancel again: 409 (stale If-Match) as an OperationOutcome

Stop with Ctrl-C. GATEWAY_STANDARD=gp-connect npm start runs the GP Connect 1.2.7 rules.
`);
  });
}
