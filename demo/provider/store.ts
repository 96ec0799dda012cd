/**
 * In-memory, versioned Appointment store for the demo provider (the stand-in for the legacy
 * FHIR STU3 appointment provider behind the gateway).
 *
 * Every write keeps the previous versions: NHS Booking's cancel page says previous versions must be
 * kept so that no data is lost (../../../shared/spec/README.md, founding text). `meta.versionId` is a
 * per-resource string counter ("1", "2", ...) and `meta.lastUpdated` an ISO instant set on every write.
 *
 * Resources are deep-copied on the way in and on the way out, so no caller can alter a stored version.
 */
import { randomUUID } from 'node:crypto';

/** A FHIR resource as JSON; the store only relies on `id` and `meta`. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface StoredVersion {
  readonly id: string;
  readonly versionId: string;
  readonly lastUpdated: string;
  /** A copy of the resource as stored (with `id`, `meta.versionId` and `meta.lastUpdated` set). */
  readonly resource: Resource;
}

export class AppointmentStore {
  /** id -> all versions, oldest first; the last one is current. */
  readonly #versions = new Map<string, Resource[]>();
  readonly #now: () => Date;

  constructor(opts: { now?: () => Date } = {}) {
    this.#now = opts.now ?? (() => new Date());
  }

  /** Ids of all stored resources, in insertion order. */
  ids(): string[] {
    return [...this.#versions.keys()];
  }

  has(id: string): boolean {
    return this.#versions.has(id);
  }

  /** The current version, or undefined for an unknown id. */
  read(id: string): StoredVersion | undefined {
    const versions = this.#versions.get(id);
    const current = versions?.[versions.length - 1];
    return current ? view(id, current) : undefined;
  }

  /** A specific version (vread), or undefined. */
  vread(id: string, versionId: string): StoredVersion | undefined {
    const found = this.#versions.get(id)?.find((r) => r.meta?.versionId === versionId);
    return found ? view(id, found) : undefined;
  }

  /** Every version, oldest first (empty for an unknown id). */
  history(id: string): StoredVersion[] {
    return (this.#versions.get(id) ?? []).map((r) => view(id, r));
  }

  /** The current version of every resource. */
  list(): StoredVersion[] {
    return this.ids().map((id) => this.read(id)!);
  }

  /** The current versionId, or undefined for an unknown id. */
  currentVersion(id: string): string | undefined {
    return this.read(id)?.versionId;
  }

  /**
   * Create a resource as version "1". With no `id`, one is generated (FHIR create ignores a body id;
   * the server side passes none). Throws if the id already exists — callers choose ids.
   */
  create(resource: Resource, id: string = randomUUID()): StoredVersion {
    if (this.#versions.has(id)) throw new Error(`resource ${id} already exists`);
    const stored = this.#stamp(resource, id, '1');
    this.#versions.set(id, [stored]);
    return view(id, stored);
  }

  /**
   * Store `resource` as the next version of `id`, keeping all previous ones. Undefined for an
   * unknown id (update-as-create is not supported, like the legacy provider). No business rules:
   * that is the gateway's job.
   */
  update(id: string, resource: Resource): StoredVersion | undefined {
    const versions = this.#versions.get(id);
    if (!versions) return undefined;
    const last = versions[versions.length - 1];
    const next = String(Number(last?.meta?.versionId ?? versions.length) + 1);
    const stored = this.#stamp(resource, id, next);
    versions.push(stored);
    return view(id, stored);
  }

  /** Drop every resource (tests). */
  clear(): void {
    this.#versions.clear();
  }

  #stamp(resource: Resource, id: string, versionId: string): Resource {
    const copy = structuredClone(resource);
    copy.id = id;
    const meta = typeof copy.meta === 'object' && copy.meta !== null && !Array.isArray(copy.meta) ? copy.meta : {};
    copy.meta = { ...meta, versionId, lastUpdated: this.#now().toISOString() };
    return copy;
  }
}

function view(id: string, r: Resource): StoredVersion {
  return { id, versionId: r.meta!.versionId!, lastUpdated: r.meta!.lastUpdated!, resource: structuredClone(r) };
}
