import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { splitPem } from './material.js';

/**
 * A CA bundle the gateway trusts a server with (upstream.ca, jwt.jwksCa), judged as the handling
 * is built: Node's TLS takes any text as `ca` without complaint (a file of garbage then fails every
 * connection), so the file must hold at least one PEM certificate and every one must parse.
 * Throws a plain message naming the setting; check-config judges the same files in more detail.
 */
export function assertTrustBundle(file: string, what: string): void {
  const pem = readFileSync(file, 'utf8');
  const blocks = splitPem(pem);
  if (!blocks.length) throw new Error(`${what} holds no PEM certificate`);
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch {
      throw new Error(`${what}: certificate ${i + 1} does not parse`);
    }
  });
}

/**
 * The provider client certificate and its key (upstream.cert, upstream.key), judged as the handling
 * is built: a pair that does not match would fail every provider exchange (500 behind a ready
 * gateway). Throws a plain message naming the settings, as check-config does.
 */
export function assertClientPair(certFile: string | undefined, keyFile: string | undefined): void {
  if (!certFile || !keyFile) throw new Error('upstream.cert and upstream.key go together');
  try {
    createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  } catch (e) {
    const why = /mismatch/i.test(String((e as Error).message)) ? 'does not match the certificate in upstream.cert' : `cannot be used with upstream.cert (${String((e as { code?: string }).code ?? 'unreadable')})`;
    throw new Error(`upstream.key: ${why}`);
  }
}
