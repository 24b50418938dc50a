import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/proxy/errors.js';
import { proxyCommand } from '../../src/proxy/launch.js';
import {
  bootstrap,
  cluster,
  config,
  request,
  startProxy,
  startProxyInProcess,
  upstream,
  withCleanup,
} from './helpers.js';

test('config file: re-read on change, bad versions rejected, previous keeps running', () =>
  withCleanup(async (defer) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-proxy-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const a = await upstream('a');
    defer(() => a.close());
    const b = await upstream('b');
    defer(() => b.close());
    const file = join(dir, 'proxy-config.json');
    const clusters = [cluster('a', [a.port]), cluster('b', [b.port])];
    await writeFile(file, JSON.stringify(config([{ route: [{ cluster: 'a' }] }], clusters, 'v1')));
    const { proxy, port, admin } = await startProxyInProcess(bootstrap({ file }));
    defer(() => proxy.stop());
    assert.equal(proxy.version, 'v1');
    assert.equal((await request(port)).body, 'ok a');

    // schema-invalid: rejected
    let next = proxy.nextFileApply();
    await writeFile(file, JSON.stringify({ ...config([], clusters, 'v2'), kind: 'Nope' }));
    let r = await next;
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'SLUICE_PROXY_CONFIG_INVALID');
    assert.equal((await request(port)).body, 'ok a');
    // compile error: rejected
    next = proxy.nextFileApply();
    await writeFile(
      file,
      JSON.stringify(config([{ route: [{ cluster: 'zzz' }] }], clusters, 'v3')),
    );
    r = await next;
    assert.equal(r.error?.code, 'SLUICE_PROXY_CONFIG_COMPILE');
    // not even YAML
    next = proxy.nextFileApply();
    await writeFile(file, '{ this is: [not valid');
    r = await next;
    assert.equal(r.ok, false);
    assert.equal((await request(port)).body, 'ok a');
    const dump = (await (await fetch(`http://127.0.0.1:${admin}/config_dump`)).json()) as {
      version: string;
      lastRejected: { code: string };
    };
    assert.equal(dump.version, 'v1');
    assert.equal(dump.lastRejected.code, 'SLUICE_PROXY_CONFIG_INVALID');
    // a good version, written the way editors do (write elsewhere, rename over)
    next = proxy.nextFileApply();
    await writeFile(
      `${file}.tmp`,
      JSON.stringify(config([{ route: [{ cluster: 'b' }] }], clusters, 'v4')),
    );
    await rename(`${file}.tmp`, file);
    r = await next;
    assert.deepEqual(r, { ok: true, version: 'v4' });
    assert.equal((await request(port)).body, 'ok b');
    const stats = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
    assert.match(stats, /sluice_proxy_config_rejected_total 3/);
  }));

test('a swap never fails a request in flight: it finishes on the version it started on', () =>
  withCleanup(async (defer) => {
    let release: (() => void) | null = null;
    const slow = await upstream('slow', (_q, res) => {
      res.writeHead(200);
      res.write('first half, ');
      release = () => res.end('second half');
    });
    defer(() => slow.close());
    const other = await upstream('other');
    defer(() => other.close());
    const clusters = [cluster('slow', [slow.port]), cluster('other', [other.port])];
    const { proxy, port } = await startProxyInProcess(
      bootstrap(config([{ route: [{ cluster: 'slow' }] }], clusters, 'v1')),
    );
    defer(() => proxy.stop());
    const body = new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, agent: false }, (res) => {
          let s = '';
          res.on('data', (c) => {
            s += c;
            if (release !== null && s === 'first half, ') {
              // the response is streaming: swap to a version without the slow cluster
              const r = proxy.apply(
                config([{ route: [{ cluster: 'other' }] }], [clusters[1]!], 'v2'),
                'test',
              );
              assert.equal(r.ok, true);
              (release as () => void)();
            }
          });
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    });
    assert.equal(await body, 'first half, second half');
    assert.equal(proxy.version, 'v2');
    assert.equal((await request(port)).body, 'ok other');
  }));

