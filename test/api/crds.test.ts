// The CRDs in crds/ are generated from the schemas (npm run gen:crds): they must be current,
// structural as Kubernetes requires, and accept what `sluice validate` accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import {
  SLUICE_CRDS,
  crdFileName,
  generateCrd,
  renderCrdYaml,
  toStructural,
  type JsonSchema,
} from '../../src/api/crd.js';

const CRDS = join(import.meta.dirname, '..', '..', 'crds');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'flagger');

for (const options of SLUICE_CRDS) {
  const file = crdFileName(options);
  test(`crds/${file} is up to date`, () => {
    const path = join(CRDS, file);
    assert.ok(existsSync(path), `crds/${file} is missing: run npm run gen:crds`);
    assert.equal(
      readFileSync(path, 'utf8'),
      renderCrdYaml(generateCrd(options)),
      `crds/${file} is stale: run npm run gen:crds`,
    );
  });
}

test('crds/ holds exactly the generated CRDs', () => {
  const present = readdirSync(CRDS)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.deepEqual(present, SLUICE_CRDS.map(crdFileName).sort(), 'run npm run gen:crds');
});

/** Problems that make a schema non-structural (apiextensions.k8s.io/v1 rules), by location. */
function structuralProblems(node: JsonSchema, at: string, out: string[] = []): string[] {
  for (const key of Object.keys(node)) {
    if (key.startsWith('x-sluice-')) out.push(`${at}: sluice annotation ${key}`);
  }
  const special =
    node['x-kubernetes-int-or-string'] === true ||
    node['x-kubernetes-preserve-unknown-fields'] === true;
  if (typeof node.type !== 'string' && !special) out.push(`${at}: no type`);
  for (const k of ['anyOf', 'oneOf', 'allOf', 'not', '$ref', 'const', 'patternProperties']) {
    if (k in node) out.push(`${at}: ${k}`);
  }
  if (node.properties && node.additionalProperties !== undefined) {
    out.push(`${at}: properties with additionalProperties`);
  }
  if (node.additionalProperties === false) out.push(`${at}: additionalProperties false`);
  if (node.type === 'array' && node.items === undefined) out.push(`${at}: array without items`);
  if (node.uniqueItems === true) out.push(`${at}: uniqueItems`);
  for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, JsonSchema>)) {
    structuralProblems(v, `${at}.${k}`, out);
  }
  if (typeof node.additionalProperties === 'object') {
    structuralProblems(node.additionalProperties as JsonSchema, `${at}{}`, out);
  }
  if (node.items) structuralProblems(node.items as JsonSchema, `${at}[]`, out);
  return out;
}

function openApiSchema(crd: JsonSchema): JsonSchema {
  const version = ((crd.spec as JsonSchema).versions as JsonSchema[])[0] as JsonSchema;
  return (version.schema as JsonSchema).openAPIV3Schema as JsonSchema;
}

for (const options of SLUICE_CRDS) {
  test(`${options.definition.kind} CRD: structural schema, names, status, columns`, () => {
    const crd = generateCrd(options);
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(crd.kind, 'CustomResourceDefinition');
    assert.equal((crd.metadata as JsonSchema).name, `${options.plural}.sluice.dev`);
    const spec = crd.spec as JsonSchema;
    assert.equal(spec.group, 'sluice.dev');
    assert.equal(spec.scope, 'Namespaced');
    assert.deepEqual((spec.names as JsonSchema).kind, options.definition.kind);
    const version = (spec.versions as JsonSchema[])[0] as JsonSchema;
    assert.deepEqual(
      { name: version.name, served: version.served, storage: version.storage },
      { name: 'v1beta1', served: true, storage: true },
    );
    assert.deepEqual(version.subresources, { status: {} });
    const schema = openApiSchema(crd);
    assert.deepEqual(structuralProblems(schema, '$'), []);
    assert.deepEqual((schema.properties as JsonSchema).metadata, { type: 'object' });
    // The text holds no sluice annotation anywhere (printer columns, descriptions included).
    assert.doesNotMatch(renderCrdYaml(crd), /x-sluice-/);
  });
}

