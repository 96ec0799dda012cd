import fhirpath from 'fhirpath';
import stu3 from 'fhirpath/fhir-context/stu3';

/**
 * HL7's FHIRPath engine (`fhirpath`, STU3 model) for the StructureDefinitions' constraints.
 * Each distinct expression is compiled once (at start-up, when the validator is created).
 * `trace()` (used by ref-1) must never reach the console: it would print body values.
 */
type Compiled = (node: unknown, env: Record<string, unknown>) => unknown[];
const compiled = new Map<string, Compiled>();
const quiet = { traceFn: () => undefined };
const UCUM = 'http://unitsofmeasure.org';

export function compileConstraint(fpBase: string, expression: string): Compiled {
  const key = fpBase + '\u0000' + expression;
  let fn = compiled.get(key);
  if (!fn) {
    const f = fhirpath.compile({ base: fpBase, expression }, stu3, quiet) as unknown as (r: unknown, env: Record<string, unknown>) => unknown[];
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
  try {
    r = fn(node, { resource, rootResource, ucum: UCUM, context: node });
  } catch {
    return false;
  }
  return !(r.length === 1 && r[0] === false);
}
