// The two parse paths: js-yaml reads values fast, the `yaml` package (the reference) gives
// positions and diagnostics. They must agree on every value and every position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFast, parseFile, parseFull, type ParsedDocument } from '../../src/manifests/parse.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'istio');
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ name: f, text: readFileSync(join(dir, f), 'utf8') }));

/** Every path to a leaf or container of a value. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function sameDocuments(fast: ParsedDocument[], full: ParsedDocument[], name: string) {
  assert.equal(fast.length, full.length, `${name}: document count`);
  fast.forEach((d, i) => {
    const ref = full[i] as ParsedDocument;
    assert.deepEqual(d.value, ref.value, `${name}: values of document ${i}`);
    assert.deepEqual(d.position(), ref.position(), `${name}: position of document ${i}`);
    for (const p of paths(ref.value)) {
      assert.deepEqual(d.locate(p, 'key'), ref.locate(p, 'key'), `${name}: key ${p.join('.')}`);
      assert.deepEqual(d.locate(p), ref.locate(p), `${name}: value ${p.join('.')}`);
    }
  });
}

for (const f of fixtures) {
  test(`fast and full parse agree on ${f.name}`, () => {
    const full = parseFull(f.name, f.text);
    assert.deepEqual(
      full.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    const fast = parseFast(f.name, f.text);
    if (fast === undefined) return; // a file the fast path hands to the full one (checked below)
    sameDocuments(fast.documents, full.documents, f.name);
  });
}

test('the fast path takes most conformance files, and hands over the unusual ones', () => {
  const handed = fixtures.filter((f) => parseFast(f.name, f.text) === undefined).map((f) => f.name);
  assert.ok(handed.length < fixtures.length / 4, `handed over: ${handed.join(', ')}`);
  assert.ok(
    handed.includes('crds-serviceentry-valid.yaml'),
    'the flow-list colon form goes to the full path',
  );
});

test('the fast path hands over anything it cannot read exactly like the reference', () => {
  const cases = {
    aliases: 'a: &x 1\nb: *x\n',
    tags: 'a: !custom 1\n',
    duplicate: 'a: 1\na: 2\n',
    syntax: 'a: "unclosed\n',
    emptyBetween: 'a: 1\n---\n---\nb: 2\n',
    scalarDocument: 'just text\n',
    colonInFlowList: 'a: [1.2.3.4, 2001:db8::]\n',
  };
  for (const [name, text] of Object.entries(cases)) {
    assert.equal(parseFast('f.yaml', text), undefined, name);
  }
  // ...and the full path then reads them: the alias expands, the address stays a string.
  assert.deepEqual(parseFile('f.yaml', cases.aliases).documents[0]?.value, { a: 1, b: 1 });
  assert.deepEqual(parseFile('f.yaml', cases.colonInFlowList).documents[0]?.value, {
    a: ['1.2.3.4', '2001:db8::'],
  });
});

test('leading and trailing document markers are no documents on either path', () => {
  const text = '# comment\n---\napiVersion: v1\nkind: Service\n---\n';
  const fast = parseFast('f.yaml', text);
  assert.ok(fast);
  sameDocuments(fast.documents, parseFull('f.yaml', text).documents, 'markers');
  assert.deepEqual(fast.documents[0]?.position(), { line: 3, col: 1 });
});

test('scalars resolve alike on both paths (YAML 1.2 core schema)', () => {
  const text =
    'a: 017\nb: 0x1F\nc: 1e3\nd: .5\ne: +12\nf: 0o17\ng: yes\nh: ~\ni: .inf\nj: "08"\nk: 2024-01-01\nl: true\nm: Null\n';
  const fast = parseFast('f.yaml', text);
  assert.ok(fast);
  assert.deepEqual(fast.documents[0]?.value, parseFull('f.yaml', text).documents[0]?.value);
});
