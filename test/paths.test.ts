import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';

t.test('packageRoot holds package.json', async (t) => {
  t.ok(existsSync(join(packageRoot, 'package.json')));
});
