// Process logs stay bounded: rotated to `.1` at the size limit, with the last lines in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RotatingLog } from '../../src/platform/local/log-file.js';

test('a log file rotates at its size limit and keeps a tail of lines', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ns', 'wl', 'r-0.log');
  const log = new RotatingLog(file, 1000, 3);
  for (let i = 0; i < 100; i++) log.write(`line ${i} ${'x'.repeat(40)}\n`);
  log.write('partial');
  log.close();
  assert.ok(statSync(file).size <= 1000);
  assert.ok(existsSync(`${file}.1`));
  assert.ok(statSync(`${file}.1`).size <= 1000);
  assert.match(readFileSync(file, 'utf8'), /line 99 x+\npartial$/);
  assert.deepEqual(
    log.tail().map((l) => l.split(' ').slice(0, 2).join(' ')),
    ['line 97', 'line 98', 'line 99', 'partial'],
  );
});
