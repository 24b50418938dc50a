import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Route } from '../../../src/api/proxy-config.js';
import { compileMesh, DEFAULT_RETRY_POLICY } from '../../../src/mesh/compile/index.js';
import {
  bookinfo,
  fixture,
  registryOf,
  reviewsVs as vs,
  routesOf,
  sidecar,
  stateOf,
} from './helpers.js';

const FQDN = (n: string, ns = 'default') => `${n}.${ns}.svc.cluster.local`;
const SUBSET = (s: string, n = 'reviews') => `outbound|9080|${s}|${FQDN(n)}`;
const RETRY = { attempts: 2, retryOn: DEFAULT_RETRY_POLICY.retryOn };

/** Routes the productpage sidecar gets for `domain` with bookinfo + the DRs + `yaml`. */
function routesFor(domain: string, ...yaml: string[]): Route[] {
  const b = bookinfo();
  const r = compileMesh(
    stateOf(b.services, fixture('bookinfo-destination-rule-all.yaml'), ...yaml),
    registryOf(...b.proxies),
  );
  return routesOf(r.configs.get('default/productpage-v1/0')!, 'outbound', domain);
}

interface Case {
  name: string;
  yaml: string[];
  domain?: string;
  expected: Route[];
}

const CASES: Case[] = [
  {
    name: 'bookinfo reviews-jason-v2-v3: header match then default, in order',
    yaml: [fixture('bookinfo-virtual-service-reviews-jason-v2-v3.yaml')],
    expected: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        route: [{ cluster: SUBSET('v2') }],
        retries: RETRY,
      },
      { route: [{ cluster: SUBSET('v3') }], retries: RETRY },
    ],
  },
  {
    name: 'bookinfo reviews-80-20: weights kept',
    yaml: [fixture('bookinfo-virtual-service-reviews-80-20.yaml')],
    expected: [
      {
        route: [
          { cluster: SUBSET('v1'), weight: 80 },
          { cluster: SUBSET('v2'), weight: 20 },
        ],
        retries: RETRY,
      },
    ],
  },
  {
    name: 'a lone destination takes everything whatever its weight',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews, subset: v1}
      weight: 30
`),
    ],
    expected: [{ route: [{ cluster: SUBSET('v1') }], retries: RETRY }],
  },
  {
    name: 'omitted weights among several destinations get no traffic',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews, subset: v1}
    - destination: {host: reviews, subset: v2}
      weight: 40
    - destination: {host: reviews, subset: v3}
      weight: 60
`),
    ],
    expected: [
      {
        route: [
          { cluster: SUBSET('v2'), weight: 40 },
          { cluster: SUBSET('v3'), weight: 60 },
        ],
        retries: RETRY,
      },
    ],
  },
  {
    name: 'one weighted destination left among omitted ones takes everything',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews, subset: v1}
    - destination: {host: reviews, subset: v2}
      weight: 100
`),
    ],
    expected: [{ route: [{ cluster: SUBSET('v2') }], retries: RETRY }],
  },
  {
    name: 'bookinfo ratings-test-delay: fault delay with percentage',
    domain: 'ratings',
    yaml: [fixture('bookinfo-virtual-service-ratings-test-delay.yaml')],
    expected: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        route: [{ cluster: SUBSET('v1', 'ratings') }],
        retries: RETRY,
        fault: { delay: { fixedDelay: '7s', percentage: 100 } },
      },
      { route: [{ cluster: SUBSET('v1', 'ratings') }], retries: RETRY },
    ],
  },
  {
    name: 'bookinfo ratings-test-abort: fault abort',
    domain: 'ratings',
    yaml: [fixture('bookinfo-virtual-service-ratings-test-abort.yaml')],
    expected: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        route: [{ cluster: SUBSET('v1', 'ratings') }],
        retries: RETRY,
        fault: { abort: { httpStatus: 500, percentage: 100 } },
      },
      { route: [{ cluster: SUBSET('v1', 'ratings') }], retries: RETRY },
    ],
  },
  {
    name: 'rewrite, timeout, explicit retries, headers at route and destination',
    yaml: [
      vs(`  - name: api
    match:
    - uri: {prefix: /api}
      ignoreUriCase: true
      queryParams: {debug: {exact: "1"}}
      withoutHeaders: {x-skip: {}}
      method: {exact: GET}
    rewrite: {uri: /v2, authority: reviews.internal}
    timeout: 3s
    retries: {attempts: 4, perTryTimeout: 1s, retryOn: '5xx,reset'}
    headers:
      request: {set: {x-a: "1"}, remove: [x-b]}
      response: {add: {x-c: "2"}}
    route:
    - destination: {host: reviews, subset: v1}
      headers: {request: {set: {x-subset: v1}}}
