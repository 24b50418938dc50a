/**
 * The prometheus provider against a REAL Prometheus (Debian's binary, started by
 * prometheus-server.ts with a 1 s scrape interval) scraping an exporter that serves the
 * proxy's own stats code, compared with the builtin provider over the same data; then
 * every failure path: bad query, no data, several series, auth through a basic-auth proxy,
 * TLS, timeout, unreachable, and Prometheus stopped mid-run. One Prometheus for the file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderMetricQuery } from '../../src/api/metric-query.js';
import { EC_P256, webcrypto, x509 } from '../../src/mesh/ca/x509.js';
import { BuiltinProvider } from '../../src/metrics/builtin.js';
import { systemClock } from '../../src/metrics/clock.js';
import { ISTIO_QUERIES } from '../../src/metrics/istio-queries.js';
import {
  PrometheusProvider,
  type PrometheusProviderOptions,
} from '../../src/metrics/prometheus.js';
import {
  startPrometheusServer,
  type PrometheusServer,
} from '../../src/metrics/prometheus-server.js';
import { providerContract } from './contract.js';
import {
  capturingLogger,
  scopeLabels,
  silent,
  startExporter,
  waitFor,
  type Exporter,
  type Traffic,
} from './helpers.js';

const TRAFFIC: Traffic[] = [
  {
    labels: scopeLabels(),
    perSecond: [
      { status: 200, count: 90, durationsMs: [3, 8, 8, 20, 40] },
      { status: 404, count: 5, durationsMs: [3] },
      { status: 503, count: 5, durationsMs: [400] },
    ],
  },
  {
    labels: scopeLabels({ destination_workload: 'idle' }),
    perSecond: [{ status: 200, count: 0, durationsMs: [1] }],
  },
];

function q(name: keyof typeof ISTIO_QUERIES, target: string): string {
  const r = renderMetricQuery(ISTIO_QUERIES[name], { namespace: 'test', target, interval: '1m' });
  assert.ok(r.ok);
  return r.query;
}

const PASSWORD = 's3cret-pa55word';
const TOKEN = 'bearer-t0ken-value';

/** A self-signed certificate for 127.0.0.1 (key and cert PEM). */
async function selfSigned(): Promise<{ key: string; cert: string }> {
  const alg = EC_P256;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=127.0.0.1',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys: keys as unknown as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]['keys'],
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const b64 = pkcs8.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    key: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`,
    cert: cert.toString('pem'),
  };
}

interface Front {
  url: string;
  close(): Promise<void>;
}

/** A tiny reverse proxy to Prometheus that wants basic auth (admin/PASSWORD) or the bearer TOKEN. */
async function authProxy(target: string, tls?: { key: string; cert: string }): Promise<Front> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const auth = req.headers.authorization ?? '';
    const basic = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    if (!tls && auth !== basic && auth !== `Bearer ${TOKEN}`) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic realm="prometheus"');
      return void res.end('Unauthorized\n');
    }
    void fetch(`${target}${req.url ?? '/'}`)
      .then(async (r) => {
        res.statusCode = r.status;
        res.setHeader('content-type', r.headers.get('content-type') ?? 'text/plain');
        res.end(await r.text());
      })
      .catch(() => {
        res.statusCode = 502;
        res.end('Bad Gateway\n');
      });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A server that answers with a fixed handler (silent, HTML, ...). */
async function fixedServer(
  handler: http.RequestListener,
): Promise<Front & { server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('prometheus provider against a real Prometheus', { timeout: 120_000 }, () => {
  let dir: string;
  let exporter: Exporter;
  let second: Exporter | undefined;
  let server: PrometheusServer;
  let prom: PrometheusProvider;
  let builtin: BuiltinProvider;
  const closers: (() => Promise<void>)[] = [];
  const provider = (
    opts: Partial<PrometheusProviderOptions> & { address?: string },
    env?: NodeJS.ProcessEnv,
    logger = silent,
  ) => {
    const p = new PrometheusProvider(
      { address: server.url, ...opts },
      { logger, clock: systemClock, env },
    );
    closers.push(() => p.close());
    return p;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-metrics-'));
    exporter = await startExporter(TRAFFIC);
    const targets = [{ url: exporter.url, labels: { app: 'podinfo' } }];
    const start = await startPrometheusServer({
      stateDir: dir,
      logger: silent,
      scrapeIntervalMs: 1000,
      targets,
    });
    assert.ok(start.started, start.started ? '' : `prometheus must be installed: ${start.reason}`);
    server = start.server;
    prom = new PrometheusProvider({ address: server.url }, { logger: silent, clock: systemClock });
    builtin = new BuiltinProvider(
      { targets, scrapeIntervalMs: 1000 },
      { logger: silent, clock: systemClock },
    );
    // Three samples of the 503 series in Prometheus: rates are steady from there on.
    await waitFor(
      async () => {
        const m = await prom.query(
          'count_over_time(istio_requests_total{reporter="destination",response_code="503"}[1m])',
        );
        return m.phase === 'ok' && (m.value as number) >= 3 ? true : undefined;
      },
      30_000,
      'prometheus to scrape the exporter three times',
    );
    await waitFor(
      async () =>
        (await builtin.query(q('request-success-rate', 'podinfo'))).phase === 'ok'
          ? true
          : undefined,
      10_000,
      'builtin data',
    );
  });

  after(async () => {
    for (const c of closers) await c();
    await builtin?.close();
    await prom?.close();
    await server?.close();
    await exporter?.close();
    await second?.close();
    await rm(dir, { recursive: true, force: true });
  });

  providerContract('prometheus', () => ({
    provider: () => prom,
    now: () => Date.now(),
    valued: { query: q('request-success-rate', 'podinfo'), value: 95, tolerance: 0.5 },
    noData: q('request-success-rate', 'absent'),
    failing: { query: 'sum(rate(istio_requests_total[1m])', code: 'SLUICE_METRICS_BAD_QUERY' },
  }));

  it("Flagger's request-success-rate and request-duration agree between prometheus and builtin", async () => {
    for (const [name, want, tol] of [
      ['request-success-rate', 95, 0.5],
      ['request-duration', 450, 25],
    ] as const) {
      const [p, b] = await Promise.all([
        prom.query(q(name, 'podinfo')),
        builtin.query(q(name, 'podinfo')),
      ]);
      assert.equal(p.phase, 'ok', JSON.stringify(p));
      assert.equal(b.phase, 'ok', JSON.stringify(b));
      assert.ok(Math.abs((p.value as number) - want) <= tol, `${name}: prometheus ${p.value}`);
      assert.ok(
        Math.abs((b.value as number) - (p.value as number)) <= tol,
        `${name}: builtin ${b.value} vs prometheus ${p.value}`,
      );
    }
  });

  it('no traffic (0/0), NaN and an empty vector are no-data in both; +Inf is a value', async () => {
    for (const query of [
      q('request-success-rate', 'idle'),
      q('request-duration', 'idle'),
      q('request-duration', 'absent'),
    ]) {
      assert.equal((await prom.query(query)).phase, 'no-data', query);
      assert.equal((await builtin.query(query)).phase, 'no-data', query);
    }
    assert.equal((await prom.query('NaN')).phase, 'no-data');
    const inf = await prom.query('1/0');
    assert.equal(inf.phase, 'ok');
    assert.equal(inf.value, Infinity);
    assert.equal((await prom.query('vector(1) - 1.5')).value, -0.5);
  });

  it('several series is an error measurement saying so', async () => {
    const m = await prom.query(
      'sum by (response_code) (rate(istio_requests_total{reporter="destination",destination_workload="podinfo"}[1m]))',
    );
    assert.equal(m.phase, 'error');
    assert.equal(m.error?.code, 'SLUICE_METRICS_BAD_RESPONSE');
    assert.match(m.error?.message ?? '', /returned 3 series .*response_code.*aggregate/);
  });

  it("a bad query is SLUICE_METRICS_BAD_QUERY with Prometheus' error text", async () => {
    const m = await prom.query('sum(rate(istio_requests_total[1m])');
    assert.equal(m.error?.code, 'SLUICE_METRICS_BAD_QUERY');
    assert.match(m.error?.message ?? '', /prometheus rejected the query: .*parse error/);
    const exec = await prom.query(
      'rate(istio_requests_total[1m]) / on() rate(istio_requests_total[1m])',
    );
    assert.equal(exec.error?.code, 'SLUICE_METRICS_BAD_QUERY'); // 422: many-to-many matching
  });

  it('basic and bearer auth through a reverse proxy; credentials never logged', async () => {
    const front = await authProxy(server.url);
    closers.push(() => front.close());
    const secretDir = await mkdtemp(join(tmpdir(), 'sluice-secret-'));
    closers.push(() => rm(secretDir, { recursive: true, force: true }));
    await writeFile(join(secretDir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    const { logger, lines } = capturingLogger();
    const query = q('request-success-rate', 'podinfo');

    const none = await provider({ address: front.url }, undefined, logger).query(query);
    assert.equal(none.error?.code, 'SLUICE_METRICS_AUTH');
    const wrong = await provider(
      {
        address: front.url,
        auth: { type: 'basic', username: 'admin', password: { value: 'nope' } },
      },
      undefined,
      logger,
    ).query(query);
    assert.equal(wrong.error?.code, 'SLUICE_METRICS_AUTH');
    assert.match(wrong.error?.message ?? '', /HTTP 401/);

    const basic = provider(
      {
        address: front.url,
        auth: { type: 'basic', username: 'admin', password: { env: 'PROM_PASSWORD' } },
      },
      { PROM_PASSWORD: PASSWORD },
      logger,
    );
    assert.deepEqual(await basic.check(), { ok: true });
    const ok = await basic.query(query);
    assert.equal(ok.phase, 'ok');

    const bearer = provider(
      { address: front.url, auth: { type: 'bearer', token: { file: join(secretDir, 'token') } } },
      undefined,
      logger,
    );
    assert.equal((await bearer.query(query)).phase, 'ok');

    const unset = await provider(
      { address: front.url, auth: { type: 'bearer', token: { env: 'NOT_SET' } } },
      {},
      logger,
    ).query(query);
    assert.equal(unset.error?.code, 'SLUICE_METRICS_SECRET');
    const missing = await provider(
      { address: front.url, auth: { type: 'bearer', token: { file: join(secretDir, 'none') } } },
      {},
      logger,
    ).query(query);
    assert.equal(missing.error?.code, 'SLUICE_METRICS_SECRET');
    const check = await provider({ address: front.url }, undefined, logger).check();
    assert.ok(!check.ok && check.error.code === 'SLUICE_METRICS_AUTH');

    assert.ok(lines.length > 0, 'failures are logged (at debug)');
    const text = lines.join('\n');
    for (const secret of [PASSWORD, TOKEN, Buffer.from(`admin:${PASSWORD}`).toString('base64')])
      assert.ok(
        !text.includes(secret) &&
          !JSON.stringify([none, wrong, ok, unset, missing]).includes(secret),
      );
  });

  it('TLS: a self-signed certificate is refused unless insecureSkipVerify', async () => {
    const front = await authProxy(server.url, await selfSigned());
    closers.push(() => front.close());
    const strict = await provider({ address: front.url }).query('vector(1)');
    assert.equal(strict.error?.code, 'SLUICE_METRICS_UNREACHABLE');
    assert.match(strict.error?.message ?? '', /CERT|SIGNED|certificate/i);
    const relaxed = await provider({ address: front.url, insecureSkipVerify: true }).query(
      'vector(1)',
    );
    assert.equal(relaxed.value, 1);
  });

  it('timeout, unreachable, non-Prometheus answers and gateway errors are coded error measurements', async () => {
    const held: http.ServerResponse[] = [];
    const silentServer = await fixedServer((_req, res) => void held.push(res));
    closers.push(async () => {
      for (const r of held) r.destroy();
      await silentServer.close();
    });
    const t0 = Date.now();
    const slow = await provider({ address: silentServer.url, timeoutMs: 300 }).query('vector(1)');
    assert.equal(slow.error?.code, 'SLUICE_METRICS_TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);

    const closed = await fixedServer(() => undefined);
    const closedUrl = closed.url;
    await closed.close();
    const down = provider({ address: closedUrl });
    const m = await down.query('vector(1)');
    assert.equal(m.error?.code, 'SLUICE_METRICS_UNREACHABLE');
    assert.match(m.error?.message ?? '', /ECONNREFUSED/);
    const c = await down.check();
    assert.ok(!c.ok && c.error.code === 'SLUICE_METRICS_UNREACHABLE');

    const html = await fixedServer((_req, res) => res.end('<html>hello</html>'));
    closers.push(() => html.close());
    assert.equal(
      (await provider({ address: html.url }).query('vector(1)')).error?.code,
      'SLUICE_METRICS_BAD_RESPONSE',
    );

    const gateway = await fixedServer((_req, res) => {
      res.statusCode = 502;
      res.end('Bad Gateway');
    });
    closers.push(() => gateway.close());
    assert.equal(
      (await provider({ address: gateway.url }).query('vector(1)')).error?.code,
      'SLUICE_METRICS_UNREACHABLE',
    );
  });

  it('follows the fleet: a rewritten targets file adds a scrape target', async () => {
    second = await startExporter(TRAFFIC);
    await server.setTargets([
      { url: exporter.url, labels: { app: 'podinfo' } },
      { url: second.url },
    ]);
    await waitFor(
      async () => {
        const m = await prom.query('count(count by (instance) (istio_requests_total))');
        return m.value === 2 ? true : undefined;
      },
      20_000,
      'prometheus to scrape the second target',
    );
  });

  it('Prometheus stopped mid-run: error measurements, no throw; builtin still answers', async () => {
    await server.close();
    assert.equal(server.running, false);
    const m = await prom.query(q('request-success-rate', 'podinfo'));
    assert.equal(m.phase, 'error');
    assert.equal(m.error?.code, 'SLUICE_METRICS_UNREACHABLE');
    const c = await prom.check();
    assert.ok(!c.ok);
    assert.equal((await builtin.query(q('request-success-rate', 'podinfo'))).phase, 'ok');
  });
});
