import type { PeerCertificate } from 'node:tls';
import type { Logger } from '../log.js';
import type { Clock } from '../ports/clock.js';

/**
 * One `warn` line per refused handshake (issue 19 item 4), so a refused client certificate can be
 * diagnosed from the gateway's side: the reason, the peer address and, when a certificate was
 * sent, its subject, issuer, serial and fingerprint — never more. Rate-limited: at most `perSecond`
 * lines a second; the rest are counted and reported in the next line that is written.
 */
export function createRefusalLog(logger: Logger, clock: Clock, perSecond = 20) {
  let windowStart = 0;
  let written = 0;
  let suppressed = 0;
  return (reason: string, peer: string | undefined, cert?: PeerCertificate): void => {
    const now = clock.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      written = 0;
    }
    if (written >= perSecond) {
      suppressed++;
      return;
    }
    written++;
    const has = cert !== undefined && Object.keys(cert).length > 0;
    const name = (n: Record<string, unknown> | undefined) => (n ? String(n.CN ?? Object.entries(n).map(([k, v]) => `${k}=${String(v)}`).join(',')).slice(0, 200) : undefined);
    logger.warn('tls handshake refused', {
      reason,
      peer,
      ...(has ? { subject: name(cert.subject as unknown as Record<string, unknown>), issuer: name(cert.issuer as unknown as Record<string, unknown>), serial: cert.serialNumber, fingerprint256: cert.fingerprint256 } : {}),
      ...(suppressed ? { suppressedSinceLast: suppressed } : {}),
    });
    suppressed = 0;
  };
}
