import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run-cli.js';

let dir: string;

const GOOD = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
spec:
  selector:
    istio: ingressgateway
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*"]
`;
const BAD = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: broken
spec:
  servers:
    - port: {number: 80, protocol: HTTP}
      hostz: ["*"]
      hosts: ["*"]
`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-validate-'));
  mkdirSync(join(dir, 'good'));
  mkdirSync(join(dir, 'bad'));
  writeFileSync(join(dir, 'good', 'gateway.yaml'), GOOD);
  writeFileSync(join(dir, 'bad', 'gateway.yaml'), GOOD);
  writeFileSync(join(dir, 'bad', 'broken.yaml'), BAD);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('validate exits 0 on valid manifests and prints a summary line', async () => {
  const r = await runCli(['validate', 'good'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim(), '1 file, 1 object (1 Gateway): 0 errors, 0 warnings');
});

test('validate exits 1 and prints compiler-style diagnostics on errors', async () => {
  const r = await runCli(['validate', 'bad'], { cwd: dir });
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.equal(
    lines[0],
    'bad/broken.yaml:8:7: error SLUICE_FIELD_UNKNOWN: spec.servers[0].hostz is not a known field; did you mean "hosts"? (Gateway default/broken)',
  );
  assert.equal(lines.at(-1), '2 files, 2 objects (2 Gateway): 1 error, 0 warnings');
});

test('validate --output json gives diagnostics and summary', async () => {
  const r = await runCli(['validate', '--output', 'json', 'bad'], { cwd: dir });
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as {
    diagnostics: { code: string; line: number; col: number; path: string }[];
    summary: { errors: number };
  };
  assert.deepEqual(
    out.diagnostics.map((d) => [d.code, d.line, d.col, d.path]),
    [['SLUICE_FIELD_UNKNOWN', 8, 7, 'spec.servers[0].hostz']],
  );
  assert.equal(out.summary.errors, 1);
});

test('validate --output github prints workflow annotations', async () => {
  const r = await runCli(['validate', '--output', 'github', 'bad'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout.split('\n')[0],
    '::error file=bad/broken.yaml,line=8,col=7,title=SLUICE_FIELD_UNKNOWN::error SLUICE_FIELD_UNKNOWN: spec.servers[0].hostz is not a known field; did you mean "hosts"? (Gateway default/broken)',
  );
});

test('validate exits 2 on a missing path and on a bad option', async () => {
  const missing = await runCli(['validate', 'nowhere'], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stdout + missing.stderr, /no such file or folder: nowhere/);
  const badOption = await runCli(['validate', '--output', 'xml', 'good'], { cwd: dir });
  assert.equal(badOption.code, 2);
  assert.match(badOption.stderr, /Allowed choices are text, json, github/);
});

test('validate defaults to the current folder', async () => {
  const r = await runCli(['validate'], { cwd: join(dir, 'good') });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^1 file, 1 object/);
});
