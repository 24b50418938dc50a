import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  normalizeVirtualService,
  virtualServiceKind as def,
} from '../../src/api/networking/virtual-service.js';
import { describeErrors, errorsOf, rejectsAt, withChange, type InvalidCase } from './helpers.js';

/** A VirtualService using every supported part of an HTTP route. */
const base = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    hosts: ['reviews'],
    gateways: ['mesh', 'shop/ingress'],
    exportTo: ['.'],
    http: [
      {
        name: 'canary',
        match: [
          {
            name: 'api',
            uri: { prefix: '/api' },
            scheme: { exact: 'http' },
            method: { regex: 'GET|HEAD' },
            authority: { exact: 'reviews' },
            headers: { 'x-user': { exact: 'jason' }, 'x-debug': {} },
            withoutHeaders: { 'x-skip': {} },
            queryParams: { v: { regex: '[0-9]+' } },
            ignoreUriCase: true,
            port: 9080,
            sourceLabels: { app: 'productpage' },
            sourceNamespace: 'shop',
            gateways: ['mesh'],
          },
        ],
        route: [
          {
            destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } },
            weight: 80,
            headers: { request: { set: { 'x-canary': 'no' } } },
          },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 20 },
        ],
        rewrite: {
          authority: 'reviews.shop',
          uriRegexRewrite: { match: '^/api/(.*)', rewrite: '/\\1' },
        },
        timeout: '10s',
        retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,reset' },
        fault: {
          delay: { fixedDelay: '1.5s', percentage: { value: 0.5 } },
          abort: { httpStatus: 503, percentage: { value: 1 } },
        },
        mirror: { host: 'reviews', subset: 'v3' },
        mirrorPercentage: { value: 10 },
        mirrors: [{ destination: { host: 'shadow' }, percentage: { value: 5 } }],
        corsPolicy: {
          allowOrigins: [{ exact: 'https://shop.example' }, { regex: 'https://.*\\.example' }],
          allowMethods: ['GET', 'POST'],
          allowHeaders: ['content-type'],
          exposeHeaders: ['x-trace'],
          maxAge: '24h',
          allowCredentials: true,
          unmatchedPreflights: 'IGNORE',
        },
        headers: { request: { add: { 'x-a': '1' } }, response: { remove: ['server'] } },
      },
      {
        name: 'moved',
        match: [{ uri: { exact: '/old' } }],
        redirect: {
          uri: '/new',
          authority: 'shop',
          scheme: 'https',
          derivePort: 'FROM_REQUEST_PORT',
          redirectCode: 308,
        },
      },
      {
        name: 'teapot',
        match: [{ uri: { exact: '/tea' } }],
        directResponse: { status: 418, body: { string: "I'm a teapot" } },
      },
    ],
  },
};

