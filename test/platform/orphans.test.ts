// No orphans when the host of a LocalPlatform dies without cleaning up (kill -9): every
// sidecar, app and grandchild exits by itself within a bounded wait, the SIGTERM-ignoring
// one by SIGKILL after the guards' grace period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, alive, until } from './helpers.js';

test('kill -9 of the process hosting the platform: all its children exit by themselves', async (t) => {
  const host = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'host-platform.ts')],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let pids: number[] = [];
  t.after(() => {
    // Only if the test failed half-way: nothing we started may stay.
    if (host.exitCode === null) host.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  let out = '';
  let err = '';
  host.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    host.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    host.once('exit', (code) => reject(new Error(`host exited with ${code}: ${err}`)));
  });
  const report = JSON.parse(line) as { pids: number[]; stateDir: string };
  t.after(() => rmSync(report.stateDir, { recursive: true, force: true }));
  pids = report.pids;
  assert.equal(pids.length, 12, 'guard + process for 3 sidecars and 3 containers');
  assert.ok(pids.every(alive));

  host.kill('SIGKILL');
  await until(
    () => pids.every((pid) => !alive(pid)),
    'every child of the killed host to exit',
    15_000,
  );
});
