import type { Standard } from './types.js';

const NS = 'urn:nhs:names:services:careconnect:fhir:rest';

/**
 * NHS Booking 2.0.1-beta (UEC appointment booking, Care Connect profiles): the default standard.
 * Sources: ../shared/spec/nhs-booking-2.0.1.md §a, §b (scopes), §e (other interactions).
 */
export const nhsBooking: Standard = {
  name: 'nhs-booking',
  title: 'NHS Booking 2.0.1',
  interactions: [
    { name: 'cancel', id: `${NS}:update:appointment`, method: 'PUT', path: '/Appointment/{id}', scope: 'patient/appointment.write', kind: 'cancel' },
    { name: 'read', id: `${NS}:read:appointment`, method: 'GET', path: '/Appointment/{id}', scope: 'patient/appointment.read', kind: 'passthrough', addEtagFromBody: true },
    { name: 'vread', id: `${NS}:read:appointment`, method: 'GET', path: '/Appointment/{id}/_history/{vid}', scope: 'patient/appointment.read', kind: 'history', addEtagFromBody: true },
    // §e: the search scope is not stated; the 2021 texts give reads patient/appointment.read.
    { name: 'search', id: `${NS}:search:appointment`, method: 'GET', path: '/Appointment', scope: 'patient/appointment.read', kind: 'passthrough' },
    { name: 'book', id: `${NS}:create:appointment`, method: 'POST', path: '/Appointment', scope: 'patient/appointment.write', kind: 'passthrough' },
    { name: 'slot-search', id: `${NS}:search:slot`, method: 'GET', path: '/Slot', scope: 'organization/slot.read', kind: 'passthrough' },
    { name: 'metadata', id: `${NS}:read:metadata`, method: 'GET', path: '/metadata', scope: 'organization/slot.read', kind: 'passthrough' },
  ],
  profile: 'careconnect-appointment-1',
  operationOutcomeProfile: 'https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1',
  errorOverrides: {},
  // Ruling 21: XML too, with the STU3-era legacy name NHS Booking's test tool still sends.
  requestMediaTypes: ['application/fhir+json', 'application/json+fhir', 'application/fhir+xml', 'application/xml+fhir'],
  ifMatchRequired: true,
  jwt: { requirePractitioner: false, validateEmbeddedResources: false, completePractitioner: true, sdsIdFormat: true, bearerChallenge: true },
  cancel: {
    reasonExtensionUrl: 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1',
    reasonRequired: false,
    forbiddenElements: [],
    rejectPastStart: false,
    relativeReferencesOnly: false,
  },
  changeSets: {
    cancel: {
      mayChange: ['status', 'meta.versionId', 'meta.lastUpdated'],
      mayAddExtension: 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1',
      submittedStatus: 'cancelled',
      storedNotCancelled: true,
      storedStartInFuture: false,
    },
  },
  noStoreOnEveryResponse: false,
  answerGzip: false, // the standard says nothing of content codings: answers as before
};
