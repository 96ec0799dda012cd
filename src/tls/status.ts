import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import { reportCrlStatus } from './crl-status.js';
import type { TlsMaterial } from './material.js';

/**
 * What the served TLS material says about itself, kept current across reloads: seconds left per
 * certificate (computed at each scrape: an alert on "< 7 days" must see time pass), the CRLs'
 * nextUpdate (at load and reload), and whether the server certificate is still valid (readiness).
 */
export function createTlsStatus(first: TlsMaterial, o: { metrics: Metrics; logger: Logger; clock: Clock; crlWarningHours: number; others?: () => ReadonlyArray<ExpiringCertificate> }) {
  let material = first;
  const setExpiry = (): void => {
    o.metrics.certExpiry.reset();
    for (const c of [...material.certificates, ...(o.others?.() ?? [])]) o.metrics.certExpiry.set({ role: c.role, subject: c.subject }, Math.round((c.notAfter - o.clock.now()) / 1000));
  };
  const update = (m: TlsMaterial): void => {
    material = m;
    setExpiry();
    const server = m.certificates.find((c) => c.role === 'server');
    if (server && server.notAfter <= o.clock.now()) {
      o.logger.error('the server certificate has expired: clients refuse it, and readiness reports tls false', { subject: server.subject, notAfter: new Date(server.notAfter).toISOString() });
    } else if (server?.notBefore !== undefined && server.notBefore > o.clock.now()) {
      o.logger.error('the server certificate is not valid yet: clients refuse it, and readiness reports tls false', { subject: server.subject, notBefore: new Date(server.notBefore).toISOString() });
    }
    reportCrlStatus(m.crls, { metrics: o.metrics, logger: o.logger, now: o.clock.now(), warningHours: o.crlWarningHours });
  };
  o.metrics.onScrape(setExpiry);
  update(first);
  return {
    update,
    /** The served certificate is within its validity (a failed reload keeps an old one). */
    serving: (): boolean => serverValid(material, o.clock.now()),
  };
}

/** A certificate the expiry metric reports besides the listener's (the provider client certificate). */
export interface ExpiringCertificate {
  role: string;
  subject: string;
  notAfter: number;
}

/** The provider client certificate (upstream.cert), for the expiry metric; undefined when none or unreadable (check-config says why). */
export function upstreamClientCertificate(file: string | undefined): ExpiringCertificate | undefined {
  if (!file) return undefined;
  try {
    const pem = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
    if (!pem) return undefined;
    const c = new X509Certificate(pem);
    return { role: 'upstream-client', subject: c.subject.replace(/\n/g, ', '), notAfter: Date.parse(c.validTo) };
  } catch {
    return undefined;
  }
}

/** Whether the material's server certificate is within its validity at `now` (not expired, not yet to come). */
export function serverValid(material: TlsMaterial, now: number): boolean {
  return material.certificates.some((c) => c.role === 'server' && c.notAfter > now && (c.notBefore === undefined || c.notBefore <= now));
}

/** When the material's server certificate becomes valid, if that is after `now`. */
export function serverValidFrom(material: TlsMaterial, now: number): number | undefined {
  const from = material.certificates.find((c) => c.role === 'server')?.notBefore;
  return from !== undefined && from > now ? from : undefined;
}
