import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  destinationRuleKind as def,
  normalizeDestinationRule,
} from '../../src/api/networking/destination-rule.js';
import { describeErrors, errorsOf, rejectsAt, withChange, type InvalidCase } from './helpers.js';

/** A DestinationRule using every supported part of a traffic policy. */
const base = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    host: 'reviews.shop.svc.cluster.local',
    exportTo: ['*'],
    trafficPolicy: {
      loadBalancer: { simple: 'LEAST_REQUEST' },
      connectionPool: {
        tcp: { maxConnections: 100, connectTimeout: '30ms', idleTimeout: '1h' },
        http: {
          http1MaxPendingRequests: 10,
          http2MaxRequests: 1000,
          maxRequestsPerConnection: 10,
          maxRetries: 3,
          idleTimeout: '30s',
        },
      },
      outlierDetection: {
        consecutive5xxErrors: 5,
        consecutiveGatewayErrors: 3,
        interval: '10s',
        baseEjectionTime: '30s',
        maxEjectionPercent: 50,
        minHealthPercent: 10,
      },
      tls: {
        mode: 'ISTIO_MUTUAL',
        sni: 'reviews',
        subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/reviews'],
      },
      portLevelSettings: [
        {
          port: { number: 9443 },
          tls: { mode: 'SIMPLE', caCertificates: '/etc/ca.pem', insecureSkipVerify: false },
        },
      ],
    },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      {
        name: 'v2',
        labels: { version: 'v2' },
        trafficPolicy: {
          loadBalancer: {
            consistentHash: {
              httpCookie: {
                name: 'user',
                path: '/',
                ttl: '0s',
                attributes: [{ name: 'SameSite', value: 'Strict' }],
              },
            },
          },
        },
      },
      { name: 'v3', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } },
    ],
  },
};

