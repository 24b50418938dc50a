import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMesh, DEFAULT_RETRY_POLICY } from '../../../src/mesh/compile/index.js';
import {
  bookinfo,
  clusterOf,
  fixture,
  listenerOf,
  registryOf,
  routesOf,
  serviceYaml,
  sidecar,
  stateOf,
  vhost,
} from './helpers.js';

const FQDN = (n: string, ns = 'default') => `${n}.${ns}.svc.cluster.local`;

describe('mesh compiler: services and clusters', () => {
  const b = bookinfo();
  const state = stateOf(b.services, fixture('bookinfo-destination-rule-all.yaml'));
  const result = compileMesh(state, registryOf(...b.proxies));
  const pp = result.configs.get('default/productpage-v1/0');
  assert.ok(pp);

  it('compiles one config per proxy, with no problems for bookinfo', () => {
    assert.equal(result.configs.size, b.proxies.length);
    assert.deepEqual(result.problems, []);
  });

  const reviews = b.proxies.filter((p) => p.workload.startsWith('reviews'));
  const CLUSTER_CASES: { cluster: string; endpoints: string[] }[] = [
    {
      cluster: `outbound|9080||${FQDN('reviews')}`,
      endpoints: ['reviews-v1', 'reviews-v2', 'reviews-v3'],
    },
    { cluster: `outbound|9080|v1|${FQDN('reviews')}`, endpoints: ['reviews-v1'] },
    { cluster: `outbound|9080|v3|${FQDN('reviews')}`, endpoints: ['reviews-v3'] },
    { cluster: `outbound|9080|v2|${FQDN('details')}`, endpoints: [] },
    { cluster: `outbound|9080|v2-mysql|${FQDN('ratings')}`, endpoints: [] },
    { cluster: `outbound|9080||${FQDN('ratings')}`, endpoints: ['ratings-v1'] },
  ];
  for (const c of CLUSTER_CASES) {
    it(`cluster ${c.cluster} has endpoints ${c.endpoints.join(',') || '(none)'}`, () => {
      const cl = clusterOf(pp, c.cluster);
      assert.ok(cl, `missing ${c.cluster}`);
      assert.deepEqual(
        cl.endpoints.map((e) => e.workload),
        c.endpoints,
      );
    });
  }

  it('endpoints carry the proxy address, inbound port and telemetry identity', () => {
    const cl = clusterOf(pp, `outbound|9080|v2|${FQDN('reviews')}`);
    const r2 = reviews.find((p) => p.workload === 'reviews-v2');
    assert.deepEqual(cl?.endpoints, [
      {
        address: '127.0.0.1',
        port: r2?.inboundPort,
        workload: 'reviews-v2',
        namespace: 'default',
        version: 'v2',
        labels: { app: 'reviews', version: 'v2' },
      },
    ]);
    assert.equal(cl?.service, FQDN('reviews'));
    assert.equal(cl?.serviceName, 'reviews');
    assert.equal(cl?.serviceNamespace, 'default');
  });

  it('leaves proxies that are not ready, or whose labels do not match, out', () => {
    const notReady = sidecar('reviews-v1', { replica: 1, ready: false });
    const other = sidecar('reviews-v9', { labels: { app: 'reviewz', version: 'v1' } });
    const r = compileMesh(
      stateOf(serviceYaml('reviews')),
      registryOf(sidecar('reviews-v1'), notReady, other),
    );
    const c = r.configs.get(notReady.id);
    assert.deepEqual(
      clusterOf(c!, `outbound|9080||${FQDN('reviews')}`)?.endpoints.map((e) => e.workload),
      ['reviews-v1'],
    );
  });

  it('a named targetPort selects only workloads that declare a port of that name', () => {
    const named = sidecar('api-v1', {
      appPorts: [{ containerPort: 8080, name: 'web', hostPort: 31001 }],
    });
    const unnamed = sidecar('api-v2', {
      appPorts: [{ containerPort: 8080, hostPort: 31002 }],
    });
    const r = compileMesh(
      stateOf(serviceYaml('api', { ports: [{ port: 80, name: 'http', targetPort: 'web' }] })),
      registryOf(named, unnamed),
    );
    const cl = clusterOf(r.configs.get(named.id)!, `outbound|80||${FQDN('api')}`);
    assert.deepEqual(
      cl?.endpoints.map((e) => e.workload),
      ['api-v1'],
    );
  });

  it('same-namespace services answer to their short name, with and without the port', () => {
    const vh = vhost(pp, 'outbound', 'reviews:9080');
    assert.deepEqual(vh?.domains, [
      'reviews:9080',
      'reviews.default:9080',
      'reviews.default.svc:9080',
      `${FQDN('reviews')}:9080`,
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      FQDN('reviews'),
    ]);
  });

  it('a service with no VirtualService gets a default route with Istio’s retry policy', () => {
    assert.deepEqual(routesOf(pp, 'outbound', 'details'), [
      {
        name: 'default',
        route: [{ cluster: `outbound|9080||${FQDN('details')}` }],
        retries: { attempts: 2, retryOn: DEFAULT_RETRY_POLICY.retryOn },
      },
    ]);
    assert.match(DEFAULT_RETRY_POLICY.retryOn, /^connect-failure,refused-stream,unavailable,/);
    assert.match(DEFAULT_RETRY_POLICY.retryOn, /retriable-status-codes,503$/);
  });

  it('other namespaces’ services have no short name; their own namespace’s do', () => {
    const client = sidecar('client-v1', { namespace: 'shop' });
    const r = compileMesh(
      stateOf(serviceYaml('reviews'), serviceYaml('cart', { namespace: 'shop' })),
      registryOf(sidecar('reviews-v1'), client),
    );
    const c = r.configs.get(client.id)!;
    assert.equal(vhost(c, 'outbound', 'reviews'), undefined);
    assert.ok(vhost(c, 'outbound', 'reviews.default'));
    assert.ok(vhost(c, 'outbound', 'reviews.default:9080'));
    assert.ok(vhost(c, 'outbound', 'cart'));
  });

  it('a multi-port service: a virtual host per port; bare names go to port 80', () => {
    const web = sidecar('web-v1', {
      appPorts: [
        { containerPort: 8080, name: 'http', hostPort: 31010 },
        { containerPort: 9090, name: 'admin', hostPort: 31011 },
      ],
    });
    const r = compileMesh(
      stateOf(
        serviceYaml('web', {
          ports: [
            { port: 9090, name: 'http-admin', targetPort: 'admin' },
            { port: 80, name: 'http', targetPort: 8080 },
            { port: 5432, name: 'tcp-db' },
          ],
        }),
      ),
      registryOf(web),
    );
    const c = r.configs.get(web.id)!;
    assert.equal(vhost(c, 'outbound', 'web')?.name, `${FQDN('web')}:80`);
    assert.equal(vhost(c, 'outbound', 'web:9090')?.name, `${FQDN('web')}:9090`);
    // TCP ports get a cluster but no virtual host (sluice routes HTTP only).
    assert.equal(vhost(c, 'outbound', 'web:5432'), undefined);
    assert.ok(clusterOf(c, `outbound|5432||${FQDN('web')}`));
    // Inbound: the caller's service port picks the container port.
    const inbound = routesOf(c, 'inbound', '*');
    assert.deepEqual(inbound, [
      { match: [{ port: 80 }], route: [{ cluster: 'inbound|8080||' }], retries: { attempts: 0 } },
      { name: 'default', route: [{ cluster: 'inbound|9090||' }], retries: { attempts: 0 } },
    ]);
    // The workload port each request reaches, as those routes send it (for port-level mTLS
    // and authorization ports).
    assert.deepEqual(listenerOf(c, 'inbound').targetPorts, {
      default: 9090,
      byPort: { '80': 8080 },
    });
    assert.deepEqual(clusterOf(c, 'inbound|9090||')?.endpoints, [
      {
        address: '127.0.0.1',
        port: 31011,
        workload: 'web-v1',
        namespace: 'default',
        version: 'v1',
      },
    ]);
  });

  it("a DestinationRule's connection pool limits the inbound cluster too (Istio's server side)", () => {
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-pool, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 10}
      http: {http1MaxPendingRequests: 5, http2MaxRequests: 20}
    outlierDetection: {consecutive5xxErrors: 3}
`;
    const r = compileMesh(stateOf(b.services, dr), registryOf(...b.proxies));
    const rv = reviews[0]!;
    const inbound = clusterOf(r.configs.get(rv.id)!, 'inbound|9080||');
    assert.deepEqual(inbound?.connectionPool, {
      tcp: { maxConnections: 10 },
      http: { http1MaxPendingRequests: 5, http2MaxRequests: 20 },
    });
    // Only the pool: load balancing and outlier detection are the client side's.
    assert.equal(inbound?.outlierDetection, undefined);
    // A workload no rule covers keeps an unlimited inbound cluster.
    const pp = b.proxies.find((p) => p.workload.startsWith('productpage'))!;
    assert.equal(clusterOf(r.configs.get(pp.id)!, 'inbound|9080||')?.connectionPool, undefined);
  });

  it('the inbound listener routes everything to the app port when it has one', () => {
    const rv = reviews[0]!;
    const c = result.configs.get(rv.id)!;
    assert.deepEqual(routesOf(c, 'inbound', '*'), [
      { name: 'default', route: [{ cluster: 'inbound|9080||' }], retries: { attempts: 0 } },
    ]);
    assert.equal(clusterOf(c, 'inbound|9080||')?.endpoints[0]?.port, rv.appPorts[0]?.hostPort);
    assert.deepEqual(listenerOf(c, 'inbound').targetPorts, { default: 9080 });
  });
});

describe('mesh compiler: ServiceEntry', () => {
  const client = sidecar('client-v1', { namespace: 'testns' });
  const state = stateOf(
    fixture('testdata-rule-weighted-route.yaml'),
    fixture('bookinfo-egress-rule-google-apis.yaml').replace(/\n---\n[\s\S]*$/, ''),
  );
  const r = compileMesh(state, registryOf(client));
  const c = r.configs.get(client.id)!;

  it('STATIC resolution: the given endpoints, their port by name, their labels for subsets', () => {
    const all = clusterOf(c, 'outbound|80||c-weighted.extsvc.com');
    assert.deepEqual(
      all?.endpoints.map((e) => `${e.address}:${e.port}`),
      ['127.0.0.2:7072', '127.0.0.3:7074'],
    );
    assert.deepEqual(
      clusterOf(c, 'outbound|80|v2|c-weighted.extsvc.com')?.endpoints.map((e) => e.address),
      ['127.0.0.3'],
    );
  });

  it('DNS resolution without endpoints: the host itself on each port', () => {
    assert.deepEqual(clusterOf(c, 'outbound|80||www.googleapis.com')?.endpoints, [
      { address: 'www.googleapis.com', port: 80 },
    ]);
    assert.deepEqual(clusterOf(c, 'outbound|443||www.googleapis.com')?.endpoints, [
      { address: 'www.googleapis.com', port: 443 },
    ]);
  });

  it('HTTP ports of an entry get a virtual host; HTTPS ports only a cluster', () => {
    assert.ok(vhost(c, 'outbound', 'www.googleapis.com'));
    assert.ok(vhost(c, 'outbound', 'www.googleapis.com:80'));
    assert.equal(vhost(c, 'outbound', 'www.googleapis.com:443'), undefined);
  });
});
