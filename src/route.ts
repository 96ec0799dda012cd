import type { Interaction, Standard } from './standards/index.js';

/**
 * FHIR logical id (STU3: [A-Za-z0-9\-\.]{1,64}), except `.` and `..`: URL resolution turns those
 * into other paths at the provider (ruling 13: anything not configured is 404).
 */
const ID = '((?!\\.\\.?(?:/|$))[A-Za-z0-9.-]{1,64})';

/** An id or version id the router serves (ID alone): what a Location may carry (ruling 22). */
export const ROUTABLE_ID = /^(?!\.\.?$)[A-Za-z0-9.-]{1,64}$/;

interface CompiledRoute { pattern: RegExp; interactions: Interaction[] }

export type RouteResult =
  | { ok: true; candidates: Interaction[]; id: string | undefined; vid?: string }
  | { ok: false; code: 'ROUTE_NOT_FOUND' }
  | { ok: false; code: 'METHOD_NOT_ALLOWED'; allowed: string[] };

/**
 * Build the router of a standard once (ruling 13): interactions grouped by path template.
 * Amend is left out unless enabled, so a PUT naming it is an interaction mismatch (400).
 */
export function createRouter(standard: Standard, opts: { amend: boolean }): (method: string, path: string) => RouteResult {
  const byPath = new Map<string, CompiledRoute>();
  for (const i of standard.interactions) {
    if (i.optional === 'amend' && !opts.amend) continue;
    let r = byPath.get(i.path);
    if (!r) {
      const src = i.path.split('/').map((seg) => (seg === '{id}' || seg === '{vid}' ? ID : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      r = { pattern: new RegExp(`^${src}$`), interactions: [] };
      byPath.set(i.path, r);
    }
    r.interactions.push(i);
  }
  const routes = [...byPath.values()];
  return (method, path) => {
    for (const r of routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      const candidates = r.interactions.filter((i) => i.method === method);
      if (!candidates.length) return { ok: false, code: 'METHOD_NOT_ALLOWED', allowed: [...new Set(r.interactions.map((i) => i.method))] };
      return { ok: true, candidates, id: m[1], vid: m[2] };
    }
    return { ok: false, code: 'ROUTE_NOT_FOUND' };
  };
}