const tp = ['spec', 'trafficPolicy'] as const;
const cases: InvalidCase[] = [
  {
    name: 'a rule without host',
    path: ['spec', 'host'],
    value: undefined,
    at: '/spec',
    keyword: 'required',
  },
  {
    name: 'an unknown spec field',
    path: ['spec', 'hosts'],
    value: ['a'],
    at: '/spec',
    keyword: 'additionalProperties',
  },
  {
    name: 'exportTo given as a string',
    path: ['spec', 'exportTo'],
    value: '.',
    at: '/spec/exportTo',
    keyword: 'type',
  },
  {
    name: 'an unknown load balancer',
    path: [...tp, 'loadBalancer', 'simple'],
    value: 'FASTEST',
    at: '/spec/trafficPolicy/loadBalancer/simple',
    keyword: 'anyOf',
  },
  {
    name: 'both simple and consistentHash',
    path: [...tp, 'loadBalancer', 'consistentHash'],
    value: { useSourceIp: true },
    at: '/spec/trafficPolicy/loadBalancer',
    keyword: 'not',
  },
  {
    name: 'two consistent-hash keys',
    path: [
      'spec',
      'subsets',
      2,
      'trafficPolicy',
      'loadBalancer',
      'consistentHash',
      'httpHeaderName',
    ],
    value: 'x-user',
    at: '/spec/subsets/2/trafficPolicy/loadBalancer/consistentHash',
    keyword: 'not',
  },
  {
    name: 'a hash cookie without name',
    path: [
      'spec',
      'subsets',
      1,
      'trafficPolicy',
      'loadBalancer',
      'consistentHash',
      'httpCookie',
      'name',
    ],
    value: undefined,
    at: '/spec/subsets/1/trafficPolicy/loadBalancer/consistentHash/httpCookie',
    keyword: 'required',
  },
  {
    name: 'a hash cookie ttl without unit',
    path: [
      'spec',
      'subsets',
      1,
      'trafficPolicy',
      'loadBalancer',
      'consistentHash',
      'httpCookie',
      'ttl',
    ],
    value: '30',
    at: '/spec/subsets/1/trafficPolicy/loadBalancer/consistentHash/httpCookie/ttl',
    keyword: 'pattern',
  },
  {
    name: 'a cookie attribute without name',
    path: [
      'spec',
      'subsets',
      1,
      'trafficPolicy',
      'loadBalancer',
      'consistentHash',
      'httpCookie',
      'attributes',
      0,
      'name',
    ],
    value: undefined,
    at: '/spec/subsets/1/trafficPolicy/loadBalancer/consistentHash/httpCookie/attributes/0',
    keyword: 'required',
  },
  {
    name: 'maxConnections given as a string',
    path: [...tp, 'connectionPool', 'tcp', 'maxConnections'],
    value: '100',
    at: '/spec/trafficPolicy/connectionPool/tcp/maxConnections',
    keyword: 'type',
  },
  {
    name: 'a negative http2MaxRequests',
    path: [...tp, 'connectionPool', 'http', 'http2MaxRequests'],
    value: -1,
    at: '/spec/trafficPolicy/connectionPool/http/http2MaxRequests',
    keyword: 'minimum',
  },
  {
    name: 'an unknown connection pool setting',
    path: [...tp, 'connectionPool', 'http', 'maxRequests'],
    value: 1,
    at: '/spec/trafficPolicy/connectionPool/http',
    keyword: 'additionalProperties',
  },
  {
    name: 'a connectTimeout without unit',
    path: [...tp, 'connectionPool', 'tcp', 'connectTimeout'],
    value: '30',
    at: '/spec/trafficPolicy/connectionPool/tcp/connectTimeout',
    keyword: 'pattern',
  },
  {
    name: 'maxEjectionPercent over 100',
    path: [...tp, 'outlierDetection', 'maxEjectionPercent'],
    value: 101,
    at: '/spec/trafficPolicy/outlierDetection/maxEjectionPercent',
    keyword: 'maximum',
  },
  {
    name: 'a negative consecutive5xxErrors',
    path: [...tp, 'outlierDetection', 'consecutive5xxErrors'],
    value: -1,
    at: '/spec/trafficPolicy/outlierDetection/consecutive5xxErrors',
    keyword: 'minimum',
  },
  {
    name: 'a deprecated consecutiveErrors given as a string',
    path: [...tp, 'outlierDetection', 'consecutiveErrors'],
    value: '5',
    at: '/spec/trafficPolicy/outlierDetection/consecutiveErrors',
    keyword: 'type',
  },
  {
    name: 'an outlier interval that is not a duration',
    path: [...tp, 'outlierDetection', 'interval'],
    value: 'often',
    at: '/spec/trafficPolicy/outlierDetection/interval',
    keyword: 'pattern',
  },
  {
    name: 'an unknown TLS mode',
    path: [...tp, 'tls', 'mode'],
    value: 'PERMISSIVE',
    at: '/spec/trafficPolicy/tls/mode',
    keyword: 'anyOf',
  },
  {
    name: 'a TLS setting Istio does not have',
    path: [...tp, 'tls', 'serverCertificate'],
    value: '/x',
    at: '/spec/trafficPolicy/tls',
    keyword: 'additionalProperties',
  },
  {
    name: 'a port-level port 0',
    path: [...tp, 'portLevelSettings', 0, 'port', 'number'],
    value: 0,
    at: '/spec/trafficPolicy/portLevelSettings/0/port/number',
    keyword: 'minimum',
  },
  {
    name: 'a port-level tunnel (only allowed at the top)',
    path: [...tp, 'portLevelSettings', 0, 'tunnel'],
    value: { targetHost: 'a', targetPort: 1 },
    at: '/spec/trafficPolicy/portLevelSettings/0',
    keyword: 'additionalProperties',
  },
  {
    name: 'a subset without name',
    path: ['spec', 'subsets', 0, 'name'],
    value: undefined,
    at: '/spec/subsets/0',
    keyword: 'required',
  },
  {
    name: 'a subset label that is a number',
    path: ['spec', 'subsets', 0, 'labels', 'version'],
    value: 1,
    at: '/spec/subsets/0/labels/version',
    keyword: 'type',
  },
  {
    name: 'a warmup (unsupported, still checked) without duration',
    path: [...tp, 'loadBalancer', 'warmup'],
    value: { minimumPercent: 10 },
    at: '/spec/trafficPolicy/loadBalancer/warmup',
    keyword: 'required',
  },
  {
    name: 'a tunnel (unsupported, still checked) without targetHost',
    path: [...tp, 'tunnel'],
    value: { targetPort: 8080 },
    at: '/spec/trafficPolicy/tunnel',
    keyword: 'required',
  },
  {
    name: 'an unknown PROXY protocol version',
    path: [...tp, 'proxyProtocol'],
    value: { version: 'V3' },
    at: '/spec/trafficPolicy/proxyProtocol/version',
    keyword: 'anyOf',
  },
  {
    name: 'a retry budget over 100 percent',
    path: [...tp, 'retryBudget'],
    value: { percent: 120 },
    at: '/spec/trafficPolicy/retryBudget/percent',
    keyword: 'maximum',
  },
];

