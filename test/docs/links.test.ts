import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { packageRoot } from '../../src/paths.js';

/**
 * The documentation reads on its own (issue 19): every rule the README and SECURITY.md cite is
 * stated in docs/rules.md, and every relative link of SECURITY.md and docs/*.md resolves to a file
 * (and, into docs/rules.md, to a ruling) inside the repository. SECURITY.md links nowhere else.
 */

const read = (p: string) => readFileSync(join(packageRoot, p), 'utf8');
const rules = read('docs/rules.md');
const anchors = new Set([...rules.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!));

t.test('docs/rules.md states rulings 1 to 27, each under its anchor and number', async (t) => {
  for (let n = 1; n <= 27; n++) {
    t.ok(anchors.has(`ruling-${n}`), `anchor ruling-${n}`);
    t.match(rules, new RegExp(`<a id="ruling-${n}"></a>\\n### ${n}\\. \\S`), `ruling ${n} has its numbered heading`);
  }
  t.notMatch(rules, /shared\/spec/, 'no reference to a file outside the repository');
});

t.test('every "ruling N" the README and SECURITY.md cite exists in docs/rules.md', async (t) => {
  for (const f of ['README.md', 'SECURITY.md']) {
    const cited = [...read(f).matchAll(/rulings? (\d+)(?:[-–](\d+))?/g)].flatMap((m) => (m[2] ? [m[1]!, m[2]] : [m[1]!]));
    for (const n of new Set(cited)) t.ok(anchors.has(`ruling-${n}`), `${f}: ruling ${n} is in docs/rules.md`);
  }
});

t.test('relative links of SECURITY.md and docs/*.md resolve; SECURITY.md has no external link', async (t) => {
  const files = ['SECURITY.md', ...readdirSync(join(packageRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  let n = 0;
  for (const f of files) {
    const text = read(f);
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) {
        t.not(f, 'SECURITY.md', `SECURITY.md links outside the repository: ${target}`);
        continue;
      }
      n++;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path ? join(packageRoot, dirname(f), path) : join(packageRoot, f);
      t.ok(existsSync(file), `${f}: ${target} -> ${relative(packageRoot, file)} exists`);
      if (anchor && file.endsWith(join('docs', 'rules.md'))) t.ok(anchors.has(anchor), `${f}: #${anchor} is a ruling`);
    }
  }
  t.ok(n > 10, `relative links checked: ${n}`);
  t.notMatch(read('SECURITY.md'), /shared\/spec|security@|\.example\b/, 'SECURITY.md: no spec file outside the repository, no placeholder address');
  t.match(read('SECURITY.md'), /Report a vulnerability/, 'SECURITY.md: private vulnerability reporting');
});

t.test('LICENSE is MIT and package.json says so', async (t) => {
  t.match(read('LICENSE'), /^MIT License\n\nCopyright \(c\) 2026 cancel-gateway contributors\n/);
  t.equal(JSON.parse(read('package.json')).license, 'MIT');
});
