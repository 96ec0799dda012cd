/**
 * What the bench sends and what its upstream answers: one realistic NHS Booking appointment (the
 * demo provider's seed, itself the NHS Booking 2.0.1 sample), cancel bodies and unsigned JWTs.
 * Everything per request is string splicing of pre-serialised parts, so the load generator and the
 * upstream stay cheap and the measured process does the work.
 */
import { demoClaims, unsignedToken } from '../../demo/claims.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';
import { encodeFhirXml } from '../../src/fhir/xml/index.js';
import { STANDARDS } from '../../src/standards/index.js';

export const PROVIDER_ASID = '918999198738';
export const CONSUMER_ASID = '200000000359';
export const BASE_PATH = '/STU3/1';
export const LAST_UPDATED = '2024-01-01T09:00:00.000+00:00';

const ID_MARK = '\u0001ID\u0001';
const nhs = STANDARDS['nhs-booking'];
export const CANCEL_INTERACTION = nhs.interactions.find((i) => i.name === 'cancel')!;
const READ_INTERACTION = nhs.interactions.find((i) => i.name === 'read')!;

function appointment(status: string, versionId: string, mutate?: (r: Record<string, unknown>) => void): Record<string, unknown> {
  const r = seedAppointments('nhs-booking')[0] as unknown as Record<string, unknown>;
  r.id = ID_MARK;
  r.status = status;
  r.meta = { ...(r.meta as object), versionId, lastUpdated: LAST_UPDATED };
  mutate?.(r);
  return r;
}

/** A JSON text with the id spliced in: [before, after]. */
function splitOnId(value: unknown): [string, string] {
  const text = JSON.stringify(value);
  const at = text.indexOf(JSON.stringify(ID_MARK));
  if (at < 0 || text.indexOf(JSON.stringify(ID_MARK), at + 1) >= 0) throw new Error('id marker must appear exactly once');
  return [text.slice(0, at) + '"', text.slice(at + JSON.stringify(ID_MARK).length - 1)];
}

/** The same as XML (issue 15): the id marker is a valid FHIR id here, XML has no \u0001. */
function splitXmlOnId(value: Record<string, unknown>): [string, string] {
  const mark = 'BENCHIDMARK';
  const text = encodeFhirXml(JSON.parse(JSON.stringify(value).replace(JSON.stringify(ID_MARK), JSON.stringify(mark))) as Record<string, unknown>);
  const at = text.indexOf(mark);
  if (at < 0 || text.indexOf(mark, at + 1) >= 0) throw new Error('id marker must appear exactly once');
  return [text.slice(0, at), text.slice(at + mark.length)];
}

/** 'valid-xml': the valid cancel as FHIR XML (application/fhir+xml). */
export type RequestKind = 'valid' | 'valid-xml' | 'bad-scope' | 'bad-diff';

const parts = {
  stored: splitOnId(appointment('booked', '1')),
  updated: splitOnId(appointment('cancelled', '2')),
  valid: splitOnId(appointment('cancelled', '1')),
  'valid-xml': splitXmlOnId(appointment('cancelled', '1')),
  // A cancel that also changes the description: passes the profile, fails the diff (422).
  'bad-diff': splitOnId(appointment('cancelled', '1', (r) => (r.description = 'Changed while cancelling'))),
};

/** The provider's stored appointment (GET answer), version 1. */
export const storedBody = (id: string): string => parts.stored[0] + id + parts.stored[1];
/** The provider's answer to the cancel (PUT answer), version 2. */
export const updatedBody = (id: string): string => parts.updated[0] + id + parts.updated[1];
/** The consumer's cancel body. */
export function cancelBody(kind: RequestKind, id: string): string {
  const p = kind === 'bad-diff' ? parts['bad-diff'] : kind === 'valid-xml' ? parts['valid-xml'] : parts.valid;
  return p[0] + id + p[1];
}

/** The demo consumer's claims (demo/claims.ts) with fresh times and a device id per token. */
const claims = (scope: string, iat: number, device: string) => demoClaims(scope, iat, device);


/**
 * `count` distinct unsigned tokens (each names another device), issued now: valid for 300 s + the
 * gateway's 60 s skew, far longer than one measurement. 'bad-scope' carries the read scope on the
 * cancel interaction (403).
 */
export function tokens(kind: RequestKind, count: number, nowSeconds = Math.floor(Date.now() / 1000)): string[] {
  const scope = kind === 'bad-scope' ? READ_INTERACTION.scope : CANCEL_INTERACTION.scope;
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(unsignedToken(claims(scope, nowSeconds, `CONS-APP-${i}`)));
  return out;
}

export const EXPECTED_STATUS: Record<RequestKind, number> = { valid: 200, 'valid-xml': 200, 'bad-scope': 403, 'bad-diff': 422 };
export const CONTENT_TYPE: Record<RequestKind, string> = {
  valid: 'application/fhir+json; charset=utf-8', 'valid-xml': 'application/fhir+xml; charset=utf-8',
  'bad-scope': 'application/fhir+json; charset=utf-8', 'bad-diff': 'application/fhir+json; charset=utf-8',
};