const http = ['spec', 'http', 0] as const;
const cases: InvalidCase[] = [
  {
    name: 'an unknown apiVersion',
    path: ['apiVersion'],
    value: 'networking.istio.io/v2',
    at: '/apiVersion',
    keyword: 'anyOf',
  },
  { name: 'another kind', path: ['kind'], value: 'Gateway', at: '/kind', keyword: 'const' },
  {
    name: 'a metadata.name that is not DNS-1123',
    path: ['metadata', 'name'],
    value: 'Reviews',
    at: '/metadata/name',
    keyword: 'pattern',
  },
  {
    name: 'an unknown spec field (typo)',
    path: ['spec', 'host'],
    value: 'reviews',
    at: '/spec',
    keyword: 'additionalProperties',
  },
  {
    name: 'hosts given as a string',
    path: ['spec', 'hosts'],
    value: 'reviews',
    at: '/spec/hosts',
    keyword: 'type',
  },
  {
    name: 'http given as an object',
    path: ['spec', 'http'],
    value: {},
    at: '/spec/http',
    keyword: 'type',
  },
  {
    name: 'an unknown route field',
    path: [...http, 'route', 0, 'destinaton'],
    value: {},
    at: '/spec/http/0/route/0',
    keyword: 'additionalProperties',
  },
  {
    name: 'a weight over 100',
    path: [...http, 'route', 0, 'weight'],
    value: 101,
    at: '/spec/http/0/route/0/weight',
    keyword: 'maximum',
  },
  {
    name: 'a negative weight',
    path: [...http, 'route', 1, 'weight'],
    value: -1,
    at: '/spec/http/0/route/1/weight',
    keyword: 'minimum',
  },
  {
    name: 'a weight given as a string',
    path: [...http, 'route', 0, 'weight'],
    value: '80',
    at: '/spec/http/0/route/0/weight',
    keyword: 'type',
  },
  {
    name: 'a fractional weight',
    path: [...http, 'route', 0, 'weight'],
    value: 79.5,
    at: '/spec/http/0/route/0/weight',
    keyword: 'type',
  },
  {
    name: 'a destination without host',
    path: [...http, 'route', 0, 'destination', 'host'],
    value: undefined,
    at: '/spec/http/0/route/0/destination',
    keyword: 'required',
  },
  {
    name: 'an empty destination host',
    path: [...http, 'route', 0, 'destination', 'host'],
    value: '',
    at: '/spec/http/0/route/0/destination/host',
    keyword: 'minLength',
  },
  {
    name: 'a destination port over 65535',
    path: [...http, 'route', 0, 'destination', 'port', 'number'],
    value: 70000,
    at: '/spec/http/0/route/0/destination/port/number',
    keyword: 'maximum',
  },
  {
    name: 'a destination port by name',
    path: [...http, 'route', 0, 'destination', 'port'],
    value: { name: 'http' },
    at: '/spec/http/0/route/0/destination/port',
    keyword: 'additionalProperties',
  },
  {
    name: 'a match port 0',
    path: [...http, 'match', 0, 'port'],
    value: 0,
    at: '/spec/http/0/match/0/port',
    keyword: 'minimum',
  },
  {
    name: 'a uri match with two kinds of match',
    path: [...http, 'match', 0, 'uri'],
    value: { exact: '/a', prefix: '/a' },
    at: '/spec/http/0/match/0/uri',
    keyword: 'maxProperties',
  },
  {
    name: 'an empty uri match',
    path: [...http, 'match', 0, 'uri'],
    value: {},
    at: '/spec/http/0/match/0/uri',
    keyword: 'minProperties',
  },
  {
    name: 'a uri match kind Istio does not have',
    path: [...http, 'match', 0, 'uri'],
    value: { suffix: '/a' },
    at: '/spec/http/0/match/0/uri',
    keyword: 'additionalProperties',
  },
  {
    name: 'a header match with two kinds of match',
    path: [...http, 'match', 0, 'headers', 'x-user'],
    value: { exact: 'a', regex: 'a' },
    at: '/spec/http/0/match/0/headers/x-user',
    keyword: 'maxProperties',
  },
  {
    name: 'a header match given as a string',
    path: [...http, 'match', 0, 'headers', 'x-user'],
    value: 'jason',
    at: '/spec/http/0/match/0/headers/x-user',
    keyword: 'type',
  },
  {
    name: 'ignoreUriCase given as a string',
    path: [...http, 'match', 0, 'ignoreUriCase'],
    value: 'yes',
    at: '/spec/http/0/match/0/ignoreUriCase',
    keyword: 'type',
  },
  {
    name: 'a timeout without unit',
    path: [...http, 'timeout'],
    value: '10',
    at: '/spec/http/0/timeout',
    keyword: 'pattern',
  },
  {
    name: 'a timeout given as a number',
    path: [...http, 'timeout'],
    value: 10,
    at: '/spec/http/0/timeout',
    keyword: 'type',
  },
  {
    name: 'negative retry attempts',
    path: [...http, 'retries', 'attempts'],
    value: -1,
    at: '/spec/http/0/retries/attempts',
    keyword: 'minimum',
  },
  {
    name: 'a perTryTimeout that is not a duration',
    path: [...http, 'retries', 'perTryTimeout'],
    value: 'soon',
    at: '/spec/http/0/retries/perTryTimeout',
    keyword: 'pattern',
  },
  {
    name: 'an abort status under 200',
    path: [...http, 'fault', 'abort', 'httpStatus'],
    value: 99,
    at: '/spec/http/0/fault/abort/httpStatus',
    keyword: 'minimum',
  },
  {
    name: 'an abort status over 599',
    path: [...http, 'fault', 'abort', 'httpStatus'],
    value: 600,
    at: '/spec/http/0/fault/abort/httpStatus',
    keyword: 'maximum',
  },
  {
    name: 'a fault percentage over 100',
    path: [...http, 'fault', 'delay', 'percentage', 'value'],
    value: 100.5,
    at: '/spec/http/0/fault/delay/percentage/value',
    keyword: 'maximum',
  },
  {
    name: 'a deprecated fault percent over 100',
    path: [...http, 'fault', 'delay', 'percent'],
    value: 150,
    at: '/spec/http/0/fault/delay/percent',
    keyword: 'maximum',
  },
  {
    name: 'a deprecated fault percent that is fractional',
    path: [...http, 'fault', 'abort', 'percent'],
    value: 1.5,
    at: '/spec/http/0/fault/abort/percent',
    keyword: 'type',
  },
  {
    name: 'both fixed and exponential delay',
    path: [...http, 'fault', 'delay', 'exponentialDelay'],
    value: '1s',
    at: '/spec/http/0/fault/delay',
    keyword: 'not',
  },
  {
    name: 'both an HTTP and a gRPC abort',
    path: [...http, 'fault', 'abort', 'grpcStatus'],
    value: 'UNAVAILABLE',
    at: '/spec/http/0/fault/abort',
    keyword: 'not',
  },
  {
    name: 'a mirror percentage over 100',
    path: [...http, 'mirrorPercentage', 'value'],
    value: 101,
    at: '/spec/http/0/mirrorPercentage/value',
    keyword: 'maximum',
  },
  {
    name: 'a deprecated mirrorPercent over 100',
    path: [...http, 'mirrorPercent'],
    value: 101,
    at: '/spec/http/0/mirrorPercent',
    keyword: 'maximum',
  },
  {
    name: 'a mirror without host',
    path: [...http, 'mirror'],
    value: { subset: 'v3' },
    at: '/spec/http/0/mirror',
    keyword: 'required',
  },
  {
    name: 'a mirrors entry without destination',
    path: [...http, 'mirrors', 0, 'destination'],
    value: undefined,
    at: '/spec/http/0/mirrors/0',
    keyword: 'required',
  },
  {
    name: 'a deprecated allowOrigin given as a string',
    path: [...http, 'corsPolicy', 'allowOrigin'],
    value: '*',
    at: '/spec/http/0/corsPolicy/allowOrigin',
    keyword: 'type',
  },
  {
    name: 'allowOrigins given as plain strings',
    path: [...http, 'corsPolicy', 'allowOrigins', 0],
    value: 'https://a',
    at: '/spec/http/0/corsPolicy/allowOrigins/0',
    keyword: 'type',
  },
  {
    name: 'an unknown unmatchedPreflights value',
    path: [...http, 'corsPolicy', 'unmatchedPreflights'],
    value: 'DROP',
    at: '/spec/http/0/corsPolicy/unmatchedPreflights',
    keyword: 'anyOf',
  },
  {
    name: 'allowCredentials given as a string',
    path: [...http, 'corsPolicy', 'allowCredentials'],
    value: 'true',
    at: '/spec/http/0/corsPolicy/allowCredentials',
    keyword: 'type',
  },
  {
    name: 'both uri and uriRegexRewrite',
    path: [...http, 'rewrite', 'uri'],
    value: '/',
    at: '/spec/http/0/rewrite',
    keyword: 'not',
  },
  {
    name: 'a uriRegexRewrite without rewrite',
    path: [...http, 'rewrite', 'uriRegexRewrite', 'rewrite'],
    value: undefined,
    at: '/spec/http/0/rewrite/uriRegexRewrite',
    keyword: 'required',
  },
  {
    name: 'a header operation with a non-string value',
    path: [...http, 'headers', 'request', 'add', 'x-a'],
    value: 1,
    at: '/spec/http/0/headers/request/add/x-a',
    keyword: 'type',
  },
  {
    name: 'a header operation Istio does not have',
    path: [...http, 'headers', 'request', 'append'],
    value: {},
    at: '/spec/http/0/headers/request',
    keyword: 'additionalProperties',
  },
  {
    name: 'both redirect port and derivePort',
    path: ['spec', 'http', 1, 'redirect', 'port'],
    value: 8443,
    at: '/spec/http/1/redirect',
    keyword: 'not',
  },
  {
    name: 'an unknown derivePort value',
    path: ['spec', 'http', 1, 'redirect', 'derivePort'],
    value: 'FROM_HEADER',
    at: '/spec/http/1/redirect/derivePort',
    keyword: 'anyOf',
  },
  {
    name: 'a redirect code that is not 3xx',
    path: ['spec', 'http', 1, 'redirect', 'redirectCode'],
    value: 200,
    at: '/spec/http/1/redirect/redirectCode',
    keyword: 'minimum',
  },
  {
    name: 'a direct response without status',
    path: ['spec', 'http', 2, 'directResponse', 'status'],
    value: undefined,
    at: '/spec/http/2/directResponse',
    keyword: 'required',
  },
  {
    name: 'a direct response status over 599',
    path: ['spec', 'http', 2, 'directResponse', 'status'],
    value: 700,
    at: '/spec/http/2/directResponse/status',
    keyword: 'maximum',
  },
  {
    name: 'a direct response body both string and bytes',
    path: ['spec', 'http', 2, 'directResponse', 'body', 'bytes'],
    value: 'aGk=',
    at: '/spec/http/2/directResponse/body',
    keyword: 'maxProperties',
  },
  {
    name: 'a TLS route (unsupported, still checked) without sniHosts',
    path: ['spec', 'tls'],
    value: [{ match: [{ port: 443 }] }],
    at: '/spec/tls/0/match/0',
    keyword: 'required',
  },
  {
    name: 'a TCP route (unsupported, still checked) with an unknown field',
    path: ['spec', 'tcp'],
    value: [{ routes: [] }],
    at: '/spec/tcp/0',
    keyword: 'additionalProperties',
  },
];

