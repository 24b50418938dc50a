/**
 * The value checks the manifests layer and the mesh compiler share (src/api) agree with what
 * the proxies compile: every value they accept compiles in the proxy, and every value the
 * proxy would reject (making it NACK its whole config) is a problem here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RETRY_ON_DROPPED,
  RETRY_ON_IGNORED,
  RETRY_ON_IMPLEMENTED,
  retryOnEntries,
} from '../../src/api/networking/retry-on.js';
import { httpRouteProblems, matchProblems } from '../../src/api/networking/route-values.js';
import { regexProblem } from '../../src/api/regex.js';
import { authorizationRuleProblems } from '../../src/api/security/authorization-policy.js';
import {
  ipBlockProblem,
  parseJwks,
  pathTemplateProblem,
  portStringProblem,
} from '../../src/api/security/values.js';
import { compileRetry, compileConfig } from '../../src/proxy/compile.js';
import { compileStringMatch } from '../../src/proxy/match.js';
import { compileCondition } from '../../src/proxy/security/authz.js';
import { compileListenerSecurity } from '../../src/proxy/security/filters.js';
import { compilePath, IpBlocks } from '../../src/proxy/security/match.js';
import { dispatchRoute } from '../../src/proxy/filters.js';
import { ClusterManager } from '../../src/proxy/upstream/cluster.js';
import type { ProxyConfig } from '../../src/api/proxy-config.js';

const throws = (f: () => unknown): boolean => {
  try {
    f();
    return false;
  } catch {
    return true;
  }
};

describe('regexes: what the proxies compile', () => {
  const COMPILE = [
    '/api/v[0-9]+/.*',
    '^(.*?;)?(user=dev-123)(;.*)?',
    'b.*',
    '(?<name>a+)',
    '[]a]',
    '\\d{3}',
  ];
  const BROKEN = ['(?i)/api', '(?P<v>a)', '([a-z', 'a**', '(?s).*', 'a\\', '*'];
  const MISREAD = [
    'a\\z',
    '\\Aabc',
    '\\Qa.b\\E',
    '[[:alpha:]]+',
    '[^[:digit:]]',
    '\\pL',
    '\\x{41}',
  ];

  it('accepts what compiles in the proxy, as a match and as a rewrite', () => {
    for (const re of COMPILE) {
      assert.equal(regexProblem(re, 'match'), null, re);
      assert.equal(regexProblem(re, 'rewrite'), null, re);
      assert.equal(
        throws(() => compileStringMatch({ regex: re }, 'r')),
        false,
        re,
      );
    }
  });

  it('refuses what the proxy cannot compile, naming RE2 syntax JavaScript lacks', () => {
    for (const re of BROKEN) {
      assert.match(regexProblem(re, 'match') ?? '', /does not compile in JavaScript/, re);
      assert.equal(
        throws(() => compileStringMatch({ regex: re }, 'r')),
        true,
        re,
      );
    }
    assert.match(regexProblem('(?i)/api', 'match') ?? '', /inline flags such as \(\?i\)/);
    assert.match(regexProblem('(?P<v>a)', 'match') ?? '', /\(\?<name>\.\.\.\)/);
  });

  it('refuses RE2 escapes and classes that JavaScript compiles with another meaning', () => {
    for (const re of MISREAD) {
      assert.ok(regexProblem(re, 'match') !== null, re);
      // The proxy would run them, matching other strings than the user wrote.
      assert.equal(
        throws(() => compileStringMatch({ regex: re }, 'r')),
        false,
        re,
      );
    }
    // The same characters escaped, or inside a class as literals, are fine.
    // JavaScript-only constructs Istio's RE2 refuses (and the usual causes of exponential
    // backtracking), and regexes over the length cap.
    for (const [re, why] of [
      ['(a+)\\1', /backreferences/],
      ['(?=a)[a-z]+', /lookahead and lookbehind/],
      ['(?<!x)/api', /lookahead and lookbehind/],
      ['a'.repeat(1025), /1025 characters long; at most 1024/],
    ] as const) {
      assert.match(regexProblem(re, 'match') ?? '', why, re);
    }
    assert.equal(regexProblem('a'.repeat(1024), 'match'), null);
    assert.equal(regexProblem('a\\\\z', 'match'), null);
    assert.equal(regexProblem('[(?i)]', 'match'), null);
  });

  it('checks a uriRegexRewrite as the proxy compiles it (no anchors, global)', () => {
    // `)(` only compiles once wrapped in a full-match group: as a rewrite it does not.
    assert.equal(regexProblem(')(', 'match'), null);
    assert.match(regexProblem(')(', 'rewrite') ?? '', /does not compile/);
    const config = (match: string): ProxyConfig => ({
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [
        {
          name: 'outbound',
          virtualHosts: [
            {
              name: 'a',
              domains: ['a'],
              routes: [
                {
                  route: [{ cluster: 'c' }],
                  rewrite: { uriRegexRewrite: { match, rewrite: '/x' } },
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'c', endpoints: [] }],
    });
    const ctx = {
      identityLabels: {},
      clusters: new ClusterManager(),
      serverFilters: [],
      dispatch: dispatchRoute,
    };
    assert.equal(
      throws(() => compileConfig(config(')('), ctx)),
      true,
    );
    assert.equal(
      throws(() => compileConfig(config('^/v1/(.*)'), ctx)),
      false,
    );
  });
});

describe('retryOn: what the proxies know', () => {
  const attempt = (retryOn: string) => () => compileRetry({ attempts: 2, retryOn }, 'r');

  it('every implemented or ignored condition and a status code compile in the proxy', () => {
    for (const c of [...RETRY_ON_IMPLEMENTED, ...RETRY_ON_IGNORED, '503']) {
      assert.equal(throws(attempt(c)), false, c);
      assert.notEqual(retryOnEntries(c)[0]?.kind, 'unknown', c);
    }
  });

  it("Istio's conditions the proxies do not know, and unknown ones, would be rejected", () => {
    for (const c of [...RETRY_ON_DROPPED, 'bogus', '5xxx', 'http3']) {
      assert.equal(throws(attempt(c)), true, c);
      assert.ok(['dropped', 'unknown'].includes(retryOnEntries(c)[0]?.kind as string), c);
    }
    assert.deepEqual(
      retryOnEntries(' 5xx, ,reset-before-request,bogus,404').map((e) => `${e.text}:${e.kind}`),
      ['5xx:implemented', 'reset-before-request:dropped', 'bogus:unknown', '404:status'],
    );
  });
});

describe('AuthorizationPolicy values: what the proxies parse', () => {
  it('IP blocks: single addresses and CIDRs, IPv4 and IPv6', () => {
    for (const b of [
      '10.0.0.0/8',
      '1.2.3.4',
      '2001:db8::/32',
      '::1',
      '0.0.0.0/0',
      '::ffff:1.2.3.4',
    ]) {
      assert.equal(ipBlockProblem(b), null, b);
      assert.equal(
        throws(() => new IpBlocks([b])),
        false,
        b,
      );
    }
    for (const b of [
      '10.0.0.0/33',
      '10.0.0.0/',
      'x',
      '10.0.0.0/08',
      '10.0.0.0/ 8',
      '10.0.0.0/0x8',
      '::1/129',
      'fe80::1%eth0',
      '',
    ]) {
      assert.ok(ipBlockProblem(b) !== null, b);
      assert.equal(
        throws(() => new IpBlocks([b])),
        true,
        b,
      );
    }
  });

  it('ports: decimal 0..65535, as Istio validates them', () => {
    const port = (v: string) => () => compileCondition({ key: 'destination.port', values: [v] });
    for (const p of ['0', '80', '65535']) {
      assert.equal(portStringProblem(p), null, p);
      assert.equal(throws(port(p)), false, p);
    }
    for (const p of ['http', '65536', '080', '-1', '', '99999']) {
      assert.ok(portStringProblem(p) !== null, p);
      assert.equal(throws(port(p)), true, p);
    }
  });

  it('path templates: {*} and {**} as whole segments, {**} last', () => {
    for (const p of [
      '/exact',
      '/prefix/*',
      '*/suffix',
      '/a/{*}/b',
      '/{**}/path/template',
      '/a/{**}',
    ]) {
      assert.equal(pathTemplateProblem(p), null, p);
      assert.equal(
        throws(() => compilePath(p)),
        false,
        p,
      );
    }
    for (const p of ['/foo/{**}/{*}', '/foo/x{*}', '/foo/{*}*', 'foo/{*}']) {
      assert.ok(pathTemplateProblem(p) !== null, p);
      assert.equal(
        throws(() => compilePath(p)),
        true,
        p,
      );
    }
  });

  it('a rule: every value the proxy cannot take, with its path in the rule', () => {
    const rule = {
      from: [{ source: { ipBlocks: ['1.2.3.4', 'nope'], notRemoteIpBlocks: ['10.0.0.0/40'] } }],
      to: [{ operation: { ports: ['80', 'http'], notPaths: ['/a/{*}x'] } }],
      when: [
        { key: 'destination.port', values: ['443'], notValues: ['https'] },
        { key: 'source.ip', values: ['300.1.1.1'] },
        { key: 'request.headers[x-a]' },
        { key: 'request.headers[x-b]', notValues: [] },
        { key: 'source.namespace', values: ['anything goes'] },
      ],
    };
    assert.deepEqual(
      authorizationRuleProblems(rule).map((p) => p.path.join('.')),
      [
        'from.0.source.ipBlocks.1',
        'from.0.source.notRemoteIpBlocks.0',
        'to.0.operation.ports.1',
        'to.0.operation.notPaths.0',
        'when.0.notValues.0',
        'when.1.values.0',
        'when.2',
        'when.3',
      ],
    );
    // Each of them makes the proxy refuse the policy.
    for (const r of [
      { from: rule.from },
      { to: rule.to },
      ...rule.when.slice(0, 4).map((c) => ({ when: [c] })),
    ]) {
      const l = {
        name: 'inbound',
        virtualHosts: [],
        authorization: { policies: [{ name: 'ns/p', action: 'ALLOW' as const, rules: [r] }] },
      };
      assert.equal(
        throws(() => compileListenerSecurity(l, 'l', null)),
        true,
        JSON.stringify(r),
      );
    }
  });
});

