// The GitHub Action (action.yml) run as the runner would on a sample GitOps repository:
// a pull request that breaks two files gets inline annotations, a failed check and a diff
// table in the job summary; a push that only has reference warnings passes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { git, TempDirs, WorkRepo } from '../source/support/git.js';
import { ACTION_DIR, loadAction, runAction } from './run-action.js';

const EXAMPLE = readFileSync(join(ACTION_DIR, 'examples', 'github-workflow.yml'), 'utf8');

const tmp = new TempDirs();
let repo: WorkRepo;
let base: string;
let head: string;
let fixed: string;

const gateway = (port: number) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: shop
spec:
  servers:
    - port: {number: ${port}, protocol: HTTP}
      hosts: ["*"]
`;
// Line 8, column 7: a misspelt field.
const BROKEN = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: broken
  namespace: shop
spec:
  servers:
    - hostz: ["*"]
      port: {number: 81, protocol: HTTP}
      hosts: ["*"]
`;
// Line 12, column 19: a weight out of range.
const virtualService = (weight: number, gateway: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews.example.com]
  gateways: [${gateway}]
  http:
    - route:
        - destination: {host: reviews}
          weight: ${weight}
`;

before(() => {
  repo = WorkRepo.init(tmp.make('sluice-action-repo-'));
  base = repo.commit({ 'deploy/gateway.yaml': gateway(80), 'README.md': 'not a manifest\n' });
  head = repo.commit({
    'deploy/gateway.yaml': gateway(8080),
    'deploy/broken.yaml': BROKEN,
    'deploy/virtual-service.yaml': virtualService(150, 'shop/public'),
  });
  fixed = repo.commit({
    'deploy/broken.yaml': null,
    'deploy/virtual-service.yaml': virtualService(100, 'shop/private'),
  });
});
after(() => tmp.cleanup());

test('action.yml declares the inputs of the contract with their defaults', () => {
  const action = loadAction();
  assert.equal(action.runs.using, 'composite');
  const defaults = Object.fromEntries(
    Object.entries(action.inputs).map(([k, v]) => [k, v.default ?? '']),
  );
  assert.deepEqual(defaults, {
    path: '.',
    references: 'error',
    base: '${{ github.event.pull_request.base.sha || github.event.before }}',
    head: '${{ github.event.pull_request.head.sha || github.sha }}',
    wait: 'false',
    'controller-url': '',
    token: '',
    timeout: '15m',
    'sluice-version': '',
  });
  const setup = action.runs.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
  assert.ok(setup, 'a setup-node step');
  // No input is pasted into a script, where it could inject shell code.
  for (const s of action.runs.steps) assert.doesNotMatch(s.run ?? '', /\$\{\{/);
});

test('a pull request with broken files: inline annotations, a failed check, the diff in the summary', async () => {
  git(repo.dir, 'checkout', '-q', head);
  const r = await runAction({
    workspace: repo.dir,
    eventName: 'pull_request',
    event: { pull_request: { number: 7, base: { sha: base }, head: { sha: head } } },
    sha: head,
    ref: 'refs/pull/7/merge',
    with: { path: 'deploy' },
  });
  assert.equal(r.steps.validate?.code, 1, r.steps.validate?.stderr);
  assert.equal(r.code, 1);
  const annotations = r.stdout.split('\n').filter((l) => l.startsWith('::'));
  assert.deepEqual(annotations, [
    '::error file=deploy/broken.yaml,line=8,col=7,title=SLUICE_FIELD_UNKNOWN::error SLUICE_FIELD_UNKNOWN: spec.servers[0].hostz is not a known field; did you mean "hosts"? (Gateway shop/broken)',
    '::error file=deploy/virtual-service.yaml,line=12,col=19,title=SLUICE_SCHEMA_INVALID::error SLUICE_SCHEMA_INVALID: spec.http[0].route[0].weight must be an integer 0..100 (VirtualService shop/reviews)',
  ]);
  assert.deepEqual(r.outputs, { errors: '2', warnings: '0' });

  // The diff still runs after the failed validation; the rollout wait does not.
  assert.equal(r.steps.diff?.code, 0, r.steps.diff?.stderr);
  assert.equal(r.steps.wait?.code, null);
  assert.match(
    r.summary,
    /^### sluice validate\n\n❌ 3 files, 3 objects .*: 2 errors, 0 warnings$/m,
  );
  assert.match(r.summary, /^### sluice diff$/m);
  assert.match(r.summary, /^\| \| object \| file \| field \| from \| to \|$/m);
  assert.match(
    r.summary,
    /^\| ~ \| Gateway shop\/public \| gateway\.yaml \| `spec\.servers\[0\]\.port\.number` \| `80` \| `8080` \|$/m,
  );
  assert.match(r.summary, /^- `broken\.yaml:8:7: error SLUICE_FIELD_UNKNOWN: /m);
});