describe('VirtualService schema', () => {
  it('accepts a route using every supported field', () => {
    assert.deepEqual(errorsOf(def, base), [], describeErrors(def, base));
  });

  it('accepts every accepted apiVersion', () => {
    for (const v of def.apiVersions) {
      assert.deepEqual(errorsOf(def, { ...base, apiVersion: v }), [], v);
    }
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

describe('VirtualService normalize', () => {
  const legacy = (route: Record<string, unknown>) => ({
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'VirtualService',
    metadata: { name: 'ratings' },
    spec: {
      hosts: ['ratings'],
      http: [{ route: [{ destination: { host: 'ratings' } }], ...route }],
    },
  });
  const normalize = (o: Record<string, unknown>) => {
    const before = structuredClone(o);
    const out = normalizeVirtualService(o, String(o.apiVersion));
    assert.deepEqual(o, before, 'the input is not mutated');
    assert.deepEqual(errorsOf(def, out), [], describeErrors(def, out));
    assert.equal(out.apiVersion, 'networking.istio.io/v1');
    return (out as { spec: { http: Record<string, unknown>[] } }).spec.http[0];
  };

  it('turns an integer delay percent into percentage.value', () => {
    const r = normalize(legacy({ fault: { delay: { percent: 100, fixedDelay: '7s' } } }));
    assert.deepEqual(r?.fault, { delay: { fixedDelay: '7s', percentage: { value: 100 } } });
  });

  it('turns an integer abort percent into percentage.value', () => {
    const r = normalize(legacy({ fault: { abort: { percent: 50, httpStatus: 500 } } }));
    assert.deepEqual(r?.fault, { abort: { httpStatus: 500, percentage: { value: 50 } } });
  });

  it('keeps percentage when both percent and percentage are set, as Istio does', () => {
    const r = normalize(
      legacy({ fault: { abort: { percent: 50, percentage: { value: 0.1 }, httpStatus: 500 } } }),
    );
    assert.deepEqual(r?.fault, { abort: { httpStatus: 500, percentage: { value: 0.1 } } });
  });

  it('turns mirrorPercent and mirror_percent into mirrorPercentage.value', () => {
    const mirror = { host: 'shadow' };
    assert.deepEqual(normalize(legacy({ mirror, mirrorPercent: 25 })), {
      route: [{ destination: { host: 'ratings' } }],
      mirror,
      mirrorPercentage: { value: 25 },
    });
    const r = normalize(legacy({ mirror, mirror_percent: 30 }));
    assert.deepEqual(r?.mirrorPercentage, { value: 30 });
    assert.equal('mirror_percent' in (r ?? {}), false);
  });

  it('keeps mirrorPercentage over a deprecated mirrorPercent', () => {
    const r = normalize(
      legacy({ mirror: { host: 'shadow' }, mirrorPercent: 25, mirrorPercentage: { value: 2.5 } }),
    );
    assert.deepEqual(r?.mirrorPercentage, { value: 2.5 });
    assert.equal('mirrorPercent' in (r ?? {}), false);
  });

  it('turns allowOrigin into exact allowOrigins matches', () => {
    const r = normalize(
      legacy({ corsPolicy: { allowOrigin: ['https://a.example', '*'], allowMethods: ['GET'] } }),
    );
    assert.deepEqual(r?.corsPolicy, {
      allowOrigins: [{ exact: 'https://a.example' }, { exact: '*' }],
      allowMethods: ['GET'],
    });
  });

  it('keeps allowOrigins over a deprecated allowOrigin', () => {
    const r = normalize(
      legacy({
        corsPolicy: { allowOrigin: ['https://old'], allowOrigins: [{ prefix: 'https://new' }] },
      }),
    );
    assert.deepEqual(r?.corsPolicy, { allowOrigins: [{ prefix: 'https://new' }] });
  });

  it('drops websocketUpgrade', () => {
    const r = normalize(legacy({ websocketUpgrade: true }));
    assert.deepEqual(r, { route: [{ destination: { host: 'ratings' } }] });
  });

  it('only changes the apiVersion of an object without deprecated forms, sharing the rest', () => {
    const o = { ...base, apiVersion: 'networking.istio.io/v1beta1' };
    const out = normalizeVirtualService(o, o.apiVersion);
    assert.deepEqual(out, base);
    assert.equal(out.spec, o.spec);
  });

  it('is the kind definition normalize', () => {
    assert.equal(def.normalize, normalizeVirtualService);
    assert.equal(def.canonicalApiVersion, 'networking.istio.io/v1');
  });
});
