/**
 * `--prometheus URL|auto|off`: which backend serves, and the life cycle of the Prometheus
 * sluice starts (state directory files, leftover from a killed controller, SIGTERM then
 * SIGKILL). Uses Debian's prometheus for the real start.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startMetricsBackend } from '../../src/metrics/backend.js';
import {
  fileSdTargets,
  findExecutable,
  startPrometheusServer,
} from '../../src/metrics/prometheus-server.js';
import { silent } from './helpers.js';

const alive = async (pid: number | undefined): Promise<boolean> => {
  if (pid === undefined) return false;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \([^)]*\) Z/.test(stat); // a zombie is dead
  } catch {
    return false;
  }
};

describe('metrics backend selection', { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  const stateDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'sluice-backend-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('off, a URL, and anything else refused', async () => {
    const off = await startMetricsBackend({
      prometheus: 'off',
      stateDir: await stateDir(),
      logger: silent,
    });
    assert.equal(off.mode, 'off');
    assert.equal(off.provider.type, 'off');
    const url = await startMetricsBackend({
      prometheus: 'http://127.0.0.1:9',
      stateDir: await stateDir(),
      logger: silent,
    });
    assert.equal(url.mode, 'prometheus');
    assert.equal(url.provider.type, 'prometheus');
    assert.equal((await url.provider.query('vector(1)')).error?.code, 'SLUICE_METRICS_UNREACHABLE');
    await url.close();
    await assert.rejects(
      startMetricsBackend({ prometheus: 'yes', stateDir: await stateDir(), logger: silent }),
      {
        code: 'SLUICE_METRICS_CONFIG_INVALID',
      },
    );
  });

  it('auto without prometheus on PATH: the builtin provider serves, and says why', async () => {
    const b = await startMetricsBackend({
      prometheus: 'auto',
      stateDir: await stateDir(),
      logger: silent,
      env: { PATH: '/nonexistent' },
    });
    try {
      assert.equal(b.mode, 'builtin');
      assert.equal(b.provider.type, 'builtin');
      assert.match(b.reason, /prometheus is not on PATH; the builtin provider serves/);
      await b.setTargets([{ url: 'http://127.0.0.1:9/stats/prometheus' }]);
    } finally {
      await b.close();
    }
  });

  it('auto with a prometheus that cannot start: builtin, with the start error as the reason', async () => {
    const b = await startMetricsBackend({
      prometheus: 'auto',
      stateDir: await stateDir(),
      logger: silent,
      binary: '/bin/false',
      readyTimeoutMs: 5000,
    });
    try {
      assert.equal(b.mode, 'builtin');
      assert.match(b.reason, /prometheus did not start: it exited; the builtin provider serves/);
    } finally {
      await b.close();
    }
  });

  it('auto with prometheus on PATH: started in the state directory, follows targets, stopped on close', async (t) => {
    if (!(await findExecutable('prometheus'))) return t.skip('prometheus is not installed');
    const dir = await stateDir();
    const b = await startMetricsBackend({
      prometheus: 'auto',
      stateDir: dir,
      logger: silent,
      scrapeIntervalMs: 1000,
    });
    const pid = b.server?.pid;
    try {
      assert.equal(b.mode, 'prometheus-auto');
      assert.deepEqual(await b.provider.check(), { ok: true });
      const config = JSON.parse(await readFile(join(dir, 'prometheus', 'prometheus.yml'), 'utf8'));
      assert.equal(config.global.scrape_interval, '1000ms');
      assert.deepEqual(config.scrape_configs[0].file_sd_configs[0].files, [
        join(dir, 'prometheus', 'targets.json'),
      ]);
      await b.setTargets([
        { url: 'http://127.0.0.1:15000/stats/prometheus', labels: { app: 'podinfo' } },
      ]);
      assert.deepEqual(
        JSON.parse(await readFile(join(dir, 'prometheus', 'targets.json'), 'utf8')),
        [
          {
            targets: ['127.0.0.1:15000'],
            labels: { app: 'podinfo', __metrics_path__: '/stats/prometheus', __scheme__: 'http' },
          },
        ],
      );
      await assert.rejects(b.setTargets([{ url: 'not a url' }]), {
        code: 'SLUICE_METRICS_CONFIG_INVALID',
      });
      assert.equal(
        Number((await readFile(join(dir, 'prometheus', 'prometheus.pid'), 'utf8')).trim()),
        pid,
      );
    } finally {
      await b.close();
    }
    assert.equal(await alive(pid), false);
    await assert.rejects(readFile(join(dir, 'prometheus', 'prometheus.pid')));
  });

  it('a prometheus left by a controller killed with -9 is stopped before a new one starts', async (t) => {
    if (!(await findExecutable('prometheus'))) return t.skip('prometheus is not installed');
    const dir = await stateDir();
    const first = await startPrometheusServer({ stateDir: dir, logger: silent });
    assert.ok(first.started);
    const leftover = first.server.pid;
    // No close(): the controller "died". A new start on the same state directory succeeds.
    const second = await startPrometheusServer({ stateDir: dir, logger: silent });
    try {
      assert.ok(second.started);
      assert.equal(await alive(leftover), false);
      assert.notEqual(second.server.pid, leftover);
    } finally {
      if (second.started) await second.server.close();
      await first.server.close();
    }
  });

  it('a prometheus that ignores SIGTERM is killed after the grace period', async () => {
    const dir = await stateDir();
    // A stand-in binary that becomes ready and ignores SIGTERM (only the stop path is tested here).
    const fake = join(dir, 'stubborn-prometheus');
    await writeFile(
      fake,
      `#!${process.execPath}
const http = require('node:http');
const addr = process.argv.find((a) => a.startsWith('--web.listen-address=')).split('=')[1].split(':');
process.on('SIGTERM', () => {});
http.createServer((req, res) => res.end('ready')).listen(Number(addr[1]), addr[0]);
`,
    );
    await chmod(fake, 0o755);
    const s = await startPrometheusServer({
      stateDir: dir,
      logger: silent,
      binary: fake,
      stopGraceMs: 300,
    });
    assert.ok(s.started);
    const pid = s.server.pid;
    assert.equal(await alive(pid), true);
    await s.server.close();
    assert.equal(await alive(pid), false);
  });

  it('file_sd entries carry the path and scheme of each target', () => {
    assert.deepEqual(fileSdTargets([{ url: 'https://10.0.0.1:8443/x/metrics?a=1' }]), [
      {
        targets: ['10.0.0.1:8443'],
        labels: { __metrics_path__: '/x/metrics', __param_a: '1', __scheme__: 'https' },
      },
    ]);
  });
});
