/**
 * Pure tables: Istio value and path-template matching, ip blocks, and the authorization
 * evaluation order (DENY → AUDIT → ALLOW) over plain request attributes.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Authorization, AuthzPolicy } from '../../../src/api/proxy-config.js';
import {
  CompiledAuthorization,
  type AuthzInput,
  type RequestAuth,
} from '../../../src/proxy/security/authz.js';
import { SECURITY_ERROR_CODES } from '../../../src/proxy/security/errors.js';
import { compilePath, HostMatcher, IpBlocks } from '../../../src/proxy/security/match.js';
import { compileListenerSecurity } from '../../../src/proxy/security/filters.js';

test('path matching: exact, prefix, suffix, presence and Istio path templates', () => {
  const cases: [string, string, boolean][] = [
    ['/a', '/a', true],
    ['/a', '/a/', false],
    ['/api/*', '/api/v1/x', true],
    ['/api/*', '/apix', false],
    ['*.html', '/x/index.html', true],
    ['*', '/', true],
    ['/foo/{*}', '/foo/bar', true],
    ['/foo/{*}', '/foo/bar/baz', false],
    ['/foo/{*}', '/foo/', false],
    ['/foo/{*}/baz', '/foo/bar/baz', true],
    ['/foo/{*}/baz', '/foo/a/b/baz', false],
    ['/foo/{**}', '/foo/bar/baz', true],
    ['/foo/{**}', '/foo/', true],
    ['/foo/{**}', '/foo', false],
    ['/{*}/x/{**}', '/a/x/b/c', true],
    ['/{*}/x/{**}', '/a/y/b', false],
    ['/a.b/{*}', '/aXb/c', false],
  ];
  for (const [pattern, path, want] of cases)
    assert.equal(compilePath(pattern).test(path), want, `${pattern} vs ${path}`);
  for (const bad of ['/foo/{**}/{*}', '/foo/x{*}', '/foo/{*}*', 'foo/{*}'])
    assert.throws(() => compilePath(bad), /path template/, bad);
});

test('hosts compare case-insensitively, with and without the port; ip blocks', () => {
  assert.equal(new HostMatcher('Example.com').test('example.COM:8080'), true);
  assert.equal(new HostMatcher('*.example.com').test('a.example.com'), true);
  assert.equal(new HostMatcher('example.com:8080').test('example.com:8080'), true);
  assert.equal(new HostMatcher('example.com').test('example.org'), false);
  const b = new IpBlocks(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32']);
  assert.equal(b.test('10.1.2.3'), true);
  assert.equal(b.test('::ffff:127.0.0.1'), true);
  assert.equal(b.test('127.0.0.2'), false);
  assert.equal(b.test('2001:db8::1'), true);
  assert.equal(b.test('not-an-ip'), false);
  for (const bad of ['10.0.0.0/33', 'x', '10.0.0.0/'])
    assert.throws(() => new IpBlocks([bad]), /IP block/, bad);
});

function input(
  over: Partial<Omit<AuthzInput, 'header'>> & { headers?: Record<string, string> } = {},
): AuthzInput {
  const headers = over.headers ?? {};
  return {
    principal: '',
    namespace: '',
    sourceIp: '127.0.0.1',
    remoteIp: '127.0.0.1',
    destinationIp: '127.0.0.1',
    destinationPort: 9080,
    host: 'reviews:9080',
    method: 'GET',
    path: '/',
    auth: null,
    ...over,
    header: (n: string) => headers[n],
  };
}

const SLEEP = 'cluster.local/ns/default/sa/sleep';
const jwt: RequestAuth = {
  principal: 'https://issuer/alice',
  audiences: ['api', 'web'],
  presenter: 'cli',
  claims: { groups: ['admin', 'dev'], tier: 'gold', nested: { role: 'ops' } },
};

const deny = (rules: AuthzPolicy['rules']): Authorization => ({
  policies: [{ name: 'ns/deny', action: 'DENY', rules }],
});

test('DENY matrix: each source, operation and condition field, and the not forms', () => {
  const cases: [string, AuthzPolicy['rules'], Parameters<typeof input>[0], boolean][] = [
    ['principal', [{ from: [{ source: { principals: [SLEEP] } }] }], { principal: SLEEP }, true],
    [
      'principal other',
      [{ from: [{ source: { principals: [SLEEP] } }] }],
      { principal: 'x' },
      false,
    ],
    ['principal plaintext', [{ from: [{ source: { principals: ['*'] } }] }], {}, false],
    ['notPrincipals plaintext', [{ from: [{ source: { notPrincipals: ['*'] } }] }], {}, true],
    [
      'principal prefix',
      [{ from: [{ source: { principals: ['cluster.local/ns/default/*'] } }] }],
      { principal: SLEEP },
      true,
    ],
    [
      'namespace',
      [{ from: [{ source: { namespaces: ['default'] } }] }],
      { namespace: 'default' },
      true,
    ],
    [
      'notNamespaces',
      [{ from: [{ source: { notNamespaces: ['default'] } }] }],
      { namespace: 'default' },
      false,
    ],
    [
      'notNamespaces other',
      [{ from: [{ source: { notNamespaces: ['default'] } }] }],
      { namespace: 'prod' },
      true,
    ],
    ['ipBlocks', [{ from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }] }], {}, true],
    ['notIpBlocks', [{ from: [{ source: { notIpBlocks: ['127.0.0.0/8'] } }] }], {}, false],
    ['remoteIpBlocks', [{ from: [{ source: { remoteIpBlocks: ['10.0.0.0/8'] } }] }], {}, false],
    [
      'requestPrincipals',
      [{ from: [{ source: { requestPrincipals: ['https://issuer/*'] } }] }],
      { auth: jwt },
      true,
    ],
    [
      'requestPrincipals missing',
      [{ from: [{ source: { requestPrincipals: ['*'] } }] }],
      {},
      false,
    ],
    [
      'notRequestPrincipals missing',
      [{ from: [{ source: { notRequestPrincipals: ['*'] } }] }],
      {},
      true,
    ],
    [
      'path template',
      [{ to: [{ operation: { paths: ['/api/{*}/admin'] } }] }],
      { path: '/api/v1/admin' },
      true,
    ],
    [
      'path template miss',
      [{ to: [{ operation: { paths: ['/api/{*}/admin'] } }] }],
      { path: '/api/v1/x/admin' },
      false,
    ],
    [
      'notPaths',
      [{ to: [{ operation: { notPaths: ['/health*'] } }] }],
      { path: '/healthz' },
      false,
    ],
    ['method', [{ to: [{ operation: { methods: ['POST', 'PUT'] } }] }], { method: 'PUT' }, true],
    ['notMethods', [{ to: [{ operation: { notMethods: ['GET'] } }] }], { method: 'GET' }, false],
    ['hosts', [{ to: [{ operation: { hosts: ['reviews'] } }] }], {}, true],
    ['notHosts', [{ to: [{ operation: { notHosts: ['reviews*'] } }] }], {}, false],
    ['ports', [{ to: [{ operation: { ports: ['9080'] } }] }], {}, true],
    ['notPorts', [{ to: [{ operation: { notPorts: ['9080'] } }] }], {}, false],
    [
      'header',
      [{ when: [{ key: 'request.headers[x-user]', values: ['bad*'] }] }],
      { headers: { 'x-user': 'badguy' } },
      true,
    ],
    [
      'header notValues',
      [{ when: [{ key: 'request.headers[X-User]', notValues: ['good'] }] }],
      { headers: { 'x-user': 'good' } },
      false,
    ],
    [
      'header absent notValues',
      [{ when: [{ key: 'request.headers[x-user]', notValues: ['good'] }] }],
      {},
      true,
    ],
    ['source.ip', [{ when: [{ key: 'source.ip', values: ['127.0.0.1'] }] }], {}, true],
    [
      'source.namespace',
      [{ when: [{ key: 'source.namespace', values: ['prod'] }] }],
      { namespace: 'prod' },
      true,
    ],
    [
      'source.principal',
      [{ when: [{ key: 'source.principal', values: [SLEEP] }] }],
      { principal: SLEEP },
      true,
    ],
    ['destination.port', [{ when: [{ key: 'destination.port', values: ['9080'] }] }], {}, true],
    [
      'auth.principal',
      [{ when: [{ key: 'request.auth.principal', values: ['https://issuer/alice'] }] }],
      { auth: jwt },
      true,
    ],
    [
      'auth.audiences',
      [{ when: [{ key: 'request.auth.audiences', values: ['web'] }] }],
      { auth: jwt },
      true,
    ],
    [
      'auth.presenter',
      [{ when: [{ key: 'request.auth.presenter', values: ['cli'] }] }],
      { auth: jwt },
      true,
    ],
    [
      'claims list',
      [{ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }],
      { auth: jwt },
      true,
    ],
    [
      'claims nested',
      [{ when: [{ key: 'request.auth.claims[nested][role]', values: ['ops'] }] }],
      { auth: jwt },
      true,
    ],
    [
      'claims missing',
      [{ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }],
      {},
      false,
    ],
    // AND inside a rule, OR across from entries
    [
      'and: principal + method',
      [{ from: [{ source: { principals: [SLEEP] } }], to: [{ operation: { methods: ['POST'] } }] }],
      { principal: SLEEP, method: 'GET' },
      false,
    ],
    [
      'or: from entries',
      [{ from: [{ source: { principals: ['x'] } }, { source: { namespaces: ['default'] } }] }],
      { namespace: 'default' },
      true,
    ],
    ['empty rule matches all', [{}], {}, true],
    ['no rules match nothing', [], {}, false],
  ];
  for (const [name, rules, over, denied] of cases) {
    const a = new CompiledAuthorization(deny(rules));
    assert.equal(a.evaluate(input(over)).decision, denied ? 'DENY' : 'ALLOW', name);
  }
});

test('evaluation order: DENY before ALLOW, AUDIT logs only, ALLOW with no match denies', () => {
  const a = new CompiledAuthorization({
    policies: [
      {
        name: 'ns/allow-get',
        action: 'ALLOW',
        rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
      },
      {
        name: 'ns/deny-admin',
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
      },
      { name: 'ns/audit-all', action: 'AUDIT', rules: [{}] },
    ],
  });
  assert.deepEqual(a.evaluate(input({ path: '/admin/x' })), {
    decision: 'DENY',
    policy: 'ns/deny-admin',
    audited: ['ns/audit-all'],
  });
  assert.equal(a.evaluate(input({ method: 'GET' })).decision, 'ALLOW');
  assert.deepEqual(a.evaluate(input({ method: 'POST' })), {
    decision: 'DENY',
    policy: '',
    audited: ['ns/audit-all'],
  });
  // only AUDIT / only DENY: allow-all for the rest
  const onlyAudit = new CompiledAuthorization({
    policies: [{ name: 'a', action: 'AUDIT', rules: [{}] }],
  });
  assert.equal(onlyAudit.evaluate(input()).decision, 'ALLOW');
  // an ALLOW policy without rules denies everything
  const allowNothing = new CompiledAuthorization({
    policies: [{ name: 'n', action: 'ALLOW', rules: [] }],
  });
  assert.equal(allowNothing.evaluate(input()).decision, 'DENY');
});

test('bad policies are config compile errors naming the field', () => {
  const bad: [Authorization, RegExp][] = [
    [deny([{ when: [{ key: 'connection.sni', values: ['x'] }] }]), /unsupported condition key/],
    [deny([{ when: [{ key: 'source.ip', values: ['300.1.1.1'] }] }]), /IP block/],
    [deny([{ when: [{ key: 'request.headers[x]' }] }]), /needs values/],
    [deny([{ to: [{ operation: { ports: ['http'] } }] }]), /invalid port/],
    [deny([{ to: [{ operation: { paths: ['/a/{**}/b/{*}'] } }] }]), /last operator/],
  ];
  for (const [authorization, re] of bad) {
    assert.throws(
      () =>
        compileListenerSecurity(
          { name: 'inbound', virtualHosts: [], authorization },
          'listeners[0]',
          null,
        ),
      (e: Error & { code?: string }) =>
        e.code === 'SLUICE_PROXY_CONFIG_COMPILE' &&
        re.test(e.message) &&
        /listeners\[0\]\.authorization\.policies\[0\]\.rules\[0\]/.test(e.message),
    );
  }
  assert.throws(
    () =>
      compileListenerSecurity(
        { name: 'inbound', virtualHosts: [], jwtRules: [{ issuer: 'i' }] },
        'l',
        null,
      ),
    /exactly one of jwks, jwksUri/,
  );
  assert.throws(
    () =>
      compileListenerSecurity(
        { name: 'inbound', virtualHosts: [], jwtRules: [{ issuer: 'i', jwks: '{' }] },
        'l',
        null,
      ),
    /jwks/,
  );
});

test('every SLUICE_SECURITY code used under src/proxy/security is registered, and every registered one used', async () => {
  const dir = 'src/proxy/security';
  const used = new Set<string>();
  for (const f of (await readdir(dir)).filter((f) => f.endsWith('.ts'))) {
    const text = await readFile(join(dir, f), 'utf8');
    if (f === 'errors.ts') {
      // codes raised from errors.ts itself (the error classes' constructors)
      for (const m of text.matchAll(/super\('(SLUICE_SECURITY_[A-Z_]+)'/g))
        used.add(m[1] as string);
      continue;
    }
    for (const m of text.matchAll(/'(SLUICE_SECURITY_[A-Z_]+)'/g)) used.add(m[1] as string);
  }
  for (const code of used) assert.ok(code in SECURITY_ERROR_CODES, `${code} is not registered`);
  for (const code of Object.keys(SECURITY_ERROR_CODES))
    assert.ok(used.has(code), `${code} is registered but never raised`);
});
