/**
 * The long XML fuzz run (issue 15): `node dist/scripts/fuzz/xml.js [cases=5000] [seed=1]`.
 * Exit 1 on the first broken invariant, printing the case seed to reproduce it (never the body).
 */
import { fuzzSeeds, mutate, runCase } from './xml-cases.js';

const cases = Number(process.argv[2] ?? 5000);
const base = Number(process.argv[3] ?? 1);
// dist/scripts/fuzz/xml.js -> the repository root holds test/fixtures
const root = new URL('../../../', import.meta.url);
const seeds = fuzzSeeds(root);
const counts = { accepted: 0, refused: 0 };
const start = process.hrtime.bigint();
for (let i = 0; i < cases; i++) {
  const seed = base * 1_000_003 + i;
  try {
    counts[runCase(mutate(seeds, seed))]++;
  } catch (e) {
    console.error(`xml fuzz: case seed ${seed} broke an invariant: ${(e as Error).message}`);
    process.exit(1);
  }
}
const ms = Number(process.hrtime.bigint() - start) / 1e6;
console.log(`xml fuzz: ${cases} cases, ${counts.accepted} accepted, ${counts.refused} refused, no invariant broken (${ms.toFixed(0)} ms)`);
