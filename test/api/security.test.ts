import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizationPolicyKind as ap } from '../../src/api/security/authorization-policy.js';
import { peerAuthenticationKind as pa } from '../../src/api/security/peer-authentication.js';
import {
  normalizeRequestAuthentication,
  requestAuthenticationKind as ra,
} from '../../src/api/security/request-authentication.js';
import type { KindDefinition } from '../../src/api/kind.js';
import { describeErrors, errorsOf, rejectsAt, withChange, type InvalidCase } from './helpers.js';

const meta = { name: 'httpbin', namespace: 'foo' };
const selector = { matchLabels: { app: 'httpbin', version: 'v1' } };

const peerAuthentication = {
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: meta,
  spec: {
    selector,
    mtls: { mode: 'STRICT' },
    portLevelMtls: { '8080': { mode: 'PERMISSIVE' }, '65535': { mode: 'DISABLE' } },
  },
};

const authorizationPolicy = {
  apiVersion: 'security.istio.io/v1beta1',
  kind: 'AuthorizationPolicy',
  metadata: meta,
  spec: {
    selector,
    action: 'DENY',
    rules: [
      {
        from: [
          { source: { principals: ['cluster.local/ns/default/sa/sleep'], notNamespaces: ['dev'] } },
          {
            source: {
              serviceAccounts: ['foo/sa'],
              remoteIpBlocks: ['10.0.0.0/8'],
              trustDomains: ['cluster.local'],
            },
          },
        ],
        to: [
          {
            operation: {
              methods: ['GET'],
              paths: ['/info*', '/{**}/x'],
              ports: ['8080'],
              notHosts: ['admin.*'],
            },
          },
        ],
        when: [
          {
            key: 'request.auth.claims[iss]',
            values: ['https://accounts.google.com'],
            notValues: ['x'],
          },
        ],
      },
    ],
  },
};

const requestAuthentication = {
  apiVersion: 'security.istio.io/v1',
  kind: 'RequestAuthentication',
  metadata: meta,
  spec: {
    selector,
    jwtRules: [
      {
        issuer: 'https://issuer.example',
        audiences: ['shop'],
        jwksUri: 'https://issuer.example/.well-known/jwks.json',
        fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }],
        fromParams: ['token'],
        outputPayloadToHeader: 'x-jwt-payload',
        forwardOriginalToken: true,
        outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
      },
      { issuer: 'inline', jwks: '{"keys":[]}' },
    ],
  },
};

