/**
 * One object with a value the proxies cannot compile must not freeze the others. The load
 * refuses such objects (SLUICE_VALUE_INVALID); these tests hand them to the compiler anyway,
 * as desired state that slipped past it would, and run every resulting config through the
 * proxy's own validation and compiler: each is accepted, the bad route or rule is left out (or
 * degraded, failing closed) with a SLUICE_MESH_* problem, and the good objects still apply.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { ProxyConfig } from '../../../src/api/proxy-config.js';
import { compileMesh, type MeshCompilation } from '../../../src/mesh/compile/index.js';
import type { MeshState } from '../../../src/mesh/mesh-target.js';
import type { ProxyInstance } from '../../../src/mesh/registry.js';
import { compileConfig } from '../../../src/proxy/compile.js';
import { dispatchRoute } from '../../../src/proxy/filters.js';
import { SecurityRuntime } from '../../../src/proxy/security/runtime.js';
import { ClusterManager } from '../../../src/proxy/upstream/cluster.js';
import { validateConfig } from '../../../src/proxy/validate.js';
import { silent } from '../../proxy/helpers.js';
import {
  clusterOf,
  gatewayProxy,
  listenerOf,
  registryOf,
  routesOf,
  serviceYaml,
  sidecar,
  stateOf,
  reviewsVs,
} from './helpers.js';

/** Compiles `config` as a proxy does (schema, then compile); throws what the proxy would NACK with. */
function accept(config: ProxyConfig, labels: Record<string, string>): void {
  compileConfig(validateConfig(JSON.parse(JSON.stringify(config))), {
    identityLabels: labels,
    clusters: new ClusterManager(),
    serverFilters: [],
    dispatch: dispatchRoute,
    security: new SecurityRuntime({ log: silent }),
  });
}

/** `texts` loaded as `sluice validate` does, plus `raw` objects that skip the load's checks. */
function stateWith(texts: string[], raw: string[]): MeshState {
  const base = stateOf(...texts);
  const extra = raw.map((y) => {
    const object = parse(y) as Record<string, unknown>;
    const meta = object.metadata as { name: string; namespace?: string };
    return {
      kind: String(object.kind),
      namespace: meta.namespace ?? 'default',
      name: meta.name,
      object,
    };
  });
  return { ...base, objects: [...base.objects, ...extra] };
}

const web = sidecar('web-v1', { labels: { app: 'web', version: 'v1' } });
const reviews = sidecar('reviews-v1', { labels: { app: 'reviews', version: 'v1' } });
const ratings = sidecar('ratings-v1', { labels: { app: 'ratings', version: 'v1' } });
const proxies = [web, reviews, ratings];
const SERVICES = ['web', 'reviews', 'ratings'].map((n) => serviceYaml(n));
const FQDN = (n: string) => `${n}.default.svc.cluster.local`;

