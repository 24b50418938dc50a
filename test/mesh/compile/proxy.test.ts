/**
 * Compiled configs against the real consumer: every config from every loadable Istio fixture
 * passes the ProxyConfig schema and the proxy's compiler, and real proxies on loopback route
 * bookinfo traffic (gateway → productpage, productpage → reviews by header) with them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProxyBootstrap, ProxyConfig } from '../../../src/api/proxy-config.js';
import { compileMesh } from '../../../src/mesh/compile/index.js';
import type { ProxyInstance } from '../../../src/mesh/registry.js';
import { compileConfig } from '../../../src/proxy/compile.js';
import { dispatchRoute } from '../../../src/proxy/filters.js';
import { Proxy } from '../../../src/proxy/proxy.js';
import { SecurityRuntime } from '../../../src/proxy/security/runtime.js';
import { ClusterManager } from '../../../src/proxy/upstream/cluster.js';
import { validateConfig } from '../../../src/proxy/validate.js';
import { request, silent, upstream, type Upstream } from '../../proxy/helpers.js';
import { selfSignedCert } from '../../support/certs.js';
import {
  bookinfo,
  fixture,
  gatewayProxy,
  ISTIO_FIXTURES,
  registryOf,
  sidecar,
  stateOf,
  tryStateOf,
} from './helpers.js';

/** A certificate pair every gateway server of the fixtures is given (see `accept`). */
let certs = '';

before(() => {
  certs = mkdtempSync(join(tmpdir(), 'sluice-compile-certs-'));
  selfSignedCert('gateway.test', join(certs, 'tls.crt'), join(certs, 'tls.key'));
});
after(() => rmSync(certs, { recursive: true, force: true }));

/**
 * Compiles `config` as a proxy would. The fixtures' gateway servers name certificate files of
 * an Istio pod (`/etc/certs/...`) or Kubernetes secrets: here each is the test's own pair.
 */
function accept(config: ProxyConfig, labels: Record<string, string>): void {
  const value = validateConfig(JSON.parse(JSON.stringify(config)));
  for (const l of value.listeners) {
    for (const s of l.servers ?? []) {
      if (s.tls?.serverCertificate !== undefined) s.tls.serverCertificate = join(certs, 'tls.crt');
      if (s.tls?.privateKey !== undefined) s.tls.privateKey = join(certs, 'tls.key');
      const name = s.tls?.credentialName;
      if (name !== undefined && !existsSync(join(certs, name))) {
        mkdirSync(join(certs, name));
        copyFileSync(join(certs, 'tls.crt'), join(certs, name, 'tls.crt'));
        copyFileSync(join(certs, 'tls.key'), join(certs, name, 'tls.key'));
      }
    }
  }
  compileConfig(value, {
    identityLabels: labels,
    clusters: new ClusterManager(),
    serverFilters: [],
    dispatch: dispatchRoute,
    security: new SecurityRuntime({ log: silent }),
    credentials: { baseDir: certs, credentialsDir: certs },
  });
}

describe('compiled configs are accepted by the proxy', () => {
  const files = readdirSync(ISTIO_FIXTURES).filter((f) => f.endsWith('.yaml'));

  it('for every loadable Istio fixture, with bookinfo services and gateways', () => {
    const b = bookinfo();
    const registry = registryOf(
      ...b.proxies,
      sidecar('client-v1', { namespace: 'testns' }),
      gatewayProxy('ingress', { istio: 'ingressgateway' }),
      gatewayProxy('egress', { istio: 'egressgateway' }),
    );
    let compiled = 0;
    for (const f of files) {
      const text = fixture(f);
      const state = tryStateOf(b.services, text);
      if (typeof state === 'string') continue;
      const r = compileMesh(state, registry);
      for (const [id, config] of r.configs) {
        const p = registry.proxies.find((x) => x.id === id) as ProxyInstance;
        try {
          accept(config, p.labels);
        } catch (e) {
          assert.fail(`${f}: config of ${id} rejected: ${(e as Error).message}`);
        }
        compiled++;
      }
    }
    assert.ok(compiled > 100, `only ${compiled} configs compiled`);
  });
});

