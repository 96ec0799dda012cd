import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type AnySchemaObject, type ErrorObject } from 'ajv';
import { profilesDir } from '../paths.js';

/**
 * Profile validation of a submitted Appointment (README ruling 7: failure -> 422 INVALID_RESOURCE,
 * one issue per violation with `expression` giving the element path).
 *
 * The structural part of each profile is data: `config/profiles/<name>.schema.json` (JSON Schema
 * draft-07, every constraint annotated with its source in `$comment`). What JSON Schema cannot
 * express is checked here: dom-3, ref-1, unique contained ids, app-1, app-2, app-3, ext-1 (with a
 * single value[x]), and the "max 1" cardinality of extension slices (draft-07 has no maxContains).
 *
 * Diagnostics never echo submitted values (CONTRIBUTING: no patient data); element names from the
 * body may appear in `expression` only (truncated).
 */

export type ProfileName = 'careconnect-appointment-1' | 'gpconnect-appointment-1';
/** expression is FHIRPath-like: 'Appointment.participant[0].status' */
export interface ProfileIssue {
  expression: string;
  diagnostics: string;
}
/** [] = valid */
export type ProfileValidator = (resource: unknown) => ProfileIssue[];

const MAX_ISSUES = 50;
/** Upper bound on nodes visited by the invariant walk; bodies are already size-limited (ruling 6). */
const MAX_WALK_NODES = 500_000;
const MAX_NAME_IN_EXPRESSION = 64;
const ROOT = 'Appointment';

/**
 * Extension slices with max 1 (draft-07 cannot count matches of `contains`).
 * CareConnect-Appointment-1 v1.1.0: all three slices 0..1 (nhs-booking-2.0.1.md §c).
 * GPConnect-Appointment-1 v1.6.0: practitionerRole is 0..*, the others 0..1 (gp-connect-1.2.7.md §c).
 */
const SLICES_MAX_ONE: Record<ProfileName, Record<string, string>> = {
  'careconnect-appointment-1': {
    'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-DeliveryChannel-1': 'deliveryChannel',
    'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1':
      'appointmentCancellationReason',
    'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-BookingOrganisation-1': 'bookingOrganisation',
  },
  'gpconnect-appointment-1': {
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1':
      'appointmentCancellationReason',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1': 'bookingOrganisation',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2': 'deliveryChannel',
  },
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Obj, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

/** An element name from the body, made safe and short for an expression. */
function safeName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return cleaned.length > MAX_NAME_IN_EXPRESSION ? cleaned.slice(0, MAX_NAME_IN_EXPRESSION) + '...' : cleaned;
}

/** `/participant/0/status` -> `Appointment.participant[0].status` (array-ness taken from the data). */
function pointerToExpression(root: unknown, pointer: string): string {
  let expr = ROOT;
  if (pointer === '') return expr;
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      expr += `[${/^\d+$/.test(seg) ? seg : '?'}]`;
      cur = cur[Number(seg)];
    } else {
      expr += '.' + safeName(seg);
      cur = isObj(cur) ? own(cur, seg) : undefined;
    }
  }
  return expr;
}

function commentOf(schema: unknown): string | undefined {
  return isObj(schema) && typeof schema['$comment'] === 'string' ? schema['$comment'] : undefined;
}

function titleOf(schema: unknown): string | undefined {
  return isObj(schema) && typeof schema['title'] === 'string' ? schema['title'] : undefined;
}

function withSource(message: string, comment: string | undefined): string {
  return comment ? `${message} (${comment})` : message;
}

/**
 * One ajv error -> one issue, or null for errors that only summarise others (`if`, the inner
 * errors of `propertyNames`). Messages are built from the schema and the error params only,
 * never from `error.data`.
 */
