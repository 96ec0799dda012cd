import type { Standard } from './types.js';

const NS = 'urn:nhs:names:services:gpconnect:fhir:rest';

/**
 * GP Connect Appointment Management 1.2.7. Sources: ../shared/spec/gp-connect-1.2.7.md §a (cancel
 * vs amend by interaction id), §b (JWT -> 400, embedded resource -> 422), §d (cancel rules),
 * §e (error codes), §f (If-Match optional, 409 FHIR_CONSTRAINT_VIOLATION); the README's rulings for
 * gp-connect where those sources are silent.
 */
export const gpConnect: Standard = {
  name: 'gp-connect',
  title: 'GP Connect 1.2.7',
  interactions: [
    { name: 'cancel', id: `${NS}:cancel:appointment-1`, method: 'PUT', path: '/Appointment/{id}', scope: 'patient/*.write', kind: 'cancel' },
    { name: 'amend', id: `${NS}:update:appointment-1`, method: 'PUT', path: '/Appointment/{id}', scope: 'patient/*.write', kind: 'amend', optional: 'amend' },
    { name: 'read', id: `${NS}:read:appointment-1`, method: 'GET', path: '/Appointment/{id}', scope: 'patient/*.read', kind: 'passthrough', addEtagFromBody: true },
    // Not a GP Connect interaction of its own: served so that a cancel's Location (…/_history/{vid})
    // leads to a route the gateway serves (ruling 22, issue 19 item 7); the read's id and scope.
    { name: 'vread', id: `${NS}:read:appointment-1`, method: 'GET', path: '/Appointment/{id}/_history/{vid}', scope: 'patient/*.read', kind: 'history', addEtagFromBody: true },
    { name: 'search', id: `${NS}:search:patient_appointments-1`, method: 'GET', path: '/Patient/{id}/Appointment', scope: 'patient/*.read', kind: 'passthrough' },
    { name: 'book', id: `${NS}:create:appointment-1`, method: 'POST', path: '/Appointment', scope: 'patient/*.write', kind: 'passthrough' },
    { name: 'slot-search', id: `${NS}:search:slot-1`, method: 'GET', path: '/Slot', scope: 'organization/*.read', kind: 'passthrough' },
    { name: 'metadata', id: `${NS}:read:metadata-1`, method: 'GET', path: '/metadata', scope: 'organization/*.read', kind: 'passthrough' },
  ],
  profile: 'gpconnect-appointment-1',
  operationOutcomeProfile: 'https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1',
  errorOverrides: {
    // §e: header and JWT faults are 400 BAD_REQUEST in GP Connect; 403 is for consent only.
    SPINE_HEADER_INVALID: { spine: 'BAD_REQUEST', issue: 'invalid' },
    JWT_INVALID: { status: 400, spine: 'BAD_REQUEST', issue: 'invalid' },
    // §b + ruling: an invalid resource inside a claim is 422 INVALID_RESOURCE (spec over demonstrator).
    JWT_CLAIM_RESOURCE_INVALID: { status: 422, spine: 'INVALID_RESOURCE', issue: 'invalid' },
    IF_MATCH_INVALID: { spine: 'BAD_REQUEST' },
    // §f: stale If-Match -> 409 FHIR_CONSTRAINT_VIOLATION (test suite + demonstrator).
    VERSION_CONFLICT: { spine: 'FHIR_CONSTRAINT_VIOLATION' },
    PROFILE_INVALID: { issue: 'invalid' },
    // §e: "400 | invalid | BAD_REQUEST | Malformed JSON/XML body".
    BODY_INVALID: { issue: 'invalid' },
    // §e: GP Connect's Spine code system (1.4.0, which GPConnect-OperationOutcome-1 binds as
    // required) has no UNSUPPORTED_MEDIA_TYPE; the demonstrator answers 415 with BAD_REQUEST.
    UNSUPPORTED_MEDIA_TYPE: { spine: 'BAD_REQUEST' },
  },
  // GP Connect: JSON SHALL, XML SHOULD (application/fhir+xml; the legacy XML name is not GP Connect's).
  requestMediaTypes: ['application/fhir+json', 'application/json+fhir', 'application/fhir+xml'],
  ifMatchRequired: false,
  jwt: { requirePractitioner: true, validateEmbeddedResources: true, refuseRequestedRecord: true },
  cancel: {
    reasonExtensionUrl: 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1',
    reasonRequired: true,
    forbiddenElements: ['reason', 'specialty', 'appointmentType', 'indication', 'supportingInformation', 'incomingReferral'],
    rejectPastStart: true,
    relativeReferencesOnly: true,
  },
  changeSets: {
    cancel: {
      mayChange: ['status', 'meta.versionId', 'meta.lastUpdated'],
      mayAddExtension: 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1',
      submittedStatus: 'cancelled',
      storedNotCancelled: true,
      // Checked on the submitted body before the provider is contacted (cancel-request).
      storedStartInFuture: false,
      // §d "Tolerated omissions … (1.2.7 backwards compatibility)"; a changed value is still a difference.
      mayOmit: ['serviceCategory', 'serviceType'],
    },
    // Ruling 27 / gp-connect-1.2.7.md amend: only description and comment may be amended.
    amend: {
      mayChange: ['description', 'comment', 'meta.versionId', 'meta.lastUpdated'],
      submittedStatus: 'unchanged',
      storedNotCancelled: true,
      storedStartInFuture: true,
      // gp-connect-1.2.7.md §c: description ≤ 100, comment ≤ 500 characters (the demonstrator 422s).
      changedMaxLength: { description: 100, comment: 500 },
      // GPConnect-Appointment-1: description 1..1; an amend may change it, not empty it.
      changedNotBlank: ['description'],
    },
  },
  noStoreOnEveryResponse: true,
  answerGzip: true, // gp-connect-1.2.7.md §a: Accept-Encoding gzip, "Servers SHALL support gzip"
};