describe('RequestAuthentication jwks: what the proxies parse', () => {
  const jwt = (jwks: string) => () =>
    compileListenerSecurity(
      { name: 'inbound', virtualHosts: [], jwtRules: [{ issuer: 'i', jwks }] },
      'l',
      null,
    );

  it('a key set with typed keys, or an empty one, is accepted', () => {
    for (const j of [
      '{"keys":[]}',
      '{"keys":[{"kty":"RSA","n":"abc","e":"AQAB"}]}',
      '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}],"extra":1}',
    ]) {
      assert.equal(typeof parseJwks(j), 'object', j);
      assert.equal(throws(jwt(j)), false, j);
    }
  });

  it('anything else is refused, as the proxy refuses it', () => {
    for (const [j, why] of [
      ['not json', /not JSON/],
      ['[]', /"keys" list/],
      ['{"keys":{}}', /"keys" list/],
      ['{"keys":[1]}', /keys\[0\] is not an object/],
      ['{"keys":[{"n":"abc"}]}', /keys\[0\] has no "kty"/],
    ] as const) {
      assert.match(String(parseJwks(j)), why, j);
      assert.equal(throws(jwt(j)), true, j);
    }
  });
});

describe('HTTP routes: values the proxies cannot compile or write into a head', () => {
  it('lists each with its path in the route', () => {
    const route = {
      match: [
        { uri: { regex: '(?i)/a' }, headers: { 'x-a': { regex: 'ok' }, 'x-b': { regex: '[' } } },
      ],
      rewrite: { uriRegexRewrite: { match: '(', rewrite: '/x\r\n' } },
      redirect: { authority: 'a\nb' },
      corsPolicy: {
        allowOrigins: [{ exact: 'x' }, { regex: '(?P<o>.*)' }],
        allowHeaders: ['*', 'a b'],
      },
      // A request set of :authority or host rewrites the authority (as Istio); an add may not.
      headers: {
        request: {
          set: { ':authority': 'x', 'x-ok': 'v\u0000' },
          add: { Host: 'y' },
          remove: ['a:b'],
        },
      },
      route: [{ destination: { host: 'a' }, headers: { response: { add: { 'a/b': 'c' } } } }],
    };
    assert.deepEqual(
      httpRouteProblems(route).map((p) => `${p.path.join('.')}${p.at === 'key' ? ' (key)' : ''}`),
      [
        'match.0.uri.regex',
        'match.0.headers.x-b.regex',
        'rewrite.uriRegexRewrite.match',
        'rewrite.uriRegexRewrite.rewrite',
        'redirect.authority',
        'corsPolicy.allowOrigins.1.regex',
        'corsPolicy.allowHeaders.1',
        'headers.request.set.x-ok',
        'headers.request.add.Host (key)',
        'headers.request.remove.0',
        'route.0.headers.response.add.a/b (key)',
      ],
    );
    assert.deepEqual(httpRouteProblems({ route: [{ destination: { host: 'a' } }] }), []);
    assert.deepEqual(
      matchProblems([{ queryParams: { q: { regex: '\\z' } } }]).map((p) => p.path.join('.')),
      ['0.queryParams.q.regex'],
    );
  });
});