function toIssue(root: unknown, e: ErrorObject): ProfileIssue | null {
  if (e.keyword === 'if') return null;
  // failures of the `contains` subschema on each item only explain the `contains` error itself
  if (e.schemaPath.includes('/contains/')) return null;
  if ((e as { propertyName?: string }).propertyName !== undefined) return null;
  let expression = pointerToExpression(root, e.instancePath);
  const parent: unknown = e.parentSchema;
  const params = e.params as Record<string, unknown>;
  const comment = commentOf(parent);
  const title = titleOf(parent);
  let diagnostics: string;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params['missingProperty'] ?? '');
      expression += '.' + safeName(missing);
      const props = isObj(parent) ? parent['properties'] : undefined;
      const propComment = isObj(props) ? commentOf(own(props, missing)) : undefined;
      diagnostics = withSource('required element is missing', propComment ?? comment);
      break;
    }
    case 'additionalProperties':
      expression += '.' + safeName(String(params['additionalProperty'] ?? ''));
      diagnostics = 'element is not defined in the profile (unknown elements are not allowed)';
      break;
    case 'propertyNames':
      expression += '.' + safeName(String(params['propertyName'] ?? ''));
      diagnostics = withSource('element is not allowed here', comment);
      break;
    case 'type':
      diagnostics = title
        ? `wrong type: must be a FHIR ${title} (JSON ${String(params['type'])})`
        : withSource(`wrong type: must be JSON ${String(params['type'])}`, comment);
      break;
    case 'pattern':
      diagnostics = `invalid FHIR ${title ?? 'value'} format`;
      break;
    case 'enum':
      diagnostics = withSource(
        'code is not in the required value set' +
          (Array.isArray(e.schema) ? `; allowed: ${(e.schema as unknown[]).map(String).join(', ')}` : ''),
        comment,
      );
      break;
    case 'const':
      diagnostics = withSource(`must be ${JSON.stringify(e.schema)}`, comment);
      break;
    case 'contains':
      diagnostics = withSource('does not contain the required entry', comment);
      break;
    case 'not':
      diagnostics = withSource('element is not allowed', comment);
      break;
    case 'false schema':
      diagnostics = 'element is not allowed';
      break;
    case 'minItems':
      diagnostics = withSource(`must have at least ${String(params['limit'])} item(s)`, comment);
      break;
    case 'maxItems':
      diagnostics = withSource(`must have at most ${String(params['limit'])} item(s)`, comment);
      break;
    case 'minProperties':
      diagnostics = 'element must not be empty (ele-1)';
      break;
    case 'minimum':
    case 'maximum':
      diagnostics = `value out of range for FHIR ${title ?? 'number'}`;
      break;
    default:
      diagnostics = withSource(`does not conform to the profile (${e.keyword})`, comment);
  }
  return { expression, diagnostics };
}

interface RefSite {
  at: WalkFrame;
  reference: string;
}

/**
 * A node of the invariant walk. Its path is rendered only when a reference or an issue needs it:
 * building a string for every element made the walk the gateway's largest allocator per cancel
 * (issue 6 profile).
 */
interface WalkFrame {
  node: unknown;
  parent: WalkFrame | undefined;
  /** Array index, or the raw element name (made safe when rendered). */
  seg: number | string;
  inContained: boolean;
}

function pathOf(f: WalkFrame): string {
  let path = '';
  for (let cur: WalkFrame | undefined = f; cur.parent !== undefined; cur = cur.parent) {
    path = (typeof cur.seg === 'number' ? `[${cur.seg}]` : `.${safeName(cur.seg)}`) + path;
  }
  return ROOT + path;
}

/**
 * The invariants JSON Schema cannot express. Iterative walk (no recursion: arbitrary nesting must
 * not overflow the stack), bounded, cycle-safe.
 */
