/**
 * Seed data for the demo provider: five booked appointments per standard, built from the standards'
 * own examples (copied into this folder), with every instant moved into the future.
 *
 * Instants are shifted by a whole number of days, by rewriting only the calendar date of each
 * `YYYY-MM-DDThh:mm...` string. The time, fraction and offset text stay byte-for-byte the same,
 * because the gateway compares strings exactly (ruling 9: `Z` vs `+00:00` is a difference) and the
 * demo must not introduce such differences itself. Every instant in the resource moves by the same
 * offset (start, end, contained Slot start/end, created, ...), so start/end/slot stay consistent.
 * Plain dates (birthDate) are not instants and are left alone.
 */
import type { AppointmentStore, Resource } from '../store.js';
import { gpConnectAppointment } from './gp-connect.js';
import { nhsBookingAppointment } from './nhs-booking.js';

export type SeedSet = 'nhs-booking' | 'gp-connect' | 'both' | 'none';

/** The ids seeded per standard. */
export const SEED_IDS = {
  'nhs-booking': ['appt-1', 'appt-2', 'appt-3', 'appt-4', 'appt-5'],
  'gp-connect': ['1001', '1002', '1003', '1004', '1005'],
} as const;

const DAY_MS = 86_400_000;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))$/;

/** Shift an instant string by `days`, keeping its time/fraction/offset text exactly; other strings unchanged. */
export function shiftInstant(value: string, days: number): string {
  const m = INSTANT.exec(value);
  if (!m) return value;
  // Calendar arithmetic on the local date part: with a fixed offset, +N×24 h moves the local date by N days.
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * DAY_MS);
  const yyyy = String(d.getUTCFullYear()).padStart(4, '0');
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `${yyyy}-${mm}-${dd}${m[4]}`;
}

/** Deep copy of `value` with every instant string shifted by `days`. */
export function shiftAllInstants<T>(value: T, days: number): T {
  if (typeof value === 'string') return shiftInstant(value, days) as T;
  if (Array.isArray(value)) return value.map((v) => shiftAllInstants(v, days)) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = shiftAllInstants(v, days);
    return out as T;
  }
  return value;
}

/**
 * Whole days to add so that `start` lands `daysAhead` calendar-days-or-so in the future (always
 * strictly after `now`, for any `daysAhead` >= 1).
 */
function daysToFuture(start: string, now: number, daysAhead: number): number {
  const t = Date.parse(start);
  if (!Number.isFinite(t)) return 0;
  return Math.floor((now - t) / DAY_MS) + daysAhead;
}

function build(template: Readonly<Record<string, unknown>>, id: string, index: number, now: number): Resource {
  const base = structuredClone(template) as Resource;
  // Appointments 1..5 fall on successive days, starting a few days out, so none is in the past
  // (GP Connect rejects cancelling a past appointment: gp-connect rulings).
  const days = daysToFuture(String(base['start']), now, 3 + index);
  const r = shiftAllInstants(base, days);
  r.id = id;
  r['status'] = 'booked';
  const meta = { ...(r.meta ?? {}) };
  delete meta.lastUpdated;
  r.meta = meta; // versionId and lastUpdated are set by the store on create
  return r;
}

/** The seed resources for one standard, not yet stored. */
export function seedAppointments(standard: 'nhs-booking' | 'gp-connect', now: number = Date.now()): Resource[] {
  const template = standard === 'nhs-booking' ? nhsBookingAppointment : gpConnectAppointment;
  return SEED_IDS[standard].map((id, i) => build(template, id, i, now));
}

/** Create the seed appointments (version "1") in `store`. */
export function seedStore(store: AppointmentStore, set: SeedSet, now: number = Date.now()): void {
  const standards = set === 'both' ? (['nhs-booking', 'gp-connect'] as const) : set === 'none' ? [] : [set];
  for (const std of standards) for (const r of seedAppointments(std, now)) store.create(r, r.id);
}
