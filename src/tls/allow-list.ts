import type { TLSSocket } from 'node:tls';
import type { Config } from '../config.js';

/**
 * `tls.allowedClients`: beyond a certificate of a trusted CA, the client's subject CN or a DNS
 * subject alternative name must be listed. No list (or an empty one) allows every trusted client.
 */
export function createClientAllowList(allowed: Config['tls']['allowedClients']): (socket: TLSSocket) => boolean {
  if (!allowed || !(allowed.subjects.length || allowed.sans.length)) return () => true;
  // DNS names compare without case and without a final dot (RFC 4343, RFC 5280 §7.2).
  const dns = (name: string): string => name.toLowerCase().replace(/\.$/, '');
  const sans = new Set(allowed.sans.map(dns));
  return (socket) => {
    const cert = socket.getPeerCertificate();
    const cn = cert?.subject?.CN;
    const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
    if (cns.some((c) => allowed.subjects.includes(c))) return true;
    const names = (cert?.subjectaltname ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => dns(s.slice(4)));
    return names.some((s) => sans.has(s));
  };
}
