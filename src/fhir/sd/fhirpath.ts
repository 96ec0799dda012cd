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
 * True when the constraint holds. The result is read as HL7's reference validator reads it: one
 * boolean is its value, an empty result is false, several items are true; an engine error is
 * false (fail closed).
 */
export function holds(fn: Compiled, node: unknown, resource: unknown, rootResource: unknown): boolean {
  let r: unknown[];
  try {
    r = fn(node, { resource, rootResource, ucum: UCUM, context: node });
  } catch {
    return false;
  }
  if (r.length === 1 && typeof r[0] === 'boolean') return r[0];
  return r.length > 0;
}