test('admin: /ready, /healthz, /config_dump; Flagger success-rate and duration inputs', () =>
  withCleanup(async (defer) => {
    const app = await upstream('app', (req, res) => {
      res.statusCode = req.url === '/fail' ? 500 : 200;
      res.end('x');
    });
    defer(() => app.close());
    // The server-side proxy of workload podinfo (reporter="destination") ...
    const server = await startProxy(
      bootstrap(
        config(
          [{ route: [{ cluster: 'inbound|9898||' }] }],
          [{ ...cluster('inbound|9898||', [app.port]), service: 'podinfo.test.svc.cluster.local' }],
          'v1',
          'inbound',
        ),
        {
          identity: {
            workload: 'podinfo',
            namespace: 'test',
            labels: { app: 'podinfo', version: 'v2' },
          },
        },
      ),
    );
    defer(() => server.proxy.stop());
    // ... called through a client proxy (reporter="source").
    const client = await startProxy(
      bootstrap(
        config(
          [{ route: [{ cluster: 'podinfo' }] }],
          [
            {
              ...cluster('podinfo', [server.inbound]),
              endpoints: [
                {
                  address: '127.0.0.1',
                  port: server.inbound,
                  workload: 'podinfo',
                  namespace: 'test',
                  version: 'v2',
                },
              ],
            },
          ],
        ),
      ),
    );
    defer(() => client.proxy.stop());
    for (let i = 0; i < 9; i++) assert.equal((await request(client.port)).status, 200);
    assert.equal((await request(client.port, { path: '/fail' })).status, 500);

    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${server.admin}${path}`);
      return { status: r.status, text: await r.text() };
    };
    assert.equal((await get('/healthz')).status, 200);
    assert.match((await get('/ready')).text, /LIVE v1/);
    assert.equal(JSON.parse((await get('/config_dump')).text).version, 'v1');
    const text = (await get('/stats/prometheus')).text;
    // Evaluate Flagger's builtin istio queries by hand over the exposition:
    // sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",
    //   destination_workload=~"podinfo",response_code!~"5.*"})) / sum(rate(...same without code))
    const series = [...text.matchAll(/^istio_requests_total\{([^}]*)\} (\d+)$/gm)].map((m) => ({
      labels: Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]])),
      value: Number(m[2]),
    }));
    const sel = series.filter(
      (s) =>
        s.labels.reporter === 'destination' &&
        s.labels.destination_workload_namespace === 'test' &&
        /^(?:podinfo)$/.test(s.labels.destination_workload ?? ''),
    );
    const total = sel.reduce((n, s) => n + s.value, 0);
    const ok = sel
      .filter((s) => !/^5.*$/.test(s.labels.response_code ?? ''))
      .reduce((n, s) => n + s.value, 0);
    assert.equal(total, 10);
    assert.equal(ok / total, 0.9);
    assert.equal(sel[0]?.labels.source_workload, 'client-v1');
    assert.equal(sel[0]?.labels.destination_version, 'v2');
    assert.equal(sel[0]?.labels.destination_service, 'podinfo.test.svc.cluster.local');
    // request-duration: histogram_quantile over istio_request_duration_milliseconds_bucket by (le)
    const buckets = [
      ...text.matchAll(
        /^istio_request_duration_milliseconds_bucket\{[^}]*reporter="destination"[^}]*le="([^"]+)"\} (\d+)$/gm,
      ),
    ];
    assert.ok(buckets.length >= 20);
    assert.ok(buckets.some((b) => b[1] === '+Inf'));
    assert.deepEqual(
      [...new Set(buckets.map((b) => b[1]))],
      [
        '0.5',
        '1',
        '5',
        '10',
        '25',
        '50',
        '100',
        '250',
        '500',
        '1000',
        '2500',
        '5000',
        '10000',
        '30000',
        '60000',
        '300000',
        '600000',
        '1800000',
        '3600000',
        '+Inf',
      ],
    );
    // The client side reports the same calls with reporter="source".
    const ctext = await (await fetch(`http://127.0.0.1:${client.admin}/stats/prometheus`)).text();
    assert.match(
      ctext,
      /istio_requests_total\{reporter="source",source_workload="client-v1"[^}]*destination_workload="podinfo"[^}]*response_code="200"[^}]*\} 9/,
    );
  }));

test('sluice proxy as a child process: starts from a bootstrap file, serves, exits 0 on SIGTERM', () =>
  withCleanup(async (defer) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-proxy-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const up = await upstream('up');
    defer(() => up.close());
    const file = join(dir, 'bootstrap.yaml');
    await writeFile(
      file,
      JSON.stringify(
        bootstrap(config([{ route: [{ cluster: 'up' }] }], [cluster('up', [up.port])])),
      ),
    );
    // As the fleet starts it: the lean bundle with the proxy's V8 flags.
    const cmd = await proxyCommand({ bootstrap: file });
    const child = spawn(cmd.execPath, cmd.args, { stdio: ['ignore', 'pipe', 'inherit'] });
    defer(() => child.kill('SIGKILL'));
    const ports = await new Promise<{ outbound: number }>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const j = JSON.parse(line) as { msg: string; ports: { outbound: number } };
        if (j.msg === 'proxy started') resolve(j.ports);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    assert.equal((await request(ports.outbound)).body, 'ok up');
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
  }));

test('a bad bootstrap exits 1 with the error code logged; usage errors exit 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-proxy-'));
  try {
    const file = join(dir, 'bootstrap.yaml');
    // YAML, not JSON: the bundle loads the YAML parser on demand.
    await writeFile(file, 'apiVersion: sluice.dev/v1alpha1\nkind: ProxyBootstrap\n');
    const cmd = await proxyCommand();
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(cmd.execPath, [...cmd.args, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (out += d));
        c.on('exit', (code) => resolve({ code, out }));
      });
    const bad = await run(['--bootstrap', file]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /SLUICE_PROXY_BOOTSTRAP_INVALID/);
    assert.equal((await run([])).code, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('every error code used in src/proxy is in the registry, and every registry code is used', async () => {
  const { readdir, readFile } = await import('node:fs/promises');
  const files = (await readdir('src/proxy', { recursive: true })).filter((f) => f.endsWith('.ts'));
  const used = new Set<string>();
  for (const f of files) {
    const text = await readFile(join('src/proxy', f), 'utf8');
    for (const m of text.matchAll(/'(SLUICE_PROXY_[A-Z_]+)'/g)) used.add(m[1]!);
  }
  for (const code of used) assert.ok(code in ERROR_CODES, `${code} is not documented in errors.ts`);
  for (const code of Object.keys(ERROR_CODES)) assert.ok(used.has(code), `${code} is never raised`);
});
