import http from 'node:http';
import type { Metrics } from '../metrics.js';
import type { Readiness } from './readiness.js';

/**
 * The admin listener (ruling 18), on its own port: /metrics, /healthz (the process answers),
 * /readyz (this gateway can serve: see readiness.ts). GET and HEAD only. Every answer carries
 * `Cache-Control: no-store` (GP Connect §a asks it of every response; a cached health or readiness
 * answer would mislead a probe under either standard).
 */
export function createAdminServer(metrics: Metrics, readiness: Readiness): http.Server {
  return http.createServer((req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.scrape().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
    } else if (path === '/readyz') {
      const state = readiness.state();
      res.writeHead(state.ready ? 200 : 503, { 'Content-Type': 'application/json' }).end(JSON.stringify(state));
    } else {
      res.writeHead(404).end();
    }
  });
}
