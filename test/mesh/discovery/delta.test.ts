/**
 * `config-delta`, both halves: what the server sends (mesh/discovery/delta.ts) rebuilds, on
 * the proxy (proxy/config-delta.ts), exactly the new config, reusing the base's unchanged
 * objects; what cannot be rebuilt is refused with a code, never half-applied.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster, ProxyConfig, VirtualHost } from '../../../src/api/proxy-config.js';
import { configDelta } from '../../../src/mesh/discovery/delta.js';
import { applyConfigDelta, DeltaBaseError } from '../../../src/proxy/config-delta.js';

const cluster = (name: string, port = 8080): Cluster => ({
  name,
  endpoints: [{ address: '127.0.0.1', port }],
});
const vhost = (name: string, cluster: string, weight = 100): VirtualHost => ({
  name,
  domains: [name],
  routes: [{ route: [{ cluster, weight }] }],
});

function base(): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version: 'v1',
    listeners: [
      { name: 'outbound', virtualHosts: [vhost('a', 'ca'), vhost('b', 'cb'), vhost('c', 'cc')] },
      { name: 'inbound', virtualHosts: [vhost('local', 'inbound|80')] },
    ],
    clusters: [cluster('ca'), cluster('cb'), cluster('cc'), cluster('inbound|80', 9000)],
  };
}

/** A copy of `c` (a new object graph, as a new compile gives) with `edit` applied. */
function next(edit: (c: ProxyConfig) => void): ProxyConfig {
  const c = structuredClone(base());
  c.version = 'v2';
  edit(c);
  return c;
}

/** Arrays of named items in name order: the rebuilt config may order new items last. */
function normal(c: unknown): unknown {
  if (Array.isArray(c)) {
    const items = c.map(normal);
    return items.every((x) => typeof (x as { name?: unknown })?.name === 'string')
      ? items.sort((a, b) =>
          String((a as { name: string }).name).localeCompare((b as { name: string }).name),
        )
      : items;
  }
  if (c !== null && typeof c === 'object')
    return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, normal(v)]));
  return c;
}

const cases: {
  name: string;
  edit: (c: ProxyConfig) => void;
  /** Sizes of the delta: clusters upserted/removed, listeners changed. */
  sent: { clusters: number; removed: number; listeners: number; vhosts: number };
}[] = [
  {
    name: 'only the version',
    edit: () => {},
    sent: { clusters: 0, removed: 0, listeners: 0, vhosts: 0 },
  },
  {
    name: 'a canary step: one route weight',
    edit: (c) => {
      (c.listeners[0] as { virtualHosts: VirtualHost[] }).virtualHosts[1] = vhost('b', 'cb', 90);
    },
    sent: { clusters: 0, removed: 0, listeners: 1, vhosts: 1 },
  },
  {
    name: 'an endpoint moved',
    edit: (c) => {
      c.clusters[2] = cluster('cc', 8081);
    },
    sent: { clusters: 1, removed: 0, listeners: 0, vhosts: 0 },
  },
  {
    name: 'a service added (cluster and virtual host)',
    edit: (c) => {
      c.clusters.push(cluster('cd'));
      c.listeners[0]?.virtualHosts.push(vhost('d', 'cd'));
    },
    sent: { clusters: 1, removed: 0, listeners: 1, vhosts: 1 },
  },
  {
    name: 'a service removed',
    edit: (c) => {
      c.clusters.splice(0, 1);
      c.listeners[0]?.virtualHosts.splice(0, 1);
    },
    sent: { clusters: 0, removed: 1, listeners: 1, vhosts: 0 },
  },
  {
    name: 'a listener gains an authorization policy (its own fields)',
    edit: (c) => {
      (c.listeners[1] as ProxyConfig['listeners'][number]).authorization = {
        policies: [{ name: 'ns/deny', action: 'DENY', rules: [{}] }],
      };
    },
    sent: { clusters: 0, removed: 0, listeners: 1, vhosts: 0 },
  },
  {
    name: 'a listener added and one removed',
    edit: (c) => {
      c.listeners.splice(1, 1);
      c.listeners.push({ name: 'gateway', virtualHosts: [vhost('*', 'ca')] });
    },
    sent: { clusters: 0, removed: 0, listeners: 2, vhosts: 1 },
  },
  {
    name: 'a top-level field added',
    edit: (c) => {
      c.accessLog = { sampling: 0.5 };
    },
    sent: { clusters: 0, removed: 0, listeners: 0, vhosts: 0 },
  },
];

