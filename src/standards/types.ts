import type { ErrorCode, ErrorMapping } from '../errors.js';
import type { ProfileName } from '../fhir/profile.js';

/**
 * Everything that differs between the standards we serve, as data (issue 5). Checks read the
 * selected Standard; none of them branches on its name.
 */

/** What the gateway does with an interaction once identity checks have passed. */
export type InteractionKind =
  /** The cancel decision (rulings 4-12): validated, diffed, serialized, then forwarded. */
  | 'cancel'
  /** GP Connect amend (ruling 27): the same decision as cancel with the amend change set. */
  | 'amend'
  /** A version read: forwarded, answered from the vault when the provider keeps no history (ruling 22). */
  | 'history'
  /** Forwarded untouched after TLS, Spine headers and JWT (ruling 13). */
  | 'passthrough';

/** Cancel and amend: checked, diffed against the stored version, serialized, then written. */
export function isGuarded(i: Interaction): i is Interaction & { kind: 'cancel' | 'amend' } {
  return i.kind === 'cancel' || i.kind === 'amend';
}

/**
 * What a guarded change may change, as data (issue 16, rulings 9 and 27). The diff engine, the
 * order of checks, the lock, the vault and the audit trail are the same for every change set.
 */
export interface ChangeSet {
  /** Elements that may differ: top-level names, or `meta.<name>` for server-managed meta. */
  mayChange: readonly string[];
  /** An extension (by URL) that may be added once, never changed or removed. */
  mayAddExtension?: string;
  /** The submitted status: a fixed code, or `unchanged` (equal to the stored one). */
  submittedStatus: 'cancelled' | 'unchanged';
  /** The stored appointment must not be cancelled already. */
  storedNotCancelled: boolean;
  /** The stored appointment must start in the future. */
  storedStartInFuture: boolean;
  /**
   * The most characters a changed value of an element may have (GP Connect's consumer limits on
   * an amend). Only a value the client changed is judged, never the one the provider stored.
   */
  changedMaxLength?: Readonly<Record<string, number>>;
  /**
   * Elements a change must leave with some text: a changed value that is blank (FHIR whitespace
   * only) is refused — GP Connect's amend of the mandatory description.
   */
  changedNotBlank?: readonly string[];
  /**
   * Elements the submitted resource may leave out although the stored one has them (never change):
   * GP Connect 1.2.7's backward compatibility with consumers of 1.2.1–1.2.6, whose profile had
   * `serviceCategory` and `serviceType` 0..0 (gp-connect-1.2.7.md §c, §d: "omitting both → 200").
   */
  mayOmit?: readonly string[];
}

export interface Interaction {
  /** Short name used in logs, metrics and the audit trail. */
  name: string;
  /** The Ssp-InteractionID value. */
  id: string;
  method: 'GET' | 'PUT' | 'POST';
  /** Path under the FHIR base, with `{id}` segments for logical ids, e.g. `/Appointment/{id}`. */
  path: string;
  /** The JWT `requested_scope` this interaction requires. */
  scope: string;
  kind: InteractionKind;
  /** Off unless the configuration enables it (GP Connect amend). */
  optional?: 'amend';
  /** Read responses get ETag from meta.versionId when the provider omits it (ruling 13). */
  addEtagFromBody?: boolean;
}

export interface CancelRules {
  /** The cancellation-reason extension URL that may be added on cancel. */
  reasonExtensionUrl: string;
  /** GP Connect: the reason extension must be present and non-empty. */
  reasonRequired: boolean;
  /** Elements that must not be present in a cancel body (GP Connect §d). */
  forbiddenElements: readonly string[];
  /** GP Connect: a `start` before now is refused. */
  rejectPastStart: boolean;
  /** GP Connect: every reference must be relative (`Type/id` or `#id`). */
  relativeReferencesOnly: boolean;
}

export interface Standard {
  name: 'nhs-booking' | 'gp-connect';
  title: string;
  interactions: readonly Interaction[];
  profile: ProfileName;
  operationOutcomeProfile: string;
  /** Per-code changes to the catalogue's default (nhs-booking) mapping. */
  errorOverrides: Partial<Record<ErrorCode, Partial<ErrorMapping>>>;
  /** Content-Types a cancel or amend body may have (rulings 5 and 21), lower-case, no parameters. */
  requestMediaTypes: readonly string[];
  /** nhs-booking: a missing If-Match is 412; GP Connect: allowed, the stored version is used. */
  ifMatchRequired: boolean;
  jwt: {
    requirePractitioner: boolean; validateEmbeddedResources: boolean; refuseRequestedRecord?: boolean; completePractitioner?: boolean; sdsIdFormat?: boolean;
    /** A token refusal carries RFC 6750 §3.1's `WWW-Authenticate: Bearer` challenge (NHS Booking §b). */
    bearerChallenge?: boolean;
  };
  cancel: CancelRules;
  /** Allowed change sets per guarded interaction kind. */
  changeSets: { cancel: ChangeSet; amend?: ChangeSet };
  /** GP Connect: `Cache-Control: no-store` on every response, success included. */
  noStoreOnEveryResponse: boolean;
  /** Answers are gzip-compressed when the client's Accept-Encoding allows it (GP Connect §a: servers SHALL support gzip). */
  answerGzip: boolean;
}
