import t from 'tap';
import { fuzzSeeds, mutate, runCase } from '../../scripts/fuzz/xml-cases.js';

// The seeded share of the XML fuzz run (issue 15); `npm run fuzz` runs >= 5,000 of the same cases.
const CASES = 600;

t.test(`${CASES} mutated FHIR XML bodies: no throw, accepted output is a plain resource that round-trips`, async (t) => {
  const seeds = fuzzSeeds(new URL('../../', import.meta.url));
  const counts = { accepted: 0, refused: 0 };
  for (let i = 0; i < CASES; i++) {
    try {
      counts[runCase(mutate(seeds, 4242 + i))]++;
    } catch (e) {
      t.fail(`case seed ${4242 + i}: ${(e as Error).message}`);
    }
  }
  t.equal(counts.accepted + counts.refused, CASES);
  t.ok(counts.refused > 0 && counts.accepted > 0, `both outcomes exercised (${counts.accepted} accepted, ${counts.refused} refused)`);
});

t.test('the unmutated seeds are accepted', async (t) => {
  for (const s of fuzzSeeds(new URL('../../', import.meta.url))) t.equal(runCase(s), 'accepted');
});
