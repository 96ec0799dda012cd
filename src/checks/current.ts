import { header } from '../context.js';
import { GatewayError } from '../errors.js';
import { classify, type Upstream } from '../proxy/upstream.js';
import type { Standard } from '../standards/index.js';
import { parseIfMatch } from './if-match.js';
import type { Check } from './types.js';

/** Headers of the consumer's request that the provider's read also needs (identity, tracing). */
const PASSED_ON = ['authorization', 'ssp-traceid', 'ssp-from', 'ssp-to', 'x-request-id'] as const;

export interface CurrentCheckHooks {
  /** Called with the failure kind when the provider read fails (metrics). */
  onUpstreamFailure?(kind: string): void;
}

/**
 * Ruling 8 and 17: read the stored appointment from the provider before deciding. 200 is used,
 * 404 -> 404, anything else (other statuses, redirects, cut-short or non-JSON answers, timeouts)
 * -> 500. The read carries the consumer's identity headers with the standard's read interaction.
 */
export function createCurrentCheck(standard: Standard, upstream: Upstream, hooks: CurrentCheckHooks = {}): Check {
  const readInteraction = standard.interactions.find((i) => i.name === 'read')!;
  const unavailable = (diagnostics: string, kind: string) => {
    hooks.onUpstreamFailure?.(kind);
    return new GatewayError('UPSTREAM_UNAVAILABLE', diagnostics);
  };
  return {
    name: 'current',
    family: null,
    async run(ctx) {
      const headers: Record<string, string> = { accept: 'application/fhir+json', 'ssp-interactionid': readInteraction.id };
      for (const h of PASSED_ON) {
        const v = header(ctx.request, h);
        if (v !== undefined) headers[h] = v;
      }
      // The read's duration is this stage's timing (pipeline), reported as upstream read time.
      let res;
      try {
        res = await upstream.get(`Appointment/${encodeURIComponent(ctx.resourceId!)}`, headers);
      } catch (e) {
        throw unavailable('The provider could not be reached to read the current appointment', classify(e));
      }
      if (res.status === 404) throw new GatewayError('RECORD_NOT_FOUND', { diagnostics: 'No appointment with this id', expression: 'Appointment.id' });
      if (res.status !== 200) throw unavailable(`The provider answered the read with status ${res.status}`, res.status >= 300 && res.status < 400 ? 'redirect' : 'status');
      let resource: unknown;
      try {
        resource = JSON.parse(res.body.toString('utf8'));
      } catch {
        throw unavailable('The provider answered the read with a body that is not JSON', 'protocol');
      }
      if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) throw unavailable('The provider answered the read with no Appointment', 'protocol');
      const r = resource as Record<string, unknown>;
      if (r.resourceType !== 'Appointment' || r.id !== ctx.resourceId) throw unavailable('The provider answered the read with another resource', 'protocol');
      const etag = res.headers.etag;
      const metaVersion = (r.meta as { versionId?: unknown } | undefined)?.versionId;
      const version = (etag ? parseIfMatch(etag) : undefined) ?? (typeof metaVersion === 'string' ? metaVersion : undefined);
      if (!version) throw unavailable('The provider answered the read with no version', 'protocol');
      ctx.current = { resource: r, version };
    },
  };
}