test('Canary CRD prints Status, Weight and LastTransitionTime like Flagger', () => {
  const crd = generateCrd(SLUICE_CRDS[0] as (typeof SLUICE_CRDS)[number]);
  const version = ((crd.spec as JsonSchema).versions as JsonSchema[])[0] as JsonSchema;
  const columns = (version.additionalPrinterColumns as JsonSchema[]).filter(
    (c) => c.priority === undefined,
  );
  assert.deepEqual(
    columns.map((c) => [c.name, c.jsonPath]),
    [
      ['Status', '.status.phase'],
      ['Weight', '.status.canaryWeight'],
      ['LastTransitionTime', '.status.lastTransitionTime'],
    ],
  );
});

test('unions become enums, nullable, int-or-string or preserved fields', () => {
  const cases: [JsonSchema, JsonSchema][] = [
    [
      { anyOf: [{ const: 'a' }, { const: 'b', 'x-sluice-unsupported': 'no' }] },
      { type: 'string', enum: ['a', 'b'] },
    ],
    [{ anyOf: [{ type: 'null' }, { type: 'string' }] }, { type: 'string', nullable: true }],
    [
      { anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true },
      { 'x-kubernetes-int-or-string': true },
    ],
    [{ anyOf: [{ type: 'integer' }, { type: 'string' }] }, { 'x-kubernetes-int-or-string': true }],
    [
      { anyOf: [{ type: 'boolean' }, { type: 'object' }] },
      { 'x-kubernetes-preserve-unknown-fields': true },
    ],
    [{ 'x-sluice-passthrough': true }, { 'x-kubernetes-preserve-unknown-fields': true }],
    [{}, { 'x-kubernetes-preserve-unknown-fields': true }],
    [{ const: 3 }, { type: 'integer', enum: [3] }],
    [
      { type: 'object', patternProperties: { '^(.*)$': { type: 'string' } } },
      { type: 'object', additionalProperties: { type: 'string' } },
    ],
    [
      {
        type: 'object',
        additionalProperties: false,
        required: ['a'],
        properties: { a: { type: 'string', 'x-sluice-deprecated': 'b' } },
      },
      { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
    ],
    [{ type: 'object' }, { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }],
    [
      { type: 'string', format: 'regex', pattern: '^a' },
      { type: 'string', pattern: '^a' },
    ],
    [
      { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 },
      { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } },
    ],
  ];
  for (const [input, expected] of cases) {
    const before = structuredClone(input);
    assert.deepEqual(toStructural(input), expected, JSON.stringify(input));
    assert.deepEqual(input, before, 'the input is not mutated');
  }
});

test('the Canary CRD schema accepts the Flagger fixtures converted to sluice.dev', () => {
  // Formats are the API server's business (it checks date-time); ajv need not know them.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const byKind = new Map(
    SLUICE_CRDS.map((o) => [o.definition.kind, ajv.compile(openApiSchema(generateCrd(o)))]),
  );
  for (const file of ['podinfo-istio.yaml', 'legacy-metrics.yaml']) {
    for (const doc of parseAllDocuments(readFileSync(join(FIXTURES, file), 'utf8'))) {
      const obj = doc.toJS() as Record<string, unknown>;
      const validate = byKind.get(String(obj.kind));
      assert.ok(validate, String(obj.kind));
      assert.equal(
        validate({ ...obj, apiVersion: 'sluice.dev/v1beta1' }),
        true,
        JSON.stringify(validate.errors),
      );
    }
  }
  // ...and rejects what the schema rejects, such as a Canary without targetRef.
  const canary = parseAllDocuments(readFileSync(join(FIXTURES, 'podinfo-istio.yaml'), 'utf8'))[0];
  const { targetRef: _targetRef, ...spec } = (canary?.toJS() as { spec: Record<string, unknown> })
    .spec;
  assert.equal(
    byKind.get('Canary')?.({
      apiVersion: 'sluice.dev/v1beta1',
      kind: 'Canary',
      metadata: { name: 'x' },
      spec,
    }),
    false,
  );
});
