import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { MetricTemplateProvider } from '../../src/api/flagger/metric-template.js';
import type { SecretSource } from '../../src/metrics/secret.js';
import { templateProviderConfig } from '../../src/metrics/template.js';
import { MemoryProvider } from '../../src/metrics/memory.js';
import { ProviderPool } from '../../src/metrics/pool.js';
import { PrometheusProvider } from '../../src/metrics/prometheus.js';
import { scrapeTargetsOf } from '../../src/metrics/targets.js';
import { FakeClock, silent } from './helpers.js';

const secrets: Record<string, Record<string, SecretSource>> = {
  'test/prom-basic': { username: { value: 'admin' }, password: { file: '/run/secrets/prom-pass' } },
  'test/prom-token': { token: { env: 'PROM_TOKEN' } },
  'test/prom-half': { username: { value: 'admin' } },
};
const ctx = {
  namespace: 'test',
  resolveSecretRef: (ns: string, name: string) => secrets[`${ns}/${name}`],
};

describe('MetricTemplate provider to provider config', () => {
  const ok: [string, MetricTemplateProvider, unknown][] = [
    ['builtin', { type: 'builtin' }, { type: 'builtin' }],
    [
      'prometheus',
      { type: 'prometheus', address: 'http://prom:9090' },
      { type: 'prometheus', address: 'http://prom:9090' },
    ],
    [
      'basic auth from username/password keys, TLS and headers',
      {
        type: 'prometheus',
        address: 'https://prom:9090',
        secretRef: { name: 'prom-basic' },
        insecureSkipVerify: true,
        headers: { 'X-Scope-OrgID': ['tenant-a'] },
      },
      {
        type: 'prometheus',
        address: 'https://prom:9090',
        insecureSkipVerify: true,
        headers: { 'X-Scope-OrgID': 'tenant-a' },
        auth: {
          type: 'basic',
          username: { value: 'admin' },
          password: { file: '/run/secrets/prom-pass' },
        },
      },
    ],
    [
      'bearer from a token key',
      { type: 'prometheus', address: 'http://prom:9090', secretRef: { name: 'prom-token' } },
      {
        type: 'prometheus',
        address: 'http://prom:9090',
        auth: { type: 'bearer', token: { env: 'PROM_TOKEN' } },
      },
    ],
  ];
  for (const [name, provider, want] of ok)
    it(name, () => assert.deepEqual(templateProviderConfig(provider, ctx), want));

  const refused: [string, MetricTemplateProvider, string, RegExp][] = [
    [
      'datadog',
      { type: 'datadog' } as unknown as MetricTemplateProvider,
      'SLUICE_METRICS_PROVIDER_UNKNOWN',
      /datadog/,
    ],
    [
      'prometheus without address',
      { type: 'prometheus' },
      'SLUICE_METRICS_CONFIG_INVALID',
      /address/,
    ],
    [
      'missing secret',
      { type: 'prometheus', address: 'http://p', secretRef: { name: 'nope' } },
      'SLUICE_METRICS_CONFIG_INVALID',
      /test\/nope .*not found/,
    ],
    [
      'secret without password',
      { type: 'prometheus', address: 'http://p', secretRef: { name: 'prom-half' } },
      'SLUICE_METRICS_CONFIG_INVALID',
      /token key or username and password/,
    ],
  ];
  for (const [name, provider, code, message] of refused)
    it(`refuses ${name}`, () =>
      assert.throws(
        () => templateProviderConfig(provider, ctx),
        (e: { code?: string; message: string }) => e.code === code && message.test(e.message),
      ));
});

describe('provider pool', () => {
  const clock = new FakeClock();
  const defaultProvider = new MemoryProvider({ answers: { up: 1 } }, clock);
  const pool = new ProviderPool({
    defaultProvider,
    logger: silent,
    clock,
    resolveSecretRef: ctx.resolveSecretRef,
  });
  after(() => pool.close());

  it('shares one client per distinct prometheus config; builtin templates use the default provider', () => {
    const a = pool.forAddress('http://prom:9090');
    assert.ok(a instanceof PrometheusProvider);
    assert.equal(pool.forTemplate({ type: 'prometheus', address: 'http://prom:9090' }, 'test'), a);
    assert.notEqual(
      pool.forTemplate(
        { type: 'prometheus', address: 'http://prom:9090', secretRef: { name: 'prom-token' } },
        'test',
      ),
      a,
    );
    assert.equal(pool.forTemplate({ type: 'builtin' }, 'test'), defaultProvider);
    assert.equal(pool.default, defaultProvider);
  });

  it('a provider that cannot be configured answers its error on every query and check, never throws', async () => {
    const bad = [
      pool.forTemplate(
        { type: 'prometheus', address: 'http://p', secretRef: { name: 'nope' } },
        'test',
      ),
      pool.forAddress('not-a-url'),
      pool.forTemplate({ type: 'datadog' } as unknown as MetricTemplateProvider, 'test'),
    ];
    const codes = [
      'SLUICE_METRICS_CONFIG_INVALID',
      'SLUICE_METRICS_CONFIG_INVALID',
      'SLUICE_METRICS_PROVIDER_UNKNOWN',
    ];
    for (const [i, p] of bad.entries()) {
      const m = await p.query('up');
      assert.equal(m.phase, 'error');
      assert.equal(m.error?.code, codes[i]);
      assert.equal(m.at, clock.now());
      const c = await p.check();
      assert.ok(!c.ok && c.error.code === codes[i]);
    }
  });
});

describe('scrape targets from the fleet', () => {
  it('one target per proxy with an admin port, IPv6 bracketed, sorted', () => {
    assert.deepEqual(
      scrapeTargetsOf([
        { id: 'test/podinfo/1', address: '127.0.0.1', adminPort: 15001 },
        { id: 'gateway/ingress', address: '::1', adminPort: 15000 },
        { id: 'test/podinfo/0', address: '127.0.0.1' },
      ]),
      [
        { url: 'http://[::1]:15000/stats/prometheus', labels: { proxy: 'gateway/ingress' } },
        { url: 'http://127.0.0.1:15001/stats/prometheus', labels: { proxy: 'test/podinfo/1' } },
      ],
    );
  });
});
