import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MetricTemplateProvider } from '../../src/api/flagger/metric-template.js';
import type { SecretSource } from '../../src/metrics/secret.js';
import { templateProviderConfig } from '../../src/metrics/template.js';

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
