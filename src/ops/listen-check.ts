import { createServer } from 'node:net';
import type { Config } from '../config.js';

export interface ListenFindings {
  problems: string[];
  warnings: string[];
}

/**
 * check-config's listen half: `listen` and `admin` are each bound once, on the configured host
 * and port, and closed at once. What start-up would hit — a name that does not resolve
 * (ENOTFOUND), an address that is not this machine's (EADDRNOTAVAIL), a port the process may not
 * use (EACCES: below 1024 without the privilege) — is a problem. A port in use is only a warning:
 * the gateway itself may be running here (check-config is run in its pod).
 */
export async function checkListen(c: Readonly<Pick<Config, 'listen' | 'admin'>>): Promise<ListenFindings> {
  const found: ListenFindings = { problems: [], warnings: [] };
  for (const [key, at] of [['listen', c.listen], ['admin', c.admin]] as const) {
    const code = await bindOnce(at.host, at.port);
    if (code === undefined) continue;
    const where = `'${at.host.slice(0, 253)}' port ${at.port}`;
    if (code === 'EADDRINUSE') found.warnings.push(`${key}: ${where} is in use (by this gateway, if it runs here; anything else would make start-up fail)`);
    else found.problems.push(`${key}.host, ${key}.port: cannot listen on ${where} on this machine (${explain(code)})`);
  }
  return found;
}

function bindOnce(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

function explain(code: string): string {
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${code}: the name does not resolve`;
    case 'EADDRNOTAVAIL':
      return 'EADDRNOTAVAIL: not an address of this machine';
    case 'EACCES':
      return 'EACCES: a port below 1024 needs a privilege this process lacks';
    default:
      return code;
  }
}
