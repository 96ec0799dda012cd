import http from 'node:http';
import type { Harness } from './harness.js';

/**
 * GET on the gateway's admin listener, on a connection of its own: a kept-alive socket the server
 * is closing at its idle timeout (5 s, the client agent's own too on Node 20) could reset the next
 * request sent on it.
 */
export function adminGet(h: Pick<Harness, 'gateway'>, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: h.gateway.adminPort, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/** The value of one sample of a metric in Prometheus text (labels matched as a substring set). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
}