`),
    ],
    expected: [
      {
        name: 'api',
        match: [
          {
            uri: { prefix: '/api' },
            method: { exact: 'GET' },
            withoutHeaders: { 'x-skip': {} },
            queryParams: { debug: { exact: '1' } },
            ignoreUriCase: true,
          },
        ],
        route: [{ cluster: SUBSET('v1'), headers: { request: { set: { 'x-subset': 'v1' } } } }],
        rewrite: { uri: '/v2', authority: 'reviews.internal' },
        timeout: '3s',
        retries: { attempts: 4, perTryTimeout: '1s', retryOn: '5xx,reset' },
        headers: {
          request: { set: { 'x-a': '1' }, remove: ['x-b'] },
          response: { add: { 'x-c': '2' } },
        },
      },
    ],
  },
  {
    name: 'a request set of host or :authority rewrites the authority (route and destination), as Istio',
    yaml: [
      vs(`  - headers:
      request: {set: {Host: api.internal, x-a: "1"}}
      response: {set: {x-b: "2"}}
    route:
    - destination: {host: reviews, subset: v1}
      weight: 50
      headers: {request: {set: {":authority": v1.internal}}}
    - destination: {host: reviews, subset: v2}
      weight: 50
  - match: [{uri: {prefix: /both}}]
    rewrite: {authority: rewrite.wins}
    headers: {request: {set: {host: header.loses}}}
    route:
    - destination: {host: reviews}
`),
    ],
    expected: [
      {
        route: [
          { cluster: SUBSET('v1'), weight: 50, authority: 'v1.internal' },
          { cluster: SUBSET('v2'), weight: 50 },
        ],
        rewrite: { authority: 'api.internal' },
        retries: RETRY,
        headers: { request: { set: { 'x-a': '1' } }, response: { set: { 'x-b': '2' } } },
      },
      {
        match: [{ uri: { prefix: '/both' } }],
        route: [{ cluster: `outbound|9080||${FQDN('reviews')}` }],
        rewrite: { authority: 'rewrite.wins' },
        retries: RETRY,
      },
    ],
  },
  {
    name: 'retries attempts 0 turn retries off',
    yaml: [
      vs(`  - retries: {attempts: 0}
    route:
    - destination: {host: reviews}
`),
    ],
    expected: [
      { route: [{ cluster: `outbound|9080||${FQDN('reviews')}` }], retries: { attempts: 0 } },
    ],
  },
  {
    name: 'redirect and directResponse carry no retries',
    yaml: [
      vs(`  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 302}
  - directResponse: {status: 418, body: {string: teapot}}
`),
    ],
    expected: [
      {
        match: [{ uri: { exact: '/old' } }],
        redirect: { uri: '/new', authority: 'example.com', redirectCode: 302 },
      },
      { directResponse: { status: 418, body: { string: 'teapot' } } },
    ],
  },
  {
    name: 'mirror with mirrorPercentage, to a resolved cluster',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews, subset: v1}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 25}
`),
    ],
    expected: [
      {
        route: [{ cluster: SUBSET('v1') }],
        retries: RETRY,
        mirror: { cluster: SUBSET('v2'), percentage: 25 },
      },
    ],
  },
  {
    name: 'mirrors: the first mirror policy',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews, subset: v1}
    mirrors:
    - destination: {host: reviews, subset: v3}
      percentage: {value: 10}
