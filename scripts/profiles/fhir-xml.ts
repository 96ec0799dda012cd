/**
 * Just enough of FHIR's XML format to read the StructureDefinitions in shared/spec/data that have
 * no JSON copy (the GP Connect extensions). Build-time only: the gateway's own XML reader is not
 * this. Attributes `value` become primitive values; the narrative (`text`) is dropped.
 */
type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPEATING = new Set([
  'element', 'type', 'constraint', 'context', 'condition', 'mapping', 'alias', 'contact', 'telecom',
  'discriminator', 'extension', 'jurisdiction', 'keyword', 'representation', 'useContext', 'targetProfile',
]);
const NUMERIC = new Set(['min']);

function decode(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'apos' ? "'" :
    String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));
}

export function xmlToFhirJson(xml: string): J {
  const body = xml.replace(/<\?xml[^>]*\?>/g, '').replace(/<!--[\s\S]*?-->/g, '').replace(/<text>[\s\S]*?<\/text>/, '');
  const tag = /<(\/?)([A-Za-z][\w]*)((?:\s+[\w:]+\s*=\s*"[^"]*")*)\s*(\/?)>/g;
  const stack: { name: string; obj: J }[] = [];
  let root: J | undefined;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const [, close, name, attrs, selfClose] = m as unknown as [string, string, string, string, string];
    if (close) {
      stack.pop();
      continue;
    }
    const obj: J = {};
    let value: string | undefined;
    for (const a of attrs.matchAll(/([\w:]+)\s*=\s*"([^"]*)"/g)) {
      if (a[1] === 'value') value = decode(a[2]!);
      else if (a[1] === 'url' || a[1] === 'id') obj[a[1]] = decode(a[2]!);
    }
    const parent = stack[stack.length - 1];
    if (!parent) {
      root = obj;
      obj.resourceType = name;
    } else {
      const v: unknown = value !== undefined ? (NUMERIC.has(name) ? Number(value) : value === 'true' ? true : value === 'false' ? false : value) : obj;
      if (REPEATING.has(name)) (parent.obj[name] ??= []).push(v);
      else parent.obj[name] = v;
    }
    if (!selfClose) stack.push({ name, obj });
  }
  if (!root) throw new Error('no XML root element');
  return root;
}
