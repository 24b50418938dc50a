// `npm run bench -- NAME` runs bench/NAME/index.ts (or bench/NAME.ts); the benchmark prints
// its figures and ends with one JSON line.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const name = process.argv[2];
const candidates = name ? [join('bench', name, 'index.ts'), join('bench', `${name}.ts`)] : [];
const file = candidates.find((c) => existsSync(c));
if (!file) {
  const known = readdirSync('bench')
    .filter((n) => n !== 'support')
    .map((n) => n.replace(/\.ts$/, ''));
  console.error(`usage: npm run bench -- NAME (one of: ${known.join(', ')})`);
  process.exit(2);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', file, ...process.argv.slice(3)], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
