// A Prometheus never outlives the controller that started it, even when that controller is
// killed with SIGKILL (its guard sees the controller's pipe close and stops it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

test('kill -9 of the process that started Prometheus stops Prometheus too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-prom-orphan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const host = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'prometheus-host.ts'), dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => host.kill('SIGKILL'));
  const line = await new Promise<string>((resolve) =>
    host.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d)),
  );
  assert.equal(line.trim(), 'ready');
  const marker = join(dir, 'prometheus', 'prometheus.yml');
  assert.ok(processesMentioning(marker).length > 0, 'prometheus runs');
  host.kill('SIGKILL');
  const deadline = Date.now() + 30_000;
  while (processesMentioning(marker).length > 0) {
    assert.ok(Date.now() < deadline, `still running: ${processesMentioning(marker).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