describe('config-delta round trip', () => {
  for (const c of cases) {
    it(c.name, () => {
      const b = base();
      const n = next(c.edit);
      const delta = configDelta(b, n);
      assert.ok(delta, 'a delta is worth sending');
      assert.equal(delta.head.version, 'v2');
      assert.deepEqual(
        {
          clusters: delta.clusters.upsert.length,
          removed: delta.clusters.remove.length,
          listeners: delta.listeners.upsert.length + delta.listeners.remove.length,
          vhosts: delta.listeners.upsert.reduce((a, l) => a + l.virtualHosts.upsert.length, 0),
        },
        c.sent,
      );
      // Through JSON, as on the wire.
      const rebuilt = applyConfigDelta(b, JSON.parse(JSON.stringify(delta))) as ProxyConfig;
      assert.deepEqual(normal(rebuilt), normal(n));
      // What did not change is the base's very object (what the proxy's compile reuses).
      for (const cl of rebuilt.clusters) {
        const was = b.clusters.find((x) => x.name === cl.name);
        if (was && JSON.stringify(was) === JSON.stringify(cl)) assert.equal(cl, was, cl.name);
      }
      for (const l of rebuilt.listeners) {
        const bl = b.listeners.find((x) => x.name === l.name);
        for (const vh of l.virtualHosts) {
          const was = bl?.virtualHosts.find((x) => x.name === vh.name);
          if (was && JSON.stringify(was) === JSON.stringify(vh)) assert.equal(vh, was, vh.name);
        }
      }
    });
  }

  it('nothing kept (every item new): the whole config is sent instead', () => {
    const n = next((c) => {
      c.clusters = [cluster('x')];
      c.listeners = [{ name: 'outbound', virtualHosts: [vhost('x', 'x')] }];
    });
    assert.equal(configDelta(base(), n), null);
  });

  it('a name twice in either config: the whole config is sent instead', () => {
    const n = next((c) => c.clusters.push(cluster('ca', 1)));
    assert.equal(configDelta(base(), n), null);
    assert.equal(configDelta(n, base()), null);
  });
});

describe('config-delta the proxy cannot apply', () => {
  const good = () =>
    configDelta(
      base(),
      next((c) => c.clusters.push(cluster('cd'))),
    ) as object;
  const rows: { name: string; base: unknown; delta: unknown; message: RegExp }[] = [
    { name: 'no base', base: null, delta: good(), message: /no base config/ },
    {
      name: 'a base without clusters',
      base: { listeners: [] },
      delta: good(),
      message: /base clusters is not a list/,
    },
    {
      name: 'a base item without a name',
      base: { ...base(), clusters: [{ endpoints: [] }] },
      delta: good(),
      message: /base clusters has an item without a name/,
    },
    {
      name: 'a delta without a head',
      base: base(),
      delta: { ...good(), head: 1 },
      message: /malformed/,
    },
    {
      name: 'removals that are not names',
      base: base(),
      delta: { ...good(), clusters: { upsert: [], remove: [1] } },
      message: /clusters is malformed/,
    },
    {
      name: 'a new listener without its fields',
      base: base(),
      delta: {
        head: { version: 'v2' },
        clusters: { upsert: [], remove: [] },
        listeners: {
          upsert: [{ name: 'new', virtualHosts: { upsert: [], remove: [] } }],
          remove: [],
        },
      },
      message: /listener new is new but has no head/,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      assert.throws(
        () => applyConfigDelta(r.base, r.delta),
        (e: Error) =>
          e instanceof DeltaBaseError &&
          (e as DeltaBaseError).code === 'SLUICE_DISCOVERY_CLIENT_DELTA_UNUSABLE' &&
          r.message.test(e.message),
      );
    });
  }
});