describe('DestinationRule schema', () => {
  it('accepts a rule using every supported field', () => {
    assert.deepEqual(errorsOf(def, base), [], describeErrors(def, base));
  });

  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      const value = withChange(base, c.path, c.value);
      assert.ok(
        rejectsAt(def, base, c),
        `expected ${c.keyword} at ${c.at}, got ${describeErrors(def, value)}`,
      );
    });
  }
});

describe('DestinationRule normalize', () => {
  const rule = (spec: Record<string, unknown>) => ({
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'DestinationRule',
    metadata: { name: 'ratings' },
    spec: { host: 'ratings', ...spec },
  });
  const normalize = (o: Record<string, unknown>) => {
    const before = structuredClone(o);
    const out = normalizeDestinationRule(o, String(o.apiVersion));
    assert.deepEqual(o, before, 'the input is not mutated');
    assert.deepEqual(errorsOf(def, out), [], describeErrors(def, out));
    assert.equal(out.apiVersion, 'networking.istio.io/v1');
    return out.spec as Record<string, unknown>;
  };

  it('applies consecutiveErrors as gateway errors with 5xx ejection off, as Istio does', () => {
    const spec = normalize(
      rule({ trafficPolicy: { outlierDetection: { consecutiveErrors: 7, interval: '8ms' } } }),
    );
    assert.deepEqual(spec.trafficPolicy, {
      outlierDetection: { interval: '8ms', consecutiveGatewayErrors: 7, consecutive5xxErrors: 0 },
    });
  });

  it('keeps consecutiveGatewayErrors and consecutive5xxErrors when they are set', () => {
    const spec = normalize(
      rule({
        trafficPolicy: {
          outlierDetection: {
            consecutiveErrors: 7,
            consecutiveGatewayErrors: 2,
            consecutive5xxErrors: 4,
          },
        },
      }),
    );
    assert.deepEqual(spec.trafficPolicy, {
      outlierDetection: { consecutiveGatewayErrors: 2, consecutive5xxErrors: 4 },
    });
  });

  it('converts subset and port-level policies too, sharing the unchanged parts', () => {
    const v1 = { name: 'v1', labels: { version: 'v1' } };
    const o = rule({
      trafficPolicy: {
        portLevelSettings: [{ port: { number: 80 }, outlierDetection: { consecutiveErrors: 1 } }],
      },
      subsets: [
        v1,
        {
          name: 'v2',
          trafficPolicy: {
            outlierDetection: { consecutiveErrors: 2 },
            portLevelSettings: [
              { port: { number: 81 }, outlierDetection: { consecutiveErrors: 3 } },
            ],
          },
        },
      ],
    });
    const spec = normalize(o);
    assert.deepEqual(spec, {
      host: 'ratings',
      trafficPolicy: {
        portLevelSettings: [
          {
            port: { number: 80 },
            outlierDetection: { consecutiveGatewayErrors: 1, consecutive5xxErrors: 0 },
          },
        ],
      },
      subsets: [
        v1,
        {
          name: 'v2',
          trafficPolicy: {
            outlierDetection: { consecutiveGatewayErrors: 2, consecutive5xxErrors: 0 },
            portLevelSettings: [
              {
                port: { number: 81 },
                outlierDetection: { consecutiveGatewayErrors: 3, consecutive5xxErrors: 0 },
              },
            ],
          },
        },
      ],
    });
    assert.equal((spec.subsets as unknown[])[0], v1);
  });

  it('only changes the apiVersion of a rule without deprecated forms', () => {
    const o = { ...base, apiVersion: 'networking.istio.io/v1alpha3' };
    const out = normalizeDestinationRule(o, o.apiVersion);
    assert.deepEqual(out, base);
    assert.equal(out.spec, o.spec);
  });

  it('is the kind definition normalize', () => {
    assert.equal(def.normalize, normalizeDestinationRule);
  });
});