`),
    ],
    expected: [
      {
        route: [{ cluster: SUBSET('v1') }],
        retries: RETRY,
        mirror: { cluster: SUBSET('v3'), percentage: 10 },
      },
    ],
  },
  {
    name: 'corsPolicy',
    yaml: [
      vs(`  - route:
    - destination: {host: reviews}
    corsPolicy:
      allowOrigins: [{exact: "http://foo.example"}, {regex: ".*\\\\.bar\\\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [content-type]
      exposeHeaders: [x-custom]
      maxAge: 300s
      allowCredentials: true
`),
    ],
    expected: [
      {
        route: [{ cluster: `outbound|9080||${FQDN('reviews')}` }],
        retries: RETRY,
        corsPolicy: {
          allowOrigins: [{ exact: 'http://foo.example' }, { regex: '.*\\.bar\\.example' }],
          allowMethods: ['GET', 'POST'],
          allowHeaders: ['content-type'],
          exposeHeaders: ['x-custom'],
          maxAge: '300s',
          allowCredentials: true,
        },
      },
    ],
  },
  {
    name: 'matches for another port, gateway or source namespace are dropped; sourceLabels kept',
    yaml: [
      vs(`  - match:
    - port: 9999
    - gateways: [some-gateway]
    - sourceNamespace: other
    route:
    - destination: {host: reviews, subset: v1}
  - match:
    - port: 9080
      sourceLabels: {app: productpage}
    - gateways: [mesh]
      uri: {prefix: /m}
    route:
    - destination: {host: reviews, subset: v2}
`),
    ],
    expected: [
      {
        match: [{ sourceLabels: { app: 'productpage' } }, { uri: { prefix: '/m' } }],
        route: [{ cluster: SUBSET('v2') }],
        retries: RETRY,
      },
    ],
  },
  {
    name: 'a destination port selects the cluster of that port',
    yaml: [
      vs(`  - route:
    - destination: {host: ratings, port: {number: 9080}}
`),
    ],
    expected: [{ route: [{ cluster: `outbound|9080||${FQDN('ratings')}` }], retries: RETRY }],
  },
];

describe('mesh compiler: VirtualService http routes', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.deepEqual(routesFor(c.domain ?? 'reviews', ...c.yaml), c.expected);
    });
  }

  it('every weight 0 (rejected by the loader, compiled anyway): 503 and a problem', () => {
    const b = bookinfo();
    const state = stateOf(b.services);
    const zero = {
      kind: 'VirtualService',
      namespace: 'default',
      name: 'reviews',
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: 'default' },
        spec: {
          hosts: ['reviews'],
          http: [
            {
              route: [
                { destination: { host: 'reviews' }, weight: 0 },
                { destination: { host: 'reviews' }, weight: 0 },
              ],
            },
          ],
        },
      },
    };
    const r = compileMesh(
      { ...state, objects: [...state.objects, zero] },
      registryOf(...b.proxies),
    );
    const c = r.configs.get('default/productpage-v1/0')!;
    assert.deepEqual(routesOf(c, 'outbound', 'reviews'), [{ directResponse: { status: 503 } }]);
    assert.ok(r.problems.some((p) => p.code === 'SLUICE_MESH_ZERO_WEIGHT'));
  });

  it('a route to an unknown subset references an empty cluster and reports it', () => {
    const b = bookinfo();
    const r = compileMesh(
      stateOf(
        b.services,
        vs(`  - route:
    - destination: {host: reviews, subset: v9}
`),
      ),
      registryOf(...b.proxies),
    );
    const c = r.configs.get('default/productpage-v1/0')!;
    const name = SUBSET('v9');
    assert.deepEqual(routesOf(c, 'outbound', 'reviews')[0]?.route, [{ cluster: name }]);
    assert.deepEqual(
      c.clusters.find((x) => x.name === name),
      { name, endpoints: [] },
    );
    assert.ok(r.problems.some((p) => p.code === 'SLUICE_MESH_UNKNOWN_DESTINATION'));
  });

  it('the port of an egress VirtualService: port-80 routes only on the port-80 host', () => {
    const client = sidecar('client-v1');
    const r = compileMesh(
      stateOf(fixture('bookinfo-egress-rule-google-apis.yaml')),
      registryOf(client),
    );
    const c = r.configs.get(client.id)!;
    assert.deepEqual(routesOf(c, 'outbound', 'www.googleapis.com:80'), [
      { route: [{ cluster: 'outbound|443||www.googleapis.com' }], retries: RETRY },
    ]);
  });
});