const tables: [string, KindDefinition, unknown, InvalidCase[]][] = [
  [
    'PeerAuthentication',
    pa,
    peerAuthentication,
    [
      {
        name: 'an unknown mTLS mode',
        path: ['spec', 'mtls', 'mode'],
        value: 'ON',
        at: '/spec/mtls/mode',
        keyword: 'anyOf',
      },
      {
        name: 'a port-level key that is not a port',
        path: ['spec', 'portLevelMtls', 'http'],
        value: { mode: 'STRICT' },
        at: '/spec/portLevelMtls',
        keyword: 'additionalProperties',
      },
      {
        name: 'a port-level port 0',
        path: ['spec', 'portLevelMtls', '0'],
        value: { mode: 'STRICT' },
        at: '/spec/portLevelMtls',
        keyword: 'additionalProperties',
      },
      {
        name: 'a port-level port 65536',
        path: ['spec', 'portLevelMtls', '65536'],
        value: { mode: 'STRICT' },
        at: '/spec/portLevelMtls',
        keyword: 'additionalProperties',
      },
      {
        name: 'an empty portLevelMtls',
        path: ['spec', 'portLevelMtls'],
        value: {},
        at: '/spec/portLevelMtls',
        keyword: 'minProperties',
      },
      {
        name: 'a port-level mode given as a string',
        path: ['spec', 'portLevelMtls', '8080'],
        value: 'STRICT',
        at: '/spec/portLevelMtls/8080',
        keyword: 'type',
      },
      {
        name: 'a wildcard label value',
        path: ['spec', 'selector', 'matchLabels', 'app'],
        value: 'http*',
        at: '/spec/selector/matchLabels/app',
        keyword: 'pattern',
      },
      {
        name: 'a label value over 63 characters',
        path: ['spec', 'selector', 'matchLabels', 'app'],
        value: 'a'.repeat(64),
        at: '/spec/selector/matchLabels/app',
        keyword: 'maxLength',
      },
      {
        name: 'a selector with labels instead of matchLabels',
        path: ['spec', 'selector', 'labels'],
        value: { app: 'a' },
        at: '/spec/selector',
        keyword: 'additionalProperties',
      },
      {
        name: 'a targetRef (PeerAuthentication has none)',
        path: ['spec', 'targetRef'],
        value: { kind: 'Service', name: 'a' },
        at: '/spec',
        keyword: 'additionalProperties',
      },
    ],
  ],
  [
    'AuthorizationPolicy',
    ap,
    authorizationPolicy,
    [
      {
        name: 'an unknown action',
        path: ['spec', 'action'],
        value: 'PERMIT',
        at: '/spec/action',
        keyword: 'anyOf',
      },
      {
        name: 'a source field typo',
        path: ['spec', 'rules', 0, 'from', 0, 'source', 'principal'],
        value: ['a'],
        at: '/spec/rules/0/from/0/source',
        keyword: 'additionalProperties',
      },
      {
        name: 'principals given as a string',
        path: ['spec', 'rules', 0, 'from', 0, 'source', 'principals'],
        value: 'a',
        at: '/spec/rules/0/from/0/source/principals',
        keyword: 'type',
      },
      {
        name: 'more than 16 service accounts',
        path: ['spec', 'rules', 0, 'from', 1, 'source', 'serviceAccounts'],
        value: Array.from({ length: 17 }, (_, i) => `sa${i}`),
        at: '/spec/rules/0/from/1/source/serviceAccounts',
        keyword: 'maxItems',
      },
      {
        name: 'operation ports given as numbers',
        path: ['spec', 'rules', 0, 'to', 0, 'operation', 'ports', 0],
        value: 8080,
        at: '/spec/rules/0/to/0/operation/ports/0',
        keyword: 'type',
      },
      {
        name: 'a condition without key',
        path: ['spec', 'rules', 0, 'when', 0, 'key'],
        value: undefined,
        at: '/spec/rules/0/when/0',
        keyword: 'required',
      },
      {
        name: 'condition values given as a string',
        path: ['spec', 'rules', 0, 'when', 0, 'values'],
        value: 'a',
        at: '/spec/rules/0/when/0/values',
        keyword: 'type',
      },
      {
        name: 'a rule field Istio does not have',
        path: ['spec', 'rules', 0, 'unless'],
        value: [],
        at: '/spec/rules/0',
        keyword: 'additionalProperties',
      },
      {
        name: 'both selector and targetRef',
        path: ['spec', 'targetRef'],
        value: { kind: 'Gateway', name: 'gw' },
        at: '/spec',
        keyword: 'not',
      },
      {
        name: 'a targetRef without name',
        path: ['spec', 'targetRefs'],
        value: [{ kind: 'Gateway' }],
        at: '/spec/targetRefs/0',
        keyword: 'required',
      },
    ],
  ],
  [
    'RequestAuthentication',
    ra,
    requestAuthentication,
    [
      {
        name: 'a jwksUri that is not http(s)',
        path: ['spec', 'jwtRules', 0, 'jwksUri'],
        value: 'ftp://issuer/jwks',
        at: '/spec/jwtRules/0/jwksUri',
        keyword: 'pattern',
      },
      {
        name: 'both jwks and jwksUri',
        path: ['spec', 'jwtRules', 0, 'jwks'],
        value: '{}',
        at: '/spec/jwtRules/0',
        keyword: 'not',
      },
      {
        name: 'both jwks_uri and jwksUri',
        path: ['spec', 'jwtRules', 0, 'jwks_uri'],
        value: 'https://a',
        at: '/spec/jwtRules/0',
        keyword: 'not',
      },
      {
        name: 'an empty issuer',
        path: ['spec', 'jwtRules', 0, 'issuer'],
        value: '',
        at: '/spec/jwtRules/0/issuer',
        keyword: 'minLength',
      },
      {
        // Istio's validation: "issuer must be set" (the rule was dropped silently before).
        name: 'a rule without issuer',
        path: ['spec', 'jwtRules', 0, 'issuer'],
        value: undefined,
        at: '/spec/jwtRules/0',
        keyword: 'required',
      },
      {
        name: 'a header location without name',
        path: ['spec', 'jwtRules', 0, 'fromHeaders', 0, 'name'],
        value: undefined,
        at: '/spec/jwtRules/0/fromHeaders/0',
        keyword: 'required',
      },
      {
        name: 'a claim header name with a space',
        path: ['spec', 'jwtRules', 0, 'outputClaimToHeaders', 0, 'header'],
        value: 'x sub',
        at: '/spec/jwtRules/0/outputClaimToHeaders/0/header',
        keyword: 'pattern',
      },
      {
        name: 'forwardOriginalToken given as a string',
        path: ['spec', 'jwtRules', 0, 'forwardOriginalToken'],
        value: 'yes',
        at: '/spec/jwtRules/0/forwardOriginalToken',
        keyword: 'type',
      },
      {
        name: 'an unknown presence',
        path: ['spec', 'jwtRules', 0, 'presence'],
        value: 'MUST',
        at: '/spec/jwtRules/0/presence',
        keyword: 'anyOf',
      },
      {
        name: 'a JWT rule field typo',
        path: ['spec', 'jwtRules', 0, 'audience'],
        value: ['a'],
        at: '/spec/jwtRules/0',
        keyword: 'additionalProperties',
      },
    ],
  ],
];

