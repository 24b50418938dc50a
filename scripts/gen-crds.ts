// Writes the CustomResourceDefinitions of sluice's own kinds to crds/ (`npm run gen:crds`).
// The generation itself is src/api/crd.ts; test/api/crds.test.ts fails when crds/ is stale.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SLUICE_CRDS, crdFileName, generateCrd, renderCrdYaml } from '../src/api/crd.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'crds');
mkdirSync(dir, { recursive: true });

const wanted = new Set<string>();
for (const options of SLUICE_CRDS) {
  const name = crdFileName(options);
  wanted.add(name);
  writeFileSync(join(dir, name), renderCrdYaml(generateCrd(options)));
  console.log(`wrote crds/${name}`);
}
// A kind that was renamed or removed must not leave its old CRD behind.
for (const name of readdirSync(dir)) {
  if (name.endsWith('.yaml') && !wanted.has(name)) {
    rmSync(join(dir, name));
    console.log(`removed crds/${name}`);
  }
}
