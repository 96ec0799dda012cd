import { GatewayError } from '../errors.js';
import { decodedBody } from '../http/content-coding.js';
import { providerEtagVersion } from '../http/entity-tag.js';
import type { Codec } from '../ports/codec.js';
import type { ProviderAnswer } from '../ports/provider.js';

export interface CurrentVersion {
  readonly resource: Record<string, unknown>;
  /** From ETag, else meta.versionId (ruling 8). */
  readonly version: string;
  /** The bytes as served (a content coding undone), for the vault. */
  readonly body: Buffer;
  readonly mediaType: string;
  readonly lastUpdated: string | undefined;
}

export { codecFor } from '../edge/negotiate.js';
import { codecFor } from '../edge/negotiate.js';

const LIMITS = { maxDepth: 64, maxNodes: 200_000 };

/**
 * Rulings 8 and 17: only 200 (use it) and 404 (-> 404) are meaningful; any other status, a
 * redirect, or a body that is not this appointment with a version -> 500, counted by kind.
 */
export function currentFromAnswer(id: string, answer: ProviderAnswer, codecs: readonly Codec[], onFailure: (kind: string) => void, maxDecodedBytes = 8 * 1024 * 1024): CurrentVersion {
  const unavailable = (diagnostics: string, kind: string) => {
    onFailure(kind);
    return new GatewayError('UPSTREAM_UNAVAILABLE', diagnostics);
  };
  if (answer.status === 404) throw new GatewayError('RECORD_NOT_FOUND', { diagnostics: 'No appointment with this id', expression: 'Appointment.id' });
  if (answer.status !== 200) throw unavailable(`The provider answered the read with status ${answer.status}`, answer.status >= 300 && answer.status < 400 ? 'redirect' : 'status');
  const codec = codecFor(answer.headers['content-type'], codecs);
  let body: Buffer;
  try {
    body = decodedBody(answer.body, answer.headers['content-encoding'], maxDecodedBytes);
  } catch {
    throw unavailable('The provider answered the read with a content coding the gateway cannot read', 'protocol');
  }
  const decoded = codec.decode(body, LIMITS);
  if (!decoded.ok) throw unavailable(`The provider answered the read with a body that is not FHIR ${codec.format.toUpperCase()}`, 'protocol');
  const r = decoded.resource;
  if (r.resourceType !== 'Appointment' || r.id !== id) throw unavailable('The provider answered the read with another resource', 'protocol');
  const etags = answer.headers.etag;
  // Two ETags naming different versions: which version this is cannot be told (fail closed).
  // (`W/"1"` and `"1"` name one version; one that names none is refused below.)
  if (Array.isArray(etags) && new Set(etags.map((e) => providerEtagVersion(e))).size > 1) throw unavailable('The provider answered the read with two different ETags', 'protocol');
  const etag = Array.isArray(etags) ? etags[0] : etags;
  const meta = r.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  const tagged = providerEtagVersion(etag);
  // An ETag that names no version cannot be overruled by the body: which version is it? (ruling 8)
  if (tagged === null) throw unavailable('The provider answered the read with an ETag that names no version', 'protocol');
  const version = tagged ?? (typeof meta?.versionId === 'string' ? meta.versionId : undefined);
  if (!version) throw unavailable('The provider answered the read with no version', 'protocol');
  return { resource: r, version, body, mediaType: codec.contentType, lastUpdated: typeof meta?.lastUpdated === 'string' ? meta.lastUpdated : undefined };
}
