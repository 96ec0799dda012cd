import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Config } from '../config.js';
import { certificateSubjectDer, crlBlocks, parseCrl } from './crl.js';

export interface TlsMaterial {
  options: SecureContextOptions;
  /** For the expiry metric. */
  certificates: Array<{ role: 'server' | 'client-ca'; subject: string; notAfter: number; notBefore?: number }>;
  /** For the CRL metric and warning (issue 19): each CRL's issuing CA and nextUpdate (ms). */
  crls: CrlSummary[];
}

export interface CrlSummary {
  /** Subject of the CA of tls.clientCa that issued it, or 'unknown' when none matches. */
  issuer: string;
  /** Absent when the CRL has none, or could not be read here (OpenSSL is still the judge). */
  nextUpdate?: number;
}

/** Issuer and nextUpdate of each CRL; never throws (check-config reports what does not parse). */
export function summariseCrls(crlPem: string, caCerts: X509Certificate[]): CrlSummary[] {
  const subjects = caCerts.map((c) => {
    try { return { name: c.subject.replace(/\n/g, ', '), der: certificateSubjectDer(c.raw) }; } catch { return undefined; }
  });
  return crlBlocks(crlPem).map((der) => {
    try {
      const crl = parseCrl(der);
      const issuer = subjects.find((s) => s?.der.equals(crl.issuerDer))?.name ?? 'unknown';
      return crl.nextUpdate === undefined ? { issuer } : { issuer, nextUpdate: crl.nextUpdate };
    } catch {
      return { issuer: 'unknown' };
    }
  });
}

/** The PEM certificate blocks of a text (a bundle, a chain), in order. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Read the server certificate and key, the client CA bundle and the optional CRL (ruling 15).
 * Throws with a plain message when a file is unreadable or not what it should be, so a failed
 * reload keeps the old material.
 */
export function loadTlsMaterial(tls: Readonly<Config['tls']>): TlsMaterial {
  const cert = readFileSync(tls.cert, 'utf8');
  const key = readFileSync(tls.key, 'utf8');
  const ca = readFileSync(tls.clientCa, 'utf8');
  const crl = tls.crl ? readFileSync(tls.crl, 'utf8') : undefined;
  const crlBlocks = crl ? crl.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? [] : [];
  if (crl && !crlBlocks.length) throw new Error('tls.crl holds no PEM CRL');
  const serverCerts = splitPem(cert);
  const caCerts = splitPem(ca);
  if (!serverCerts.length) throw new Error('tls.cert holds no PEM certificate');
  if (!caCerts.length) throw new Error('tls.clientCa holds no PEM certificate');
  const leaf = new X509Certificate(serverCerts[0]!);
  // Refuse a key that does not belong to the certificate before handing it to OpenSSL.
  if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('tls.key does not match tls.cert');
  const cas = caCerts.map((p) => new X509Certificate(p));
  const certificates: TlsMaterial['certificates'] = [
    { role: 'server', subject: leaf.subject.replace(/\n/g, ', '), notAfter: Date.parse(leaf.validTo), notBefore: Date.parse(leaf.validFrom) },
    ...cas.map((c) => ({ role: 'client-ca' as const, subject: c.subject.replace(/\n/g, ', '), notAfter: Date.parse(c.validTo) })),
  ];
  return {
    // Node reads only the first CRL of a PEM string; a bundle (one CRL per CA of the chain, which
    // OpenSSL's CRL checking needs) is passed as an array.
    options: { cert, key, ca, ...(crlBlocks.length ? { crl: crlBlocks } : {}), minVersion: tls.minVersion, ciphers: tls.ciphers, honorCipherOrder: true, dhparam: 'auto' },
    certificates,
    crls: crl ? summariseCrls(crl, cas) : [],
  };
}

/**
 * `next` with the server certificate and key of `kept` (and its entry for the expiry metric):
 * what a reload applies when the new server certificate is not valid now but the current one is —
 * the new client CA bundle and CRL still take effect (ruling 15: a revocation must not wait for a
 * good certificate).
 */
export function keepingServerCertificate(next: TlsMaterial, kept: TlsMaterial): TlsMaterial {
  return {
    options: { ...next.options, cert: kept.options.cert, key: kept.options.key },
    certificates: [...kept.certificates.filter((c) => c.role === 'server'), ...next.certificates.filter((c) => c.role !== 'server')],
    crls: next.crls,
  };
}

/**
 * Watch the folders of the TLS files (Kubernetes swaps secrets by replacing a symlink, which a
 * watch on the file itself would miss) and call `onChange` once per burst of events.
 */
/**
 * Whether a change in a watched folder concerns the TLS files: one of their own names, or a
 * Kubernetes secret volume's `..data` swap (the names are symlinks through it). An event without a
 * name (some platforms) is taken to concern them. Anything else in the folder (an editor's swap
 * file, a log) does not reload.
 */
export function concernsTlsFile(name: string | Buffer | null | undefined, names: ReadonlySet<string>): boolean {
  if (name === null || name === undefined) return true;
  const n = String(name);
  return names.has(n) || n.startsWith('..data');
}

export function watchTlsFiles(tls: Readonly<Config['tls']>, onChange: () => void, debounceMs = 200): () => void {
  return watchFiles([tls.cert, tls.key, tls.clientCa, tls.crl], onChange, debounceMs);
}

/**
 * Calls `onChange` (debounced) when one of `files` changes or Kubernetes swaps the `..data` link
 * of a mounted Secret or ConfigMap in its folder. The provider's TLS files and a JWKS file are
 * watched the same way as the listener's (server.ts).
 */
export function watchFiles(paths: ReadonlyArray<string | undefined>, onChange: () => void, debounceMs = 200): () => void {
  const files = paths.filter((f): f is string => Boolean(f));
  const dirs = new Set(files.map((f) => dirname(f)));
  const names = new Set(files.map((f) => basename(f)));
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const d of dirs) {
    try {
      const w = watch(d, { persistent: false }, (_event, name) => {
        if (!concernsTlsFile(name, names)) return;
        clearTimeout(timer);
        timer = setTimeout(onChange, debounceMs);
      });
      w.on('error', () => {});
      watchers.push(w);
    } catch {
      // A folder we cannot watch: reloads then need a restart; the caller logs it.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
