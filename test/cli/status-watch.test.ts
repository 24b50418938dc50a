// `sluice status --watch` as a user sees it: under a real pseudo-terminal (util-linux
// `script`, from the essential bsdutils package) it redraws in place and Ctrl-C ends it with
// exit 0; through a pipe it prints one table per change, without escape sequences.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import { webDeployment } from '../support/objects.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const HOME_CLEAR = '\x1b[H\x1b[2J';
const HEADER = /^CANARY +PHASE +WEIGHT +CHECKS +LAST CHECK +REVISION +AGE$/;

const tmp = new TempDirs();
let c: RunningController;
let repo: WorkRepo;
/** A pass-through in front of the controller's API that counts the status polls. */
let counter: Server;
let counterUrl: string;
let polls = 0;
const children = new Set<ChildProcess>();

const manifests = (version: string) => `${webDeployment(version)}---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: web
  namespace: shop
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 20
    stepWeight: 10
`;

async function canaryPhase(): Promise<string> {
  const r = await fetch(c.url + '/api/v1/canaries/shop/web');
  return r.status === 200 ? ((await r.json()) as { phase: string }).phase : `HTTP ${r.status}`;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface Watch {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/** Starts a process with stdin open (for Ctrl-C) and its stdout collected; stopped in `after`. */
function start(command: string, args: string[]): Watch {
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SHELL: '/bin/sh', TERM: 'xterm', COLUMNS: '200', LINES: '40' },
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      if (code !== 0) process.stderr.write(`watch exited ${code}: ${err}\n`);
      resolve(code);
    }),
  );
  return { child, output: () => out, exit };
}

const statusArgs = () => [
  '--import',
  TSX,
  MAIN,
  'status',
  '--watch',
  '--api',
  counterUrl,
  '--interval',
  '200ms',
];

before(async () => {
  repo = WorkRepo.init(tmp.make('sluice-watch-'));
  repo.commit({ 'web.yaml': manifests('1') });
  c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir: join(tmp.make('sluice-watch-state-'), 'state'),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
  });
  const upstream = new URL(c.url);
  counter = createServer((req, res) => {
    if (req.url === '/api/v1/canaries') polls += 1;
    const fwd = request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.writeHead(502).end());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`;
  await waitFor(async () => (await canaryPhase()) === 'Initialized', 'canary initialized', 60_000);
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await c?.stop();
  await new Promise((r) => counter?.close(r));
  tmp.cleanup();
});

test('in a terminal, --watch redraws in place (home + clear, the table) until Ctrl-C, exit 0', async () => {
  // `exec`: node must be script's direct child. A shell left waiting in between (dash does not
  // exec a lone command) would itself die of the Ctrl-C and report 130.
  const cmd = 'exec ' + [process.execPath, ...statusArgs()].map(quote).join(' ');
  const w = start('script', ['-qfec', cmd, '/dev/null']);
  const frames = () => w.output().split(HOME_CLEAR).slice(1);
  await waitFor(
    () => frames().filter((f) => /\n/.test(f)).length >= 3,
    'three redraws in the terminal',
    30_000,
  );
  w.child.stdin?.write('\x03');
  assert.equal(await w.exit, 0, w.output());
  // Every frame starts at the home position on a cleared screen and holds the whole table.
  const complete = frames().filter((f) => /shop\/web/.test(f));
  assert.ok(complete.length >= 3, w.output());
  for (const frame of complete) {
    const lines = frame.split(/\r?\n/);
    assert.match(lines[0] as string, HEADER);
    assert.match(
      lines[1] as string,
      /^shop\/web +Initialized +░{10} +0% +0\/0 ok, 0 failed +- +\S+ +\d+[smhd]/,
    );
  }
  // A terminal turns "\n" into "\r\n": the output went through a real pty.
  assert.match(w.output(), /AGE\r\n/);
});

test('through a pipe, --watch prints one table per change and no escape sequences', async () => {
  const w = start(process.execPath, statusArgs());
  await waitFor(() => HEADER.test(w.output().split('\n')[0] ?? ''), 'the first table', 30_000);
  // Nothing changes for several polls (the AGE column ticks): no second table.
  const seen = polls;
  await waitFor(() => polls >= seen + 8, 'eight more polls', 30_000);
  assert.equal(w.output().match(/^CANARY /gm)?.length, 1, w.output());

  // A release: the canary goes through Progressing (10%, 20%) to Succeeded.
  const sha = repo.commit({ 'web.yaml': manifests('2') });
  await c.poller.trigger('test');
  await waitFor(
    () => new RegExp(`^shop/web +Succeeded .* ${sha.slice(0, 7)} `, 'm').test(w.output()),
    'the promotion in the watch output',
    60_000,
  );
  w.child.kill('SIGINT');
  assert.equal(await w.exit, 0);
  const out = w.output();
  assert.ok(!out.includes('\x1b'), out);
  const tables = out.split(/^(?=CANARY )/m);
  assert.ok(tables.length >= 3, out);
  for (const t of tables) {
    const lines = t.trimEnd().split('\n');
    assert.equal(lines.length, 2, t);
    assert.match(lines[0] as string, HEADER);
  }
  // Each table differs from the one before it in more than its AGE.
  const rows = tables.map((t) => (t.trimEnd().split('\n')[1] as string).replace(/\S+$/, ''));
  for (let i = 1; i < rows.length; i++) assert.notEqual(rows[i], rows[i - 1], out);
  assert.match(rows[0] as string, /Initialized/);
  assert.match(rows.join('\n'), /Progressing/);
  assert.match(rows.at(-1) as string, /Succeeded/);
});
