import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * A CA bundle the gateway trusts a server with (upstream.ca, jwt.jwksCa), judged as the handling
 * is built: Node's TLS takes any text as `ca` without complaint (a file of garbage then fails every
 * connection), so the file must hold at least one PEM certificate and every one must parse.
 * Throws a plain message naming the setting; check-config judges the same files in more detail.
 */
export function assertTrustBundle(file: string, what: string): void {
  const pem = readFileSync(file, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new Error(`${what} holds no PEM certificate`);
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch {
      throw new Error(`${what}: certificate ${i + 1} does not parse`);
    }
  });
}
