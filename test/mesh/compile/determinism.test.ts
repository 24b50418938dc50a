import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMesh, configJson } from '../../../src/mesh/compile/index.js';
import {
  bookinfo,
  fixture,
  gatewayProxy,
  registryOf,
  serviceYaml,
  sidecar,
  stateOf,
} from './helpers.js';

describe('mesh compiler: determinism and incremental versions', () => {
  const b = bookinfo();
  const shop = sidecar('cart-v1', { namespace: 'shop' });
  const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
  const texts = [
    b.services,
    serviceYaml('cart', { namespace: 'shop' }),
    fixture('bookinfo-destination-rule-all.yaml'),
    fixture('bookinfo-virtual-service-reviews-80-20.yaml'),
    fixture('bookinfo-bookinfo-gateway.yaml'),
  ];
  const registry = registryOf(...b.proxies, shop, gw);

  it('the same input compiles to byte-identical configs and versions', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const c = compileMesh(stateOf(...texts), registry);
    assert.equal(a.configs.size, registry.proxies.length);
    for (const [id, config] of a.configs) {
      assert.equal(JSON.stringify(config), JSON.stringify(c.configs.get(id)), id);
    }
  });

  it('configJson is JSON.stringify, byte for byte, from shared fragments', () => {
    const a = compileMesh(stateOf(...texts), registry);
    for (const config of a.configs.values())
      assert.equal(configJson(config), JSON.stringify(config));
    const logged = compileMesh(stateOf(...texts), registry, undefined, { accessLogSampling: 0.25 });
    for (const config of logged.configs.values())
      assert.equal(configJson(config), JSON.stringify(config));
    const plain = JSON.parse(JSON.stringify([...a.configs.values()][0]));
    assert.equal(configJson(plain), JSON.stringify(plain));
  });

  it('versions differ between proxies with different inbound parts', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const versions = new Set([...a.configs.values()].map((c) => c.version));
    assert.equal(versions.size, a.configs.size);
  });

  it('with the previous result: nothing changed, nothing to push, same objects', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const c = compileMesh(stateOf(...texts), registry, a);
    assert.deepEqual([...c.changed], []);
    assert.deepEqual(c.removed, []);
    for (const [id, config] of c.configs) assert.equal(config, a.configs.get(id));
  });

  it('a change scoped to one namespace changes only that namespace’s proxies', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const local = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  exportTo: ["."]
  http:
  - route: [{destination: {host: cart}}]
    timeout: 1s
`;
    const c = compileMesh(stateOf(...texts, local), registry, a);
    assert.deepEqual([...c.changed], [shop.id]);
  });

  it('a new endpoint changes the proxies that see its service, and only those', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const extra = sidecar('cart-v1', { namespace: 'shop', replica: 1 });
    const c = compileMesh(stateOf(...texts), registryOf(...registry.proxies, extra), a);
    // Every sidecar and the gateway see `cart` (exported everywhere): all change.
    assert.equal(c.changed.size, registry.proxies.length + 1);
    assert.ok(c.changed.has(extra.id));
    // A service exported only to its namespace: only that namespace changes.
    const hidden = [
      ...texts.slice(0, 1),
      serviceYaml('cart', { namespace: 'shop', exportTo: '.' }),
      ...texts.slice(2),
    ];
    const h1 = compileMesh(stateOf(...hidden), registry);
    const h2 = compileMesh(stateOf(...hidden), registryOf(...registry.proxies, extra), h1);
    assert.deepEqual([...h2.changed].sort(), [shop.id, extra.id].sort());
  });

  it('an unaffected namespace’s outbound view is reused, not rebuilt', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const policy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: cart-deny, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  exportTo: ["."]
  http: [{route: [{destination: {host: cart}}], timeout: 1s}]
`;
    const c = compileMesh(stateOf(...texts, policy), registry, a);
    assert.equal(c.views.get('default')?.view, a.views.get('default')?.view);
    assert.notEqual(c.views.get('shop')?.view, a.views.get('shop')?.view);
    assert.deepEqual([...c.changed], [shop.id]);
    const pp = c.configs.get('default/productpage-v1/0');
    assert.equal(pp, a.configs.get('default/productpage-v1/0'));
  });

  it('a proxy whose compile fails keeps its previous config; the others compile', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const broken = registry.proxies.map((p) =>
      p.id === shop.id ? { ...p, appPorts: 5 as never } : p,
    );
    const c = compileMesh(stateOf(...texts), { proxies: broken }, a);
    assert.ok(c.problems.some((p) => p.code === 'SLUICE_MESH_COMPILE_FAILED'));
    assert.equal(c.configs.get(shop.id), a.configs.get(shop.id));
    assert.equal(c.configs.size, registry.proxies.length);
    assert.equal(c.changed.has(shop.id), false);
  });

  it('a replica going away is reported as removed', () => {
    const a = compileMesh(stateOf(...texts), registry);
    const c = compileMesh(
      stateOf(...texts),
      registryOf(...registry.proxies.filter((p) => p.id !== shop.id)),
      a,
    );
    assert.deepEqual(c.removed, [shop.id]);
  });

  it('bad objects and registry entries are skipped with a problem, never thrown', () => {
    const state = stateOf(...texts);
    const broken = {
      ...state,
      objects: [
        ...state.objects,
        {
          kind: 'Service',
          namespace: 'default',
          name: 'bad',
          object: { spec: { ports: [{ port: 'x' }] } },
        },
        { kind: 'VirtualService', namespace: 'default', name: 'odd', object: { spec: 7 } },
      ],
    };
    const bad = { ...sidecar('bad-v1'), inboundPort: Number.NaN };
    const r = compileMesh(broken as never, registryOf(...registry.proxies, bad));
    assert.ok(
      r.problems.some(
        (p) => p.code === 'SLUICE_MESH_OBJECT_INVALID' && p.object === 'Service/default/bad',
      ),
    );
    assert.ok(r.problems.some((p) => p.code === 'SLUICE_MESH_PROXY_INVALID'));
    assert.equal(r.configs.has(bad.id), false);
    assert.equal(r.configs.size, registry.proxies.length);
  });

  it('accessLogSampling: every proxy config carries it, and its versions move with it', () => {
    const off = compileMesh(stateOf(...texts), registry);
    const on = compileMesh(stateOf(...texts), registry, off, { accessLogSampling: 0.25 });
    assert.equal(on.changed.size, registry.proxies.length);
    for (const [id, config] of on.configs) {
      assert.deepEqual(config.accessLog, { sampling: 0.25 }, id);
      assert.equal(off.configs.get(id)?.accessLog, undefined, id);
      assert.notEqual(config.version, off.configs.get(id)?.version, id);
    }
  });
});
