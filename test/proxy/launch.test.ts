import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { ProxyBootstrap, ProxyConfig } from '../../src/api/proxy-config.js';
import { buildProxyBundle, proxyCommand, PROXY_V8_FLAGS } from '../../src/proxy/launch.js';
import { checkSchema, unsupportedKeywords } from '../../src/proxy/schema-lite.js';
import { bootstrap, cluster, config } from './helpers.js';

test('schema-lite implements every keyword the proxy schemas use', () => {
  assert.deepEqual(unsupportedKeywords(ProxyConfig), []);
  assert.deepEqual(unsupportedKeywords(ProxyBootstrap), []);
});

const good = config(
  [
    {
      match: [{ uri: { prefix: '/a' }, headers: { 'x-v': { exact: '1' } } }],
      route: [
        { cluster: 'a', weight: 90 },
        { cluster: 'a', weight: 10 },
      ],
      retries: { attempts: 2, perTryTimeout: '250ms', retryOn: '5xx' },
      redirect: undefined,
    },
  ],
  [cluster('a', [8080], { loadBalancer: { simple: 'ROUND_ROBIN' } })],
);
const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
const route0 = (c: Record<string, unknown>) =>
  ((c.listeners as Record<string, unknown>[])[0]!.virtualHosts as Record<string, unknown>[])[0]!
    .routes as Record<string, unknown>[];

// Each case mutates a copy of a valid config; schema-lite must agree with ajv on the verdict.
const cases: [string, (c: Record<string, unknown>) => void][] = [
  ['valid as is', () => {}],
  ['missing version', (c) => delete c.version],
  ['empty version', (c) => (c.version = '')],
  ['wrong kind literal', (c) => (c.kind = 'Nope')],
  ['unknown top-level field', (c) => (c.extra = 1)],
  ['listeners not an array', (c) => (c.listeners = {})],
  ['negative weight', (c) => ((route0(c)[0]!.route as { weight: number }[])[0]!.weight = -1)],
  ['fractional weight', (c) => ((route0(c)[0]!.route as { weight: number }[])[0]!.weight = 1.5)],
  [
    'bad duration',
    (c) => ((route0(c)[0]!.retries as { perTryTimeout: string }).perTryTimeout = '5'),
  ],
  [
    'µs duration',
    (c) => ((route0(c)[0]!.retries as { perTryTimeout: string }).perTryTimeout = '5µs'),
  ],
  [
    'header match not an object',
    (c) => ((route0(c)[0]!.match as { headers: unknown }[])[0]!.headers = { 'x-v': 'a' }),
  ],
  [
    'unknown StringMatch key',
    (c) => ((route0(c)[0]!.match as { uri: unknown }[])[0]!.uri = { suffix: 'a' }),
  ],
  [
    'empty domains',
    (c) =>
      ((c.listeners as { virtualHosts: { domains: string[] }[] }[])[0]!.virtualHosts[0]!.domains =
        []),
  ],
  [
    'union value outside',
    (c) => ((c.clusters as { loadBalancer: unknown }[])[0]!.loadBalancer = { simple: 'FASTEST' }),
  ],
  [
    'port out of range',
    (c) => ((c.clusters as { endpoints: { port: number }[] }[])[0]!.endpoints[0]!.port = 70000),
  ],
  ['null where object', (c) => (c.accessLog = null)],
  ['sampling above 1', (c) => (c.accessLog = { sampling: 2 })],
];

test('schema-lite verdicts agree with ajv on a table of configs', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(ProxyConfig);
  for (const [name, mutate] of cases) {
    const c = json(good);
    mutate(c);
    const lite = checkSchema(ProxyConfig, c);
    assert.equal(
      lite === null,
      validate(c),
      `${name}: lite=${lite} ajv=${JSON.stringify(validate.errors)}`,
    );
  }
  const b = json(bootstrap(good));
  assert.equal(checkSchema(ProxyBootstrap, b), null);
  delete (b.identity as Record<string, unknown>).workload;
  assert.match(
    checkSchema(ProxyBootstrap, b) ?? '',
    /\/identity must have required property 'workload'/,
  );
});

test('proxyCommand: a cached bundle whose main chunk has no ajv, TypeBox or YAML parser', async () => {
  const a = await buildProxyBundle();
  const cmd = await proxyCommand({ bootstrap: '/x/b.json', logLevel: 'warn' });
  assert.equal(cmd.execPath, process.execPath);
  assert.deepEqual(cmd.args, [
    ...PROXY_V8_FLAGS,
    a,
    '--bootstrap',
    '/x/b.json',
    '--log-level',
    'warn',
  ]);
  const text = await readFile(a, 'utf8');
  for (const pkg of [
    'node_modules/ajv/',
    'node_modules/@sinclair/typebox',
    'node_modules/yaml/src',
  ]) {
    assert.ok(!text.includes(pkg), `${pkg} is bundled`);
  }
});