describe('real proxies run compiled configs (bookinfo)', () => {
  const apps = new Map<string, Upstream>();
  const proxies = new Map<string, { proxy: Proxy; ports: Record<string, number | undefined> }>();
  const empty: ProxyConfig = {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version: 'empty',
    listeners: [],
    clusters: [],
  };

  async function start(
    p: ProxyInstance,
    listeners: ProxyBootstrap['listeners'],
  ): Promise<Record<string, number | undefined>> {
    const proxy = new Proxy({
      log: silent,
      bootstrap: {
        apiVersion: 'sluice.dev/v1alpha1',
        kind: 'ProxyBootstrap',
        identity: { workload: p.workload, namespace: p.namespace, labels: p.labels },
        listeners,
        config: { static: empty },
      },
    });
    await proxy.start();
    const ports = proxy.ports();
    proxies.set(p.id, { proxy, ports });
    return ports;
  }

  let gatewayPort = 0;
  let clientPort = 0;

  before(async () => {
    for (const name of ['productpage', 'reviews-v2', 'reviews-v3'])
      apps.set(name, await upstream(name));
    const registry: ProxyInstance[] = [];
    for (const w of ['productpage-v1', 'reviews-v2', 'reviews-v3']) {
      const app = apps.get(w === 'productpage-v1' ? 'productpage' : w) as Upstream;
      const p = sidecar(w, {
        appPorts: [{ containerPort: 9080, name: 'http', hostPort: app.port }],
      });
      const ports = await start(p, { outbound: { port: 0 }, inbound: { port: 0 } });
      p.inboundPort = ports.inbound as number;
      if (w === 'productpage-v1') clientPort = ports.outbound as number;
      registry.push(p);
    }
    const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
    gatewayPort = (await start(gw, { gateway: { port: 0 } })).gateway as number;
    registry.push(gw);
    const b = bookinfo();
    const result = compileMesh(
      stateOf(
        b.services,
        fixture('bookinfo-destination-rule-all.yaml'),
        fixture('bookinfo-virtual-service-reviews-jason-v2-v3.yaml'),
        fixture('bookinfo-bookinfo-gateway.yaml'),
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-private, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: [/private/*]}}]}]`,
      ),
      registryOf(...registry),
      undefined,
      // These proxies have no workload certificates: plaintext between them.
      { autoMtls: false },
    );
    for (const [id, config] of result.configs) {
      const r = proxies.get(id)?.proxy.apply(config, 'test');
      assert.equal(r?.ok, true, `${id}: ${JSON.stringify(r?.error)}`);
    }
  });

  after(async () => {
    for (const { proxy } of proxies.values()) await proxy.stop();
    for (const a of apps.values()) await a.close();
  });

  it('gateway → productpage sidecar → productpage app for /productpage; 404 elsewhere', async () => {
    const r = await request(gatewayPort, {
      path: '/productpage',
      headers: { host: 'bookinfo.example' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok productpage');
    const miss = await request(gatewayPort, {
      path: '/admin',
      headers: { host: 'bookinfo.example' },
    });
    assert.equal(miss.status, 404);
  });

  it('productpage → reviews: end-user jason to v2, everyone else to v3', async () => {
    for (const host of ['reviews:9080', 'reviews', 'reviews.default.svc.cluster.local:9080']) {
      const jason = await request(clientPort, { headers: { host, 'end-user': 'jason' } });
      assert.equal(jason.body, 'ok reviews-v2', host);
      const other = await request(clientPort, { headers: { host } });
      assert.equal(other.body, 'ok reviews-v3', host);
    }
    assert.equal(apps.get('reviews-v2')?.seen.length, 3);
  });

  it('an AuthorizationPolicy DENY compiled onto reviews’ inbound listener answers 403', async () => {
    const denied = await request(clientPort, {
      path: '/private/x',
      headers: { host: 'reviews:9080' },
    });
    assert.equal(denied.status, 403);
    const ok = await request(clientPort, { path: '/public', headers: { host: 'reviews:9080' } });
    assert.equal(ok.status, 200);
  });
});
