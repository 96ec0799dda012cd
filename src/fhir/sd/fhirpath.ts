import fhirpath from 'fhirpath';
import stu3 from 'fhirpath/fhir-context/stu3';
import { referencedType } from './model.js';

/**
 * HL7's FHIRPath engine (`fhirpath`, STU3 model) for the StructureDefinitions' constraints.
 * Each distinct expression is compiled once (at start-up, when the validator is created).
 * `trace()` (used by ref-1) must never reach the console: it would print body values.
 */
type Compiled = (node: unknown, env: Record<string, unknown>) => unknown[];
const compiled = new Map<string, Compiled>();
/** The resource whose constraints are being evaluated (evaluation is synchronous; set by holds()). */
let evaluating: unknown;

/**
 * The engine's node class (not exported by its bundle; taken from a node it returns) and a context
 * with the STU3 model: what resolve() returns must be typed, or `is Practitioner` is always false.
 */
const engineNode = fhirpath.evaluate({ resourceType: 'Basic' }, 'Basic', undefined, stu3, { resolveInternalTypes: false })[0] as {
  ctx: unknown;
  constructor: new (ctx: unknown, data: unknown, ...rest: null[]) => unknown;
};

/**
 * `resolve()` without a network (the engine's own is asynchronous and fetches, so every
 * constraint using it — rfr-1, cmr-1, mps-1, ctm-1 — failed as an engine error): a `#id` reference
 * is the contained resource with that id, a literal `Type/id` (relative or absolute, with or
 * without `_history`) a resource of that type, as validators judge references they cannot fetch;
 * anything else resolves to nothing.
 */
function resolveWithoutFetching(coll: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const v of coll) {
    const ref = v && typeof v === 'object' ? (v as { reference?: unknown }).reference : undefined;
    if (typeof ref !== 'string') continue;
    let target: unknown;
    if (ref.startsWith('#')) {
      const contained = (evaluating as { contained?: unknown } | undefined)?.contained;
      target = Array.isArray(contained) ? contained.find((c) => (c as { id?: unknown } | null)?.id === ref.slice(1)) : undefined;
    } else {
      const type = referencedType(ref);
      if (type) target = { resourceType: type };
    }
    if (target === undefined) continue;
    out.push(new engineNode.constructor(engineNode.ctx, target, null, null, null, null));
  }
  return out;
}

const quiet = { traceFn: () => undefined, userInvocationTable: { resolve: { fn: resolveWithoutFetching } } };
const UCUM = 'http://unitsofmeasure.org';

export function compileConstraint(fpBase: string, expression: string): Compiled {
  const key = fpBase + '\u0000' + expression;
  let fn = compiled.get(key);
  if (!fn) {
    const f = fhirpath.compile({ base: fpBase, expression }, stu3, quiet as unknown as Parameters<typeof fhirpath.compile>[2]) as unknown as (r: unknown, env: Record<string, unknown>) => unknown[];
    fn = (node, env) => f(node, env);
    Object.defineProperty(fn, 'name', { value: `${fpBase}: ${expression}` });
    compiled.set(key, fn);
  }
  return fn;
}

/**
 * True when the constraint holds: it is violated only when the engine answers `false`. An empty
 * answer (a Reference with no `reference` for ref-1, a period whose ends have different
 * precisions for per-1) is not a violation: FHIR says a constraint fails when it evaluates to
 * false, and the gateway is never stricter than FHIR (ruling 20). An engine error is a violation
 * (fail closed).
 */
export function holds(fn: Compiled, node: unknown, resource: unknown, rootResource: unknown): boolean {
  let r: unknown[];
  evaluating = rootResource;
  try {
    r = fn(node, { resource, rootResource, ucum: UCUM, context: node });
  } catch {
    return false;
  } finally {
    evaluating = undefined;
  }
  return !(r.length === 1 && r[0] === false);
}
