import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './run-cli.js';

let repo: string;

const gw = (name: string, port: number) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ${name}
  namespace: shop
spec:
  servers:
    - port: {number: ${port}, protocol: HTTP}
      hosts: ["*"]
`;

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: repo,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@e',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@e',
    },
  });
}

before(() => {
  repo = mkdtempSync(join(tmpdir(), 'sluice-diff-'));
  git('init', '-q', '-b', 'main');
  mkdirSync(join(repo, 'deploy'));
  writeFileSync(join(repo, 'deploy', 'a.yaml'), gw('a', 80));
  writeFileSync(join(repo, 'deploy', 'gone.yaml'), gw('gone', 80));
  writeFileSync(join(repo, 'README.md'), 'not a manifest');
  git('add', '.');
  git('commit', '-qm', 'first');
  writeFileSync(join(repo, 'deploy', 'a.yaml'), gw('a', 8080));
  rmSync(join(repo, 'deploy', 'gone.yaml'));
  writeFileSync(join(repo, 'deploy', 'new.yaml'), gw('new', 80));
  git('add', '-A');
  git('commit', '-qm', 'second');
});
after(() => rmSync(repo, { recursive: true, force: true }));

test('diff between two revisions lists created, changed and deleted objects with fields', async () => {
  const r = await runCli(['diff', '--from', 'HEAD~1', '--to', 'HEAD', '--path', 'deploy'], {
    cwd: repo,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      '~ Gateway shop/a (changed, a.yaml)',
      '    spec.servers[0].port.number: 80 → 8080',
      '- Gateway shop/gone (deleted, gone.yaml)',
      '+ Gateway shop/new (created, new.yaml)',
      '1 created, 1 changed, 1 deleted, 0 unchanged',
      '',
    ].join('\n'),
  );
});

test('--exit-code exits 1 on changes and 0 without', async () => {
  const changed = await runCli(['diff', '--from', 'HEAD~1', '--to', 'HEAD', '--exit-code'], {
    cwd: repo,
  });
  assert.equal(changed.code, 1);
  const same = await runCli(['diff', '--from', 'HEAD', '--exit-code'], { cwd: repo });
  assert.equal(same.code, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /0 created, 0 changed, 0 deleted, 2 unchanged/);
});

test('--to defaults to the working tree, uncommitted edits included', async (t) => {
  writeFileSync(join(repo, 'deploy', 'a.yaml'), gw('a', 9090));
  t.after(() => git('checkout', '--', 'deploy/a.yaml'));
  const r = await runCli(['diff', '--from', 'HEAD', '--path', 'deploy'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /spec\.servers\[0\]\.port\.number: 8080 → 9090/);
});

test('--output markdown renders a table', async () => {
  const r = await runCli(['diff', '--from', 'HEAD~1', '--to', 'HEAD', '--output', 'markdown'], {
    cwd: repo,
  });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^### sluice diff/);
  assert.match(
    r.stdout,
    /\| ~ \| Gateway shop\/a \| deploy\/a\.yaml \| `spec\.servers\[0\]\.port\.number` \| `80` \| `8080` \|/,
  );
});

test('an unknown revision is a coded error with exit 2', async () => {
  const r = await runCli(['diff', '--from', 'no-such-branch'], { cwd: repo });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /SLUICE_SOURCE_REF_NOT_FOUND/);
});

test('a folder that is not a repository is exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-norepo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(['diff', '--from', 'HEAD', '--repo', dir], { cwd: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^sluice diff: SLUICE_SOURCE_/);
});