for (const [kind, def, base, cases] of tables) {
  describe(`${kind} schema`, () => {
    it('accepts an object using every supported field', () => {
      assert.deepEqual(errorsOf(def, base), [], describeErrors(def, base));
    });

    it('accepts every accepted apiVersion', () => {
      for (const v of def.apiVersions) {
        assert.deepEqual(errorsOf(def, { ...(base as object), apiVersion: v }), [], v);
      }
      assert.deepEqual(def.apiVersions, ['security.istio.io/v1', 'security.istio.io/v1beta1']);
      assert.equal(def.canonicalApiVersion, 'security.istio.io/v1');
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
}

describe('RequestAuthentication normalize', () => {
  it('renames jwks_uri to jwksUri and converts the apiVersion', () => {
    const o = withChange(
      withChange(requestAuthentication, ['apiVersion'], 'security.istio.io/v1beta1'),
      ['spec', 'jwtRules', 0, 'jwksUri'],
      undefined,
    );
    const legacy = withChange(
      o,
      ['spec', 'jwtRules', 0, 'jwks_uri'],
      'https://issuer.example/keys',
    );
    const before = structuredClone(legacy);
    const out = normalizeRequestAuthentication(legacy, legacy.apiVersion);
    assert.deepEqual(legacy, before, 'the input is not mutated');
    assert.deepEqual(
      out,
      withChange(
        requestAuthentication,
        ['spec', 'jwtRules', 0, 'jwksUri'],
        'https://issuer.example/keys',
      ),
    );
    assert.deepEqual(errorsOf(ra, out), []);
  });

  it('only changes the apiVersion of an object without deprecated forms', () => {
    const o = { ...requestAuthentication, apiVersion: 'security.istio.io/v1beta1' };
    const out = normalizeRequestAuthentication(o, o.apiVersion);
    assert.deepEqual(out, requestAuthentication);
    assert.equal(out.spec, o.spec);
    assert.equal(ra.normalize, normalizeRequestAuthentication);
  });

  it('PeerAuthentication and AuthorizationPolicy have no deprecated forms, so no normalize', () => {
    assert.equal(pa.normalize, undefined);
    assert.equal(ap.normalize, undefined);
  });
});
