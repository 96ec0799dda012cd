import { randomUUID } from 'node:crypto';
import { SPINE_CODE_SYSTEM, SPINE_DISPLAYS, type ErrorMapping, type Issue } from '../errors.js';

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  id: string;
  meta: { profile: string[] };
  issue: Array<{
    severity: 'error';
    code: string;
    details: { coding: [{ system: string; code: string; display: string }] };
    diagnostics: string;
    location?: string[];
    expression?: string[];
  }>;
}

/** Ruling 14: the shape of every gateway-made error body. Pure; the id is fresh per answer. */
export function buildOperationOutcome(mapping: ErrorMapping, issues: readonly Issue[], profile: string): OperationOutcome {
  const coding = { system: SPINE_CODE_SYSTEM, code: mapping.spine, display: SPINE_DISPLAYS[mapping.spine] } as const;
  return {
    resourceType: 'OperationOutcome',
    id: randomUUID(),
    meta: { profile: [profile] },
    issue: issues.map((i) => ({
      severity: 'error' as const,
      code: i.issue ?? mapping.issue,
      details: { coding: [{ ...coding }] },
      diagnostics: i.diagnostics,
      // FHIR STU3 OperationOutcome.issue.location: "for HTTP errors, "http." + the parameter name";
      // kept in expression as well, where the gateway has always put it.
      ...(i.expression?.startsWith('http.') ? { location: [i.expression] } : {}),
      ...(i.expression ? { expression: [i.expression] } : {}),
    })),
  };
}

/** Is this parsed body an OperationOutcome (used to keep a provider's own error bodies, ruling 11)? */
export function isOperationOutcome(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}