function checkInvariants(res: Obj, profile: ProfileName): ProfileIssue[] {
  const issues: ProfileIssue[] = [];

  // --- contained ids (unique; needed by dom-3 and ref-1)
  const contained = own(res, 'contained');
  const containedIds = new Set<string>();
  const containedList: { index: number; id: string }[] = [];
  if (Array.isArray(contained)) {
    contained.forEach((c, index) => {
      if (!isObj(c)) return;
      const id = own(c, 'id');
      if (typeof id !== 'string') return;
      if (containedIds.has(id)) {
        issues.push({
          expression: `${ROOT}.contained[${index}].id`,
          diagnostics: 'contained resource ids must be unique within the resource',
        });
      }
      containedIds.add(id);
      containedList.push({ index, id });
    });
  }

  // --- walk: every `reference` string (dom-3, ref-1), every extension (ext-1) outside contained
  const refs: RefSite[] = [];
  const seen = new WeakSet<object>();
  const stack: WalkFrame[] = [{ node: res, parent: undefined, seg: '', inContained: false }];
  let budget = MAX_WALK_NODES;
  while (stack.length > 0 && budget-- > 0) {
    const frame = stack.pop()!;
    const { node, inContained } = frame;
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push({ node: node[i], parent: frame, seg: i, inContained });
      continue;
    }
    const o = node as Obj;
    const ref = own(o, 'reference');
    if (typeof ref === 'string') refs.push({ at: frame, reference: ref });
    for (const key of Object.keys(o)) {
      const child = o[key];
      if (!inContained && (key === 'extension' || key === 'modifierExtension') && Array.isArray(child)) {
        child.forEach((ext, i) => {
          if (!isObj(ext)) return;
          const values = Object.keys(ext).filter((k) => /^value[A-Z]/.test(k));
          const nested = own(ext, 'extension');
          const hasNested = Array.isArray(nested) && nested.length > 0;
          if (values.length > 1) {
            issues.push({ expression: `${pathOf(frame)}.${safeName(key)}[${i}]`, diagnostics: 'an extension has at most one value[x]' });
          }
          if (hasNested === values.length > 0) {
            issues.push({
              expression: `${pathOf(frame)}.${safeName(key)}[${i}]`,
              diagnostics: 'ext-1: an extension must have either extensions or a value[x], not both',
            });
          }
        });
      }
      if (typeof child === 'object' && child !== null) {
        stack.push({ node: child, parent: frame, seg: key, inContained: inContained || (frame.parent === undefined && key === 'contained') });
      }
    }
  }

  // dom-3: every contained resource is referenced by '#id' from elsewhere in the resource
  const referenced = new Set(refs.map((r) => r.reference));
  for (const { index, id } of containedList) {
    if (!referenced.has('#' + id)) {
      issues.push({
        expression: `${ROOT}.contained[${index}]`,
        diagnostics: "dom-3: contained resource is not referenced by '#<id>' from elsewhere in the resource",
      });
    }
  }
  // ref-1: a local reference resolves to a contained resource
  for (const r of refs) {
    if (r.reference.startsWith('#') && !containedIds.has(r.reference.slice(1))) {
      issues.push({
        expression: `${pathOf(r.at)}.reference`,
        diagnostics: 'ref-1: local reference does not resolve to a contained resource',
      });
    }
  }

  // slice cardinality: the named extension slices are 0..1
  const extension = own(res, 'extension');
  if (Array.isArray(extension)) {
    const slices = SLICES_MAX_ONE[profile];
    const counts = new Map<string, number>();
    extension.forEach((ext, i) => {
      if (!isObj(ext)) return;
      const url = own(ext, 'url');
      if (typeof url !== 'string' || !Object.prototype.hasOwnProperty.call(slices, url)) return;
      const n = (counts.get(url) ?? 0) + 1;
      counts.set(url, n);
      if (n > 1) {
        issues.push({
          expression: `${ROOT}.extension[${i}]`,
          diagnostics: `extension slice ${slices[url]} is 0..1: it appears more than once`,
        });
      }
    });
  }

  // app-1: participant has a type or an actor
  const participant = own(res, 'participant');
  if (Array.isArray(participant)) {
    participant.forEach((p, i) => {
      if (!isObj(p)) return;
      const type = own(p, 'type');
      const hasType = Array.isArray(type) ? type.length > 0 : type !== undefined;
      if (!hasType && own(p, 'actor') === undefined) {
        issues.push({
          expression: `${ROOT}.participant[${i}]`,
          diagnostics: 'app-1: either the type or actor on the participant SHALL be specified',
        });
      }
    });
  }

  // app-2 / app-3 (invariants on Appointment, so reported on the resource)
  const hasStart = own(res, 'start') !== undefined;
  const hasEnd = own(res, 'end') !== undefined;
  if (hasStart !== hasEnd) {
    issues.push({ expression: ROOT, diagnostics: 'app-2: either start and end are specified, or neither' });
  }
  const status = own(res, 'status');
  if (!(hasStart && hasEnd) && status !== 'proposed' && status !== 'cancelled') {
    issues.push({
      expression: ROOT,
      diagnostics: 'app-3: only proposed or cancelled appointments can be missing start/end dates',
    });
  }
  return issues;
}

function finish(all: ProfileIssue[]): ProfileIssue[] {
  const seen = new Set<string>();
  const unique: ProfileIssue[] = [];
  for (const issue of all) {
    const key = issue.expression + '\u0000' + issue.diagnostics;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(issue);
  }
  if (unique.length <= MAX_ISSUES) return unique;
  const kept = unique.slice(0, MAX_ISSUES - 1);
  kept.push({ expression: ROOT, diagnostics: `${unique.length - kept.length} further profile issues not listed` });
  return kept;
}

export function createProfileValidator(profile: ProfileName): ProfileValidator {
  const schema = JSON.parse(readFileSync(join(profilesDir, `${profile}.schema.json`), 'utf8')) as AnySchemaObject;
  // verbose: the error carries its parentSchema, whose $comment names the constraint's source.
  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  const validate = ajv.compile(schema);

  return (resource: unknown): ProfileIssue[] => {
    try {
      if (!isObj(resource)) {
        return [{ expression: ROOT, diagnostics: 'the resource must be a JSON object' }];
      }
      const issues: ProfileIssue[] = [];
      if (!validate(resource)) {
        for (const e of validate.errors ?? []) {
          const issue = toIssue(resource, e);
          if (issue) issues.push(issue);
        }
      }
      issues.push(...checkInvariants(resource, profile));
      return finish(issues);
    } catch {
      // e.g. a stack overflow on pathological nesting: still an answer, never a throw
      return [{ expression: ROOT, diagnostics: 'the resource could not be validated against the profile' }];
    }
  };
}
