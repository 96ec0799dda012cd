import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config.js';
import { certificateSubjectDer, crlBlocks, crlSignedBy, parseCrl } from './crl.js';
import { loadTlsMaterial } from './material.js';

/**
 * check-config's look at every piece of TLS material (issue 19): what start-up would refuse, and
 * what start-up accepts but would refuse clients later (an incomplete CA chain, an expired or
 * foreign CRL) or soon (expiry within the warning window). Pure apart from reading the files.
 */

export interface Finding {
  level: 'error' | 'warning';
  /** Config key of the material, e.g. tls.clientCa. */
  what: string;
  message: string;
}

export interface InspectOptions {
  now: number;
  /** Warn about certificates that expire within this many days. */
  certWarningDays: number;
  /** Warn about a CRL whose nextUpdate is within this many hours. */
  crlWarningHours: number;
}

const DAY = 86_400_000;
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const name = (c: X509Certificate) => c.subject.replace(/\n/g, ', ');
const iso = (ms: number) => new Date(ms).toISOString();

class Report {
  readonly findings: Finding[] = [];
  error(what: string, message: string) { this.findings.push({ level: 'error', what, message }); }
  warn(what: string, message: string) { this.findings.push({ level: 'warning', what, message }); }
}

function read(file: string, what: string, r: Report): string | undefined {
  try { return readFileSync(file, 'utf8'); } catch (e) {
    r.error(what, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    return undefined;
  }
}

/**
 * Every CERTIFICATE block of a PEM text, parsed. A private key in a file meant for certificates
 * is an error where the file is a trust store (it has no business there) and a warning otherwise.
 */
function certificates(pem: string, what: string, r: Report, keyIsError: boolean): X509Certificate[] {
  const out: X509Certificate[] = [];
  let n = 0;
  for (const m of pem.matchAll(BLOCK)) {
    const label = m[1]!;
    if (label === 'CERTIFICATE') {
      n++;
      try { out.push(new X509Certificate(m[0])); } catch { r.error(what, `certificate ${n} does not parse (not a valid X.509 certificate)`); }
    } else if (label.endsWith('PRIVATE KEY')) {
      (keyIsError ? r.error : r.warn).call(r, what, `holds a private key (${label}); this file should hold only certificates`);
    }
  }
  if (n === 0) r.error(what, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return out;
}

function validity(c: X509Certificate, what: string, o: InspectOptions, r: Report): void {
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  if (from > o.now) r.error(what, `${name(c)}: not valid before ${iso(from)}`);
  if (to <= o.now) r.error(what, `${name(c)}: expired on ${iso(to)}`);
  else if (to - o.now < o.certWarningDays * DAY) r.warn(what, `${name(c)}: expires on ${iso(to)}, within ${o.certWarningDays} days`);
}

function privateKey(pem: string, what: string, r: Report): KeyObject | undefined {
  try { return createPrivateKey(pem); } catch (e) {
    r.error(what, `does not parse as an unencrypted PEM private key (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

/** A certificate file (leaf first, then its intermediates in order) and its key. */
function checkPair(certFile: string, keyFile: string, names: [string, string], o: InspectOptions, r: Report): X509Certificate | undefined {
  const [certWhat, keyWhat] = names;
  const certPem = read(certFile, certWhat, r);
  const keyPem = read(keyFile, keyWhat, r);
  const chain = certPem === undefined ? [] : certificates(certPem, certWhat, r, false);
  for (const c of chain) validity(c, certWhat, o, r);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      r.error(certWhat, `chain out of order or broken: certificate ${i + 1} (${name(chain[i]!)}) is not issued by certificate ${i + 2} (${name(chain[i + 1]!)})`);
    }
  }
  const key = keyPem === undefined ? undefined : privateKey(keyPem, keyWhat, r);
  const leaf = chain[0];
  if (leaf && key && !leaf.checkPrivateKey(key)) r.error(keyWhat, `does not match the certificate in ${certWhat} (${name(leaf)})`);
  return leaf;
}

/**
 * A trust bundle: every entry a CA certificate (a self-signed one is accepted where a pinned peer
 * is allowed), and every CA's issuer present, since OpenSSL needs the chain to end at a
 * self-signed root it trusts (Node does not enable partial chains).
 */
function checkCaBundle(file: string, what: string, o: InspectOptions, r: Report, allowPinnedLeaf: boolean): X509Certificate[] {
  const pem = read(file, what, r);
  if (pem === undefined) return [];
  const cas = certificates(pem, what, r, true);
  for (const c of cas) {
    validity(c, what, o, r);
    const selfSigned = c.checkIssued(c);
    if (!c.ca && !(allowPinnedLeaf && selfSigned)) r.error(what, `${name(c)}: not a CA certificate (basicConstraints CA:TRUE missing); it cannot issue the certificates it should trust`);
    if (!selfSigned && !cas.some((p) => p !== c && c.checkIssued(p) && c.verify(p.publicKey))) {
      r.error(what, `${name(c)}: chain incomplete, its issuer (${c.issuer.replace(/\n/g, ', ')}) is not in the bundle`);
    }
  }
  return cas;
}

/**
 * The CRL file: each CRL parses, is issued and signed by a CA of the bundle, and is current.
 * Returns how many CRLs the file holds and how many of them a CA of the bundle issued.
 */
function checkCrls(file: string, cas: X509Certificate[], o: InspectOptions, r: Report): { blocks: number; issuedByBundle: number } {
  const what = 'tls.crl';
  const none = { blocks: 0, issuedByBundle: 0 };
  const pem = read(file, what, r);
  if (pem === undefined) return none;
  const blocks = crlBlocks(pem);
  if (!blocks.length) {
    r.error(what, 'holds no PEM CRL (-----BEGIN X509 CRL-----)');
    return none;
  }
  const subjects = cas.map((c) => ({ c, der: certificateSubjectDer(c.raw) }));
  const covered = new Set<X509Certificate>();
  let issuedByBundle = 0;
  blocks.forEach((der, i) => {
    const at = `CRL ${i + 1}`;
    let crl;
    try { crl = parseCrl(der); } catch (e) { return r.error(what, `${at} does not parse (${(e as Error).message})`); }
    const issuers = subjects.filter((s) => s.der.equals(crl.issuerDer)).map((s) => s.c);
    if (!issuers.length) return r.error(what, `${at} is issued by a CA that is not in tls.clientCa; it can never apply`);
    issuedByBundle++;
    const results = issuers.map((c) => crlSignedBy(crl, c.publicKey));
    const signer = issuers[results.indexOf(true)];
    const label = `${at} (${name(signer ?? issuers[0]!)})`;
    if (signer) covered.add(signer);
    else if (results.includes(undefined)) {
      covered.add(issuers[results.indexOf(undefined)]!);
      r.warn(what, `${label}: signature algorithm ${crl.signatureAlgorithm} not checked here`);
    }
    else r.error(what, `${label}: signature does not verify with the key of the CA of that name; OpenSSL will reject it and refuse every client`);
    if (crl.thisUpdate > o.now) r.error(what, `${label}: not valid before ${iso(crl.thisUpdate)}`);
    if (crl.nextUpdate === undefined) r.warn(what, `${label}: has no nextUpdate`);
    else if (crl.nextUpdate <= o.now) r.error(what, `${label}: expired (nextUpdate ${iso(crl.nextUpdate)}); every client certificate it covers is refused`);
    else if (crl.nextUpdate - o.now < o.crlWarningHours * 3_600_000) r.warn(what, `${label}: nextUpdate ${iso(crl.nextUpdate)} is within ${o.crlWarningHours} hours`);
  });
  // OpenSSL checks revocation for every certificate of a client's chain: a CA without a CRL
  // refuses every client that chains through it (UNABLE_TO_GET_CRL).
  for (const { c } of subjects) {
    if (!covered.has(c)) r.error(what, `no CRL signed by ${name(c)}; with a CRL configured, clients whose chain includes that CA are refused`);
  }
  return { blocks: blocks.length, issuedByBundle };
}

/** What start-up does with the same files (material.ts, the listener and the upstream agent). */
function startupPath(config: Readonly<Config>, r: Report): void {
  try {
    createSecureContext(loadTlsMaterial(config.tls).options);
  } catch (e) {
    r.error('tls', `start-up would fail: ${(e as Error).message.split('\n')[0]}`);
  }
  const u = config.upstream;
  if (!u.ca && !u.cert) return;
  try {
    createSecureContext({
      ...(u.ca ? { ca: readFileSync(u.ca) } : {}),
      ...(u.cert && u.key ? { cert: readFileSync(u.cert), key: readFileSync(u.key) } : {}),
    });
  } catch (e) {
    r.error('upstream', `start-up would fail: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * The client-trust material that can never admit a client, which start-up refuses as check-config
 * does (README: /readyz is 200 only for a valid configuration): a `tls.clientCa` with no CA
 * certificate in it, and a CRL issued by no CA of the bundle (with a CRL configured, OpenSSL then
 * refuses every client: UNABLE_TO_GET_CRL). What may mend itself at run time — an expired CRL, a
 * certificate not yet valid, an incomplete chain for some clients — stays check-config's warning or
 * error only, and the listener reports it per handshake.
 */
export function startupTlsProblems(config: Readonly<Config>): string[] {
  const r = new Report();
  const o: InspectOptions = { now: Date.now(), certWarningDays: 0, crlWarningHours: 0 };
  const cas = checkCaBundle(config.tls.clientCa, 'tls.clientCa', o, r, false);
  const problems: string[] = [];
  if (cas.length && !cas.some((c) => c.ca)) problems.push(`tls.clientCa: ${config.tls.clientCa} holds no CA certificate (basicConstraints CA:TRUE): no client certificate could ever be trusted`);
  if (config.tls.crl && cas.length) {
    // Only when no CRL of the file is issued by a CA of the bundle: one extra CRL (a combined
    // bundle, the old CA's during a rotation) is check-config's error, not a refusal of every client.
    const { blocks, issuedByBundle } = checkCrls(config.tls.crl, cas, o, new Report());
    if (blocks > 0 && issuedByBundle === 0) problems.push(`tls.crl: ${config.tls.crl}: no CRL in it is issued by a CA of tls.clientCa; with a CRL configured, every client would be refused`);
  }
  return problems;
}

export function inspectTls(config: Readonly<Config>, o: InspectOptions): Finding[] {
  const r = new Report();
  const { tls, upstream } = config;
  const leaf = checkPair(tls.cert, tls.key, ['tls.cert', 'tls.key'], o, r);
  if (leaf) {
    const host = new URL(config.publicBaseUrl).hostname.replace(/^\[|\]$/g, '');
    const matches = /^[\d.]+$|:/.test(host) ? leaf.checkIP(host) : leaf.checkHost(host);
    if (!matches) r.warn('tls.cert', `${name(leaf)}: does not name ${host} (publicBaseUrl); clients that check the host name will refuse it`);
  }
  const cas = checkCaBundle(tls.clientCa, 'tls.clientCa', o, r, false);
  if (tls.crl) checkCrls(tls.crl, cas, o, r);
  if (upstream.ca) checkCaBundle(upstream.ca, 'upstream.ca', o, r, true);
  if (config.jwt.mode === 'signed' && config.jwt.jwksCa) checkCaBundle(config.jwt.jwksCa, 'jwt.jwksCa', o, r, true);
  // The database's CA too: one expiring unnoticed takes every replica's store down at once.
  if (config.store.kind === 'postgres' && config.store.tls?.ca) checkCaBundle(config.store.tls.ca, 'store.tls.ca', o, r, true);
  if (config.store.kind === 'postgres' && config.store.tls?.cert && config.store.tls.key) checkPair(config.store.tls.cert, config.store.tls.key, ['store.tls.cert', 'store.tls.key'], o, r);
  if (upstream.cert && upstream.key) checkPair(upstream.cert, upstream.key, ['upstream.cert', 'upstream.key'], o, r);
  // The start-up path last, and only when nothing above failed: its messages are less precise.
  if (!r.findings.some((f) => f.level === 'error')) startupPath(config, r);
  return r.findings;
}
