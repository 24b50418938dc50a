// The bundled demo server (examples/demo-server/server.mjs) as a real process: its version,
// fault knobs and endpoints, a refused setting, and a clean SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, get } from './helpers.js';

const SERVER = join(ROOT, 'examples', 'demo-server', 'server.mjs');

async function start(
  t: { after(fn: () => void): void },
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

test('version, endpoints and fault knobs', async (t) => {
  const { port } = await start(t, { VERSION: '2.0.0', SERVICE_NAME: 'shop', ERROR_RATE: '1' });
  const root = await get(port, '/');
  assert.equal(root.status, 500, 'ERROR_RATE=1 fails every request to /');
  assert.deepEqual([root.json?.service, root.json?.version], ['shop', '2.0.0']);
  assert.equal((await get(port, '/readyz')).status, 200, 'probes are not subject to faults');
  assert.equal((await get(port, '/healthz')).status, 200);
  const teapot = await get(port, '/status/418');
  assert.equal(teapot.status, 418);
  assert.equal((await get(port, '/status/999')).status, 400);
  const delayed = await get(port, '/delay/30');
  assert.deepEqual([delayed.status, delayed.json?.delayMs], [200, 30]);
});

test('a setting out of range is refused with exit code 2', async () => {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ERROR_RATE: '2' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 2);
  assert.match(err, /ERROR_RATE="2" must be a number 0\.\.1/);
});

test('SIGTERM: a clean exit with code 0', async (t) => {
  const { child, port } = await start(t, {});
  assert.equal((await get(port, '/')).status, 200);
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