test('a push with reference warnings only (references: warn) passes, wait off', async () => {
  git(repo.dir, 'checkout', '-q', fixed);
  const r = await runAction({
    workspace: repo.dir,
    eventName: 'push',
    event: { before: base, after: fixed },
    sha: fixed,
    with: { references: 'warn' },
  });
  assert.equal(r.code, 0, JSON.stringify(r.steps, null, 2));
  const annotations = r.stdout.split('\n').filter((l) => l.startsWith('::'));
  assert.deepEqual(
    annotations.map((l) =>
      /^::(\w+) file=([^,]+),line=(\d+),col=(\d+),title=(\w+)::/.exec(l)?.slice(1),
    ),
    [
      ['warning', 'deploy/virtual-service.yaml', '8', '14', 'SLUICE_REF_GATEWAY_NOT_FOUND'],
      ['warning', 'deploy/virtual-service.yaml', '11', '31', 'SLUICE_REF_HOST_NOT_FOUND'],
    ],
  );
  assert.deepEqual(r.outputs, { errors: '0', warnings: '2' });
  assert.match(r.steps.wait?.stdout ?? '', /wait is off/);
  assert.match(r.summary, /^✅ 2 files, 2 objects .*: 0 errors, 2 warnings$/m);
  // The whole repository (path .): file paths are relative to its root.
  assert.match(
    r.summary,
    /^\| ~ \| Gateway shop\/public \| deploy\/gateway\.yaml \| `spec\.servers\[0\]\.port\.number` \| `80` \| `8080` \|$/m,
  );
});

test('a new branch (before is all zeros) skips the diff; wait without a URL is an error', async () => {
  git(repo.dir, 'checkout', '-q', fixed);
  const r = await runAction({
    workspace: repo.dir,
    eventName: 'push',
    event: { before: '0'.repeat(40), after: fixed },
    sha: fixed,
    with: { references: 'off', wait: 'true' },
  });
  assert.equal(r.steps.validate?.code, 0, r.steps.validate?.stdout);
  assert.equal(r.steps.diff?.code, 0);
  assert.match(r.steps.diff?.stdout ?? '', /no base revision/);
  assert.doesNotMatch(r.summary, /sluice diff/);
  assert.equal(r.steps.wait?.code, 2);
  assert.match(r.stdout, /^::error title=sluice::wait: true needs controller-url/m);
});

test('the example workflow passes only inputs that action.yml declares', () => {
  const inputs = Object.keys(loadAction().inputs);
  const workflow = parse(EXAMPLE) as {
    on: Record<string, unknown>;
    jobs: Record<string, { steps: { uses?: string; with?: Record<string, unknown> }[] }>;
  };
  assert.deepEqual(Object.keys(workflow.on).sort(), ['pull_request', 'push']);
  const uses = Object.entries(workflow.jobs).flatMap(([job, j]) =>
    j.steps.filter((s) => /\/sluice@/.test(s.uses ?? '')).map((s) => ({ job, with: s.with ?? {} })),
  );
  assert.deepEqual(
    uses.map((u) => u.job),
    ['check', 'rollout'],
  );
  for (const u of uses)
    for (const name of Object.keys(u.with)) assert.ok(inputs.includes(name), `${u.job}: ${name}`);
  const rollout = uses.find((u) => u.job === 'rollout')?.with ?? {};
  assert.equal(rollout.wait, true);
  assert.match(String(rollout['controller-url']), /^\$\{\{ (vars|secrets)\./);
});

test(
  'path . in a repository that holds its workflows in .github/ validates only the manifests',
  {},
  async () => {
    const own = WorkRepo.init(tmp.make('sluice-action-dotgithub-'));
    const sha = own.commit({
      'deploy/gateway.yaml': gateway(80),
      '.github/workflows/sluice.yml': EXAMPLE,
    });
    const r = await runAction({
      workspace: own.dir,
      eventName: 'push',
      event: { before: '0'.repeat(40), after: sha },
      sha,
    });
    assert.equal(r.code, 0, r.stdout);
  },
);