/** A good VirtualService of ratings (a header route to a subset-less cluster). */
const GOOD_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
    - name: jason
      match:
        - headers:
            end-user: {exact: jason}
      route:
        - destination: {host: ratings}
      timeout: 2s
    - route:
        - destination: {host: ratings}`;

/** Every sidecar's config compiles in the proxy; returns the compilation. */
function compileAll(state: MeshState, extra: ProxyInstance[] = []): MeshCompilation {
  const all = [...proxies, ...extra];
  const r = compileMesh(state, registryOf(...all));
  assert.equal(r.configs.size, all.length);
  for (const p of all) {
    const config = r.configs.get(p.id);
    assert.ok(config, `no config for ${p.id}`);
    assert.doesNotThrow(() => accept(config, p.labels), `config of ${p.id} is rejected`);
  }
  return r;
}

const codes = (r: MeshCompilation, object?: string) =>
  r.problems.filter((p) => object === undefined || p.object === object).map((p) => p.code);

describe('a bad VirtualService does not freeze the namespace', () => {
  const BAD_VS = reviewsVs(`    - name: insensitive
      match:
        - uri: {regex: "(?i)/api/.*"}
      route:
        - destination: {host: reviews}
    - name: rest
      route:
        - destination: {host: reviews}
      retries: {attempts: 3, retryOn: "5xx,connect-failures"}`);

  it('every sidecar of the namespace accepts its config; the good VirtualService applies', () => {
    const r = compileAll(stateWith([...SERVICES, GOOD_VS], [BAD_VS]));
    const config = r.configs.get(web.id) as ProxyConfig;
    // The good VirtualService's routes are there, as written.
    const good = routesOf(config, 'outbound', 'ratings');
    assert.deepEqual(
      good.map((x) => x.name),
      ['jason', undefined],
    );
    assert.equal(good[0]?.timeout, '2s');
    // The bad one keeps what the proxies can run: the route with the regex is left out, the
    // retry condition nobody knows is dropped from the other.
    const bad = routesOf(config, 'outbound', 'reviews');
    assert.deepEqual(
      bad.map((x) => [x.name, x.retries]),
      [['rest', { attempts: 3, retryOn: '5xx' }]],
    );
    assert.deepEqual(
      [...new Set(codes(r, 'VirtualService/default/reviews'))],
      ['SLUICE_MESH_VALUE_INVALID'],
    );
    assert.ok(r.problems.some((p) => /\(\?i\)/.test(p.message)));
    assert.ok(r.problems.some((p) => /connect-failures/.test(p.message)));
  });

  it('without the compiler leaving them out, the proxy would reject the whole config', () => {
    const r = compileAll(stateWith([...SERVICES, GOOD_VS], [BAD_VS]));
    const config = structuredClone(r.configs.get(web.id) as ProxyConfig);
    const vh = listenerOf(config, 'outbound').virtualHosts.find((v) =>
      v.domains.includes('reviews'),
    );
    const route = vh?.routes[0];
    assert.ok(route);
    route.match = [{ uri: { regex: '(?i)/api/.*' } }];
    assert.throws(() => accept(config, web.labels), /invalid regex/);
    route.match = undefined;
    route.retries = { attempts: 3, retryOn: '5xx,connect-failures' };
    assert.throws(() => accept(config, web.labels), /unknown condition/);
  });

  const ROUTE_CASES: { name: string; http: string; problem: RegExp }[] = [
    {
      name: 'a header regex with an RE2 escape JavaScript misreads',
      http: `match:\n        - headers:\n            x-a: {regex: "a\\\\z"}`,
      problem: /\\z/,
    },
    {
      name: 'a uriRegexRewrite that does not compile',
      http: `rewrite:\n        uriRegexRewrite: {match: "^/v1/(.*", rewrite: /v2/}`,
      problem: /Unterminated group/,
    },
    {
      name: 'a CORS origin regex with a named RE2 group',
      http: `corsPolicy:\n        allowOrigins: [{regex: "(?P<h>.*)"}]`,
      problem: /named groups/,
    },
    {
      name: 'a header name that is not a token',
      http: `headers:\n        request:\n          set: {"x user": a}`,
      problem: /not a header name/,
    },
    {
      name: 'a header value with CR LF',
      http: `headers:\n        response:\n          add: {x-a: "1\\r\\nset-cookie: admin=1"}`,
      problem: /control characters/,
    },
  ];
  for (const c of ROUTE_CASES) {
    it(`${c.name}: its route is left out, the service keeps its default route`, () => {
      const vs = reviewsVs(`    - name: bad
      ${c.http}
      route:
        - destination: {host: reviews}`);
      const r = compileAll(stateWith([...SERVICES, GOOD_VS], [vs]));
      const config = r.configs.get(web.id) as ProxyConfig;
      assert.deepEqual(
        routesOf(config, 'outbound', 'reviews').map((x) => x.name),
        ['default'],
      );
      assert.equal(routesOf(config, 'outbound', 'ratings').length, 2);
      const p = r.problems.find((x) => x.object === 'VirtualService/default/reviews');
      assert.equal(p?.code, 'SLUICE_MESH_VALUE_INVALID');
      assert.match(p?.message ?? '', c.problem);
    });
  }

  it('retryOn with only conditions the proxies do not know: the route does not retry', () => {
    const vs = reviewsVs(`    - route:
        - destination: {host: reviews}
      retries: {attempts: 3, perTryTimeout: 1s, retryOn: "reset-before-request"}`);
    // Istio accepts this one (the load warns): no problem, but nothing to retry on.
    const r = compileAll(stateWith([...SERVICES, vs], []));
    const routes = routesOf(r.configs.get(web.id) as ProxyConfig, 'outbound', 'reviews');
    assert.deepEqual(routes[0]?.retries, { attempts: 0 });
    assert.deepEqual(codes(r, 'VirtualService/default/reviews'), []);
  });
});

describe('a bad security policy does not freeze the workloads it selects', () => {
  const ap = (action: string, rules: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: default}
spec:
  action: ${action}
  rules:
${rules}`;
  const authzOf = (r: MeshCompilation, p: ProxyInstance) =>
    listenerOf(r.configs.get(p.id) as ProxyConfig, 'inbound').authorization?.policies;

  it('an ALLOW rule with a value the proxies cannot parse is left out (it allows nothing)', () => {
    const policy = ap(
      'ALLOW',
      `    - from:\n        - source: {ipBlocks: ["10.0.0.0/33"]}\n    - to:\n        - operation: {methods: [GET], paths: ["/api/{*}.json"]}\n    - to:\n        - operation: {methods: [GET]}`,
    );
    const r = compileAll(stateWith(SERVICES, [policy]));
    const policies = authzOf(r, reviews);
    assert.deepEqual(policies?.[0]?.rules, [{ to: [{ operation: { methods: ['GET'] } }] }]);
    assert.deepEqual(codes(r, 'AuthorizationPolicy/default/bad'), [
      'SLUICE_MESH_VALUE_INVALID',
      'SLUICE_MESH_VALUE_INVALID',
    ]);
  });

  it('a DENY rule loses only the field or condition the proxies cannot parse (it denies more)', () => {
    const policy = ap(
      'DENY',
      `    - from:\n        - source: {namespaces: [dev], remoteIpBlocks: [nope]}\n      to:\n        - operation: {methods: [POST], ports: ["http"]}\n      when:\n        - {key: destination.port, values: ["9080x"]}\n        - {key: "request.headers[x-token]"}\n        - {key: source.namespace, values: [dev]}`,
    );
    const r = compileAll(stateWith(SERVICES, [policy]));
    assert.deepEqual(authzOf(r, ratings)?.[0], {
      name: 'default/bad',
      action: 'DENY',
      rules: [
        {
          from: [{ source: { namespaces: ['dev'] } }],
          to: [{ operation: { methods: ['POST'] } }],
          when: [{ key: 'source.namespace', values: ['dev'] }],
        },
      ],
    });
    assert.match(
      r.problems.find((p) => p.object === 'AuthorizationPolicy/default/bad')?.message ?? '',
      /denies more/,
    );
  });

  it('an inline JWKS that is not a key set becomes an empty one (tokens of that issuer get 401)', () => {
    const ra = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: bad, namespace: default}
spec:
  jwtRules:
    - issuer: https://issuer.example
      jwks: "{keys: []}"`;
    const r = compileAll(stateWith(SERVICES, [ra]));
    const rules = listenerOf(r.configs.get(web.id) as ProxyConfig, 'inbound').jwtRules;
    assert.deepEqual(rules, [{ issuer: 'https://issuer.example', jwks: '{"keys":[]}' }]);
    assert.deepEqual(codes(r, 'RequestAuthentication/default/bad'), ['SLUICE_MESH_VALUE_INVALID']);
  });
});

describe('bad services and destination rules do not freeze the namespace', () => {
  it('a Service with two ports of one number: one cluster per name', () => {
    const svc = serviceYaml('reviews', {
      ports: [
        { port: 9080, name: 'http' },
        { port: 9080, name: 'http-alt' },
      ],
    });
    const r = compileAll(stateWith([GOOD_VS, ...SERVICES.filter((_, i) => i !== 1)], [svc]));
    const names = (r.configs.get(web.id) as ProxyConfig).clusters.map((c) => c.name);
    assert.equal(names.filter((n) => n === `outbound|9080||${FQDN('reviews')}`).length, 1);
    assert.deepEqual(codes(r, 'Service/default/reviews'), ['SLUICE_MESH_DUPLICATE_CLUSTER']);
  });

  it('a ServiceEntry with two ports of one number, and a DestinationRule with two subsets of one name', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports:
    - {number: 80, name: http, protocol: HTTP}
    - {number: 80, name: http2, protocol: HTTP2}`;
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v1, labels: {version: v2}}`;
    const r = compileAll(stateWith([...SERVICES, GOOD_VS], [se, dr]));
    const names = (r.configs.get(web.id) as ProxyConfig).clusters.map((c) => c.name);
    assert.equal(names.filter((n) => n === 'outbound|80||api.example.com').length, 1);
    assert.equal(names.filter((n) => n === `outbound|9080|v1|${FQDN('ratings')}`).length, 1);
    assert.deepEqual(
      r.problems
        .filter((p) => p.code === 'SLUICE_MESH_DUPLICATE_CLUSTER')
        .map((p) => p.object)
        .sort(),
      ['Service/default/ratings', 'ServiceEntry/default/api'],
    );
  });

  it('an empty subjectAltNames entry is left out of the cluster tls', () => {
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["", "spiffe://cluster.local/ns/default/sa/ratings"]}`;
    const r = compileAll(stateWith(SERVICES, [dr]));
    const c = clusterOf(r.configs.get(web.id) as ProxyConfig, `outbound|9080||${FQDN('ratings')}`);
    assert.deepEqual(c?.tls, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://cluster.local/ns/default/sa/ratings'],
    });
    assert.ok(r.problems.some((p) => p.code === 'SLUICE_MESH_VALUE_INVALID'));
  });
});

describe('a gateway does not get one domain twice', () => {
  it('hosts that only the load would refuse (a port in a host) do not collide', () => {
    const gw = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 8080, name: http, protocol: HTTP}
      hosts: ["*"]`;
    const vs = (name: string, host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: ["${host}"]
  gateways: [public]
  http:
    - route:
        - destination: {host: ratings}`;
    const ingress = gatewayProxy('ingress', { istio: 'ingressgateway' });
    const r = compileAll(
      stateWith(
        [...SERVICES, gw],
        [vs('plain', 'a.example.com'), vs('port', 'a.example.com:8080')],
      ),
      [ingress],
    );
    const domains = listenerOf(
      r.configs.get(ingress.id) as ProxyConfig,
      'gateway',
    ).virtualHosts.map((v) => v.domains);
    // One virtual host per host; each domain is claimed once.
    assert.deepEqual(domains, [
      ['a.example.com', 'a.example.com:8080'],
      ['a.example.com:8080:8080'],
    ]);
    assert.ok(r.problems.some((p) => p.code === 'SLUICE_MESH_DOMAIN_CONFLICT'));
  });
});
