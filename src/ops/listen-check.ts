import { createServer } from 'node:net';
import type { Config } from '../config.js';

/**
 * check-config's listen half: each of `listen.host` and `admin.host` is bound once, on port 0
 * (any free port, so a gateway already running here does not make it fail), and closed. What
 * start-up would hit — a name that does not resolve (ENOTFOUND), an address that is not this
 * machine's (EADDRNOTAVAIL) — is reported here instead of as a crash-looping process.
 * Resolves to the problems found, [] when both can be listened on.
 */
export async function checkListenHosts(c: Readonly<Pick<Config, 'listen' | 'admin'>>): Promise<string[]> {
  const problems: string[] = [];
  const hosts = new Map<string, string[]>();
  for (const [key, host] of [['listen.host', c.listen.host], ['admin.host', c.admin.host]] as const) hosts.set(host, [...(hosts.get(host) ?? []), key]);
  for (const [host, keys] of hosts) {
    const failure = await bindOnce(host);
    if (failure) problems.push(`${keys.join(', ')}: cannot listen on '${host.slice(0, 253)}' on this machine (${failure})`);
  }
  return problems;
}

function bindOnce(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(explain(e)));
    server.listen({ host, port: 0, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

function explain(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${e.code}: the name does not resolve`;
    case 'EADDRNOTAVAIL':
      return 'EADDRNOTAVAIL: not an address of this machine';
    default:
      return e.code ?? 'error';
  }
}
