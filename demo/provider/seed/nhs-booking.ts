/**
 * Seed template for the demo provider (nhs-booking): a valid CareConnect-Appointment-1 booked appointment, from test/fixtures/nhs-booking/appointment.json
 * (itself from the NHS Booking 2.0.1 "get an appointment" sample provider response).
 * Copied here so the demo does not depend on test files. Instants are shifted into the future and
 * ids/versions replaced at seeding time (see ./index.ts); this object itself is never mutated.
 */
export const nhsBookingAppointment: Readonly<Record<string, unknown>> = {
  "resourceType": "Appointment",
  "id": "cfd9eba2-cc66-4195-a70c-10112ab1c838",
  "meta": {
    "versionId": "2",
    "profile": [
      "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1"
    ]
  },
  "language": "en",
  "text": {
    "status": "generated",
    "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Appointment</div>"
  },
  "contained": [
    {
      "resourceType": "DocumentReference",
      "id": "123",
      "meta": {
        "profile": [
          "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-DocumentReference-1"
        ]
      },
      "identifier": [
        {
          "system": "https://tools.ietf.org/html/rfc4122",
          "value": "6b9c59dd-675b-4026-98db-f608ef501e6e"
        }
      ],
      "status": "current",
      "type": {
        "coding": [
          {
            "system": "urn:oid:2.16.840.1.113883.2.1.3.2.4.18.17",
            "code": "POCD_MT200001GB02",
            "display": "Integrated Urgent Care Report"
          }
        ]
      },
      "indexed": "2018-12-20T09:43:41+11:00",
      "content": [
        {
          "attachment": {
            "contentType": "application/hl7-v3+xml",
            "language": "en"
          }
        }
      ]
    },
    {
      "resourceType": "Patient",
      "id": "P1",
      "meta": {
        "profile": [
          "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"
        ]
      },
      "identifier": [
        {
          "extension": [
            {
              "url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1",
              "valueCodeableConcept": {
                "coding": [
                  {
                    "system": "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1",
                    "code": "01",
                    "display": "Number present and verified"
                  }
                ]
              }
            }
          ],
          "use": "official",
          "system": "https://fhir.nhs.uk/Id/nhs-number",
          "value": "1234554321"
        }
      ],
      "name": [
        {
          "use": "official",
          "family": "Chalmers",
          "given": [
            "Peter"
          ],
          "prefix": [
            "Mr"
          ]
        }
      ],
      "telecom": [
        {
          "system": "phone",
          "value": "01234 567 890",
          "use": "home",
          "rank": 1
        }
      ],
      "gender": "male",
      "birthDate": "1974-12-25",
      "address": [
        {
          "use": "home",
          "text": "123 High Street, Leeds LS1 4HR",
          "line": [
            "123 High Street",
            "Leeds"
          ],
          "city": "Leeds",
          "postalCode": "LS1 4HR"
        }
      ]
    },
    {
      "resourceType": "Slot",
      "id": "slot002",
      "identifier": [
        {
          "system": "https://tools.ietf.org/html/rfc4122",
          "value": "1db79eb3-72f8-4569-a8dc-af8759797e0f"
        }
      ],
      "schedule": {
        "reference": "Schedule/sched1111"
      },
      "status": "busy",
      "start": "2019-01-17T15:00:00.000Z",
      "end": "2019-01-17T15:30:00.000Z"
    }
  ],
  "status": "booked",
  "description": "Reason for calling",
  "supportingInformation": [
    {
      "reference": "#123"
    }
  ],
  "start": "2019-01-17T15:00:00.000Z",
  "end": "2019-01-17T15:10:00.000Z",
  "slot": [
    {
      "reference": "#slot002"
    }
  ],
  "created": "2019-01-17T14:32:22.579+00:00",
  "participant": [
    {
      "actor": {
        "reference": "#P1",
        "identifier": {
          "use": "official",
          "system": "https://fhir.nhs.uk/Id/nhs-number",
          "value": "1234554321"
        },
        "display": "Peter James Chalmers"
      },
      "status": "accepted"
    }
  ]
};
