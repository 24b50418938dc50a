import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../../src/controller/state-store.js';
import { ControllerError } from '../../src/controller/errors.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'sluice-state-'));

test('a second controller on the same state directory is refused with a clear error', (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = StateStore.open({ dir, pid: 1001, isAlive: () => true });
  assert.throws(
    () => StateStore.open({ dir, pid: 1002, isAlive: () => true }),
    (err: unknown) =>
      err instanceof ControllerError &&
      err.code === 'SLUICE_STATE_LOCKED' &&
      /pid 1001/.test(err.message),
  );
  first.close();
  StateStore.open({ dir, pid: 1002, isAlive: () => true }).close();
});

test('the lock of a controller that died is taken over', (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  StateStore.open({ dir, pid: 1001, isAlive: () => true }); // never closed: as after kill -9
  const second = StateStore.open({ dir, pid: 1002, isAlive: (pid) => pid !== 1001 });
  assert.equal(JSON.parse(readFileSync(join(dir, 'controller.lock'), 'utf8')).pid, 1002);
  second.close();
});

test('applied state and events round-trip; files are private', (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = StateStore.open({ dir });
  s.saveApplied({ revision: 'main@sha1:abc', objects: [] });
  s.appendEvent({ type: 'Normal', reason: 'RevisionFetched', message: 'fetched main@sha1:abc' });
  s.close();
  const again = StateStore.open({ dir });
  assert.equal(again.loadApplied().revision, 'main@sha1:abc');
  assert.deepEqual(
    again.listEvents().map((e) => [e.seq, e.reason]),
    [[1, 'RevisionFetched']],
  );
  assert.equal(statSync(join(dir, 'applied.json')).mode & 0o777, 0o600);
  assert.equal(
    again.appendEvent({ type: 'Normal', reason: 'X', message: 'y' }).seq,
    2,
    'sequence continues after restart',
  );
  again.close();
});

test('the event log stays bounded and drops a torn last line', (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = StateStore.open({ dir, maxEvents: 10 });
  for (let i = 0; i < 55; i++)
    s.appendEvent({ type: 'Normal', reason: 'Tick', message: String(i) });
  assert.equal(s.listEvents().length, 10);
  assert.ok(readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n').length <= 21);
  s.close();
  writeFileSync(
    join(dir, 'events.jsonl'),
    readFileSync(join(dir, 'events.jsonl'), 'utf8') + '{"seq":56,"ti',
    { flag: 'w' },
  );
  const again = StateStore.open({ dir, maxEvents: 10 });
  assert.equal(again.listEvents().at(-1)?.message, '54');
  again.close();
});

test('a corrupt state file is set aside with an event, not a crash', (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'applied.json'), '{"revision": "main@sha1:');
  const s = StateStore.open({ dir });
  assert.deepEqual(s.loadApplied(), { objects: [] });
  assert.equal(s.listEvents().at(-1)?.code, 'SLUICE_STATE_UNREADABLE');
  s.close();
});

test('kill -9 during writes always leaves a state that loads', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const writer = join(import.meta.dirname, 'fixtures', 'state-writer.ts');
  for (let round = 0; round < 5; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const killAfter = 5 + round * 7;
    await new Promise<void>((resolve) => {
      let lines = 0;
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        lines += d.split('\n').length - 1;
        if (lines >= killAfter && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('close', () => resolve());
    });
    const s = StateStore.open({ dir, maxEvents: 50, isAlive: (pid) => pid === process.pid });
    const applied = s.loadApplied();
    assert.match(applied.revision ?? '', /^main@sha1:\d+$/);
    assert.ok(s.listEvents().length > 0);
    s.close();
  }
});
