import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMesh } from '../../../src/mesh/compile/index.js';
import { loadManifests } from '../../../src/manifests/index.js';
import { compileListenerSecurity } from '../../../src/proxy/security/filters.js';
import type { ProxyInstance } from '../../../src/mesh/registry.js';
import {
  bookinfo,
  clusterOf,
  fixture,
  gatewayProxy,
  listenerOf,
  registryOf,
  serviceYaml,
  sidecar,
  stateOf,
} from './helpers.js';

const FQDN = (n: string, ns = 'default') => `${n}.${ns}.svc.cluster.local`;

function pa(name: string, ns: string, body: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body}`;
}

describe('mesh compiler: PeerAuthentication → inbound tls', () => {
  const web = sidecar('web-v1', {
    labels: { app: 'web', version: 'v1', foo: 'bar' },
    appPorts: [{ containerPort: 8080, name: 'http', hostPort: 31100 }],
  });
  const other = sidecar('other-v1');
  const shop = sidecar('cart-v1', { namespace: 'shop' });
  const registry = registryOf(web, other, shop);
  const svc = serviceYaml('web', { ports: [{ port: 80, name: 'http', targetPort: 8080 }] });
  const modeOf = (texts: string[], p: ProxyInstance) =>
    listenerOf(compileMesh(stateOf(svc, ...texts), registry).configs.get(p.id)!, 'inbound').tls;

  const CASES: { name: string; texts: string[]; proxy: ProxyInstance; expected: unknown }[] = [
    { name: 'no policy: PERMISSIVE', texts: [], proxy: web, expected: { mode: 'PERMISSIVE' } },
    {
      name: 'mesh-wide STRICT in istio-system',
      texts: [pa('default', 'istio-system', '  mtls: {mode: STRICT}')],
      proxy: shop,
      expected: { mode: 'STRICT' },
    },
    {
      name: 'namespace DISABLE over mesh STRICT',
      texts: [
        pa('default', 'istio-system', '  mtls: {mode: STRICT}'),
        pa('default', 'default', '  mtls: {mode: DISABLE}'),
      ],
      proxy: other,
      expected: { mode: 'DISABLE' },
    },
    {
      name: 'a namespace policy leaves other namespaces alone',
      texts: [pa('default', 'default', '  mtls: {mode: STRICT}')],
      proxy: shop,
      expected: { mode: 'PERMISSIVE' },
    },
    {
      name: 'workload UNSET inherits the namespace mode',
      texts: [
        pa('default', 'default', '  mtls: {mode: STRICT}'),
        pa('web', 'default', '  selector: {matchLabels: {app: web}}\n  mtls: {mode: UNSET}'),
      ],
      proxy: web,
      expected: { mode: 'STRICT' },
    },
    {
      name: 'Istio fixture: workload PERMISSIVE with port 80 STRICT (by workload port and service port)',
      texts: [fixture('crds-peerauth-valid.yaml').replace('"80"', '"8080"')],
      proxy: web,
      expected: { mode: 'PERMISSIVE', portLevel: { '80': 'STRICT', '8080': 'STRICT' } },
    },
    {
      name: 'a workload selector that does not match: namespace mode',
      texts: [fixture('crds-peerauth-valid.yaml')],
      proxy: other,
      expected: { mode: 'PERMISSIVE' },
    },
  ];
  for (const c of CASES) {
    it(c.name, () => assert.deepEqual(modeOf(c.texts, c.proxy), c.expected));
  }
});

describe('mesh compiler: cluster tls (DestinationRule and auto-mTLS)', () => {
  const b = bookinfo();
  const pp = 'default/productpage-v1/0';
  const reviewsSans = ['spiffe://cluster.local/ns/default/sa/default'];

  it('auto-mTLS: ISTIO_MUTUAL to sidecars, with their SPIFFE ids', () => {
    const r = compileMesh(stateOf(b.services), registryOf(...b.proxies));
    assert.deepEqual(clusterOf(r.configs.get(pp)!, `outbound|9080||${FQDN('reviews')}`)?.tls, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: reviewsSans,
    });
  });

  it('auto-mTLS off: plaintext', () => {
    const r = compileMesh(stateOf(b.services), registryOf(...b.proxies), undefined, {
      autoMtls: false,
    });
    assert.equal(
      clusterOf(r.configs.get(pp)!, `outbound|9080||${FQDN('reviews')}`)?.tls,
      undefined,
    );
  });

  it('no auto-mTLS to workloads whose PeerAuthentication is DISABLE', () => {
    const r = compileMesh(
      stateOf(
        b.services,
        pa(
          'reviews',
          'default',
          '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: DISABLE}',
        ),
      ),
      registryOf(...b.proxies),
    );
    const c = r.configs.get(pp)!;
    assert.equal(clusterOf(c, `outbound|9080||${FQDN('reviews')}`)?.tls, undefined);
    assert.equal(clusterOf(c, `outbound|9080||${FQDN('ratings')}`)?.tls?.mode, 'ISTIO_MUTUAL');
  });

  it('bookinfo destination-rule-all-mtls: ISTIO_MUTUAL on every subset', () => {
    const r = compileMesh(
      stateOf(b.services, fixture('bookinfo-destination-rule-all-mtls.yaml')),
      registryOf(...b.proxies),
      undefined,
      { autoMtls: false },
    );
    const c = r.configs.get(pp)!;
    for (const s of ['v1', 'v2', 'v3'])
      assert.equal(
        clusterOf(c, `outbound|9080|${s}|${FQDN('reviews')}`)?.tls?.mode,
        'ISTIO_MUTUAL',
      );
  });

  it('a DestinationRule DISABLE beats auto-mTLS; SIMPLE on a port of an external host', () => {
    const client = sidecar('client-v1');
    const r = compileMesh(
      stateOf(
        b.services,
        `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: DISABLE}}`,
        fixture('bookinfo-egress-rule-google-apis.yaml'),
      ),
      registryOf(...b.proxies, client),
    );
    const c = r.configs.get(client.id)!;
    assert.equal(clusterOf(c, `outbound|9080||${FQDN('reviews')}`)?.tls, undefined);
    assert.deepEqual(clusterOf(c, 'outbound|443||www.googleapis.com')?.tls, {
      mode: 'SIMPLE',
      sni: 'www.googleapis.com',
    });
    assert.equal(clusterOf(c, 'outbound|80||www.googleapis.com')?.tls, undefined);
  });

  it('a DestinationRule MUTUAL (no client certificates in sluice) is TLS as SIMPLE, never plaintext', () => {
    const client = sidecar('client-v1');
    const r = compileMesh(
      stateOf(
        b.services,
        fixture('bookinfo-egress-rule-google-apis.yaml').replace('mode: SIMPLE', 'mode: MUTUAL'),
      ),
      registryOf(...b.proxies, client),
    );
    assert.deepEqual(
      clusterOf(r.configs.get(client.id)!, 'outbound|443||www.googleapis.com')?.tls,
      {
        mode: 'SIMPLE',
        sni: 'www.googleapis.com',
      },
    );
  });
});

describe('mesh compiler: AuthorizationPolicy and RequestAuthentication', () => {
  const httpbin = sidecar('httpbin-v1', { namespace: 'foo' });
  const sleep = sidecar('sleep-v1', { namespace: 'foo' });
  const elsewhere = sidecar('httpbin-v1', { namespace: 'bar' });
  const registry = registryOf(httpbin, sleep, elsewhere);
  const compile = (...texts: string[]) => compileMesh(stateOf(...texts), registry);
  const inboundOf = (r: ReturnType<typeof compile>, p: ProxyInstance) =>
    listenerOf(r.configs.get(p.id)!, 'inbound');

  it('Istio fixture deny-method-get: selected workload only, rules as written', () => {
    const r = compile(fixture('istioio-authz-deny-2.yaml'));
    assert.deepEqual(inboundOf(r, httpbin).authorization, {
      policies: [
        {
          name: 'foo/deny-method-get',
          action: 'DENY',
          rules: [
            {
              to: [{ operation: { methods: ['GET'] } }],
              when: [{ key: 'request.headers[x-token]', notValues: ['admin'] }],
            },
          ],
        },
      ],
    });
    assert.equal(inboundOf(r, sleep).authorization, undefined);
    assert.equal(inboundOf(r, elsewhere).authorization, undefined);
  });

  it('root-namespace policies apply mesh-wide; namespace policies to their namespace', () => {
    const r = compile(
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-foo, namespace: foo}
spec:
  rules:
  - from:
    - source:
        namespaces: [foo]
        serviceAccounts: [foo/sleep]
        notTrustDomains: [evil.local]`,
    );
    assert.deepEqual(inboundOf(r, elsewhere).authorization, {
      policies: [{ name: 'istio-system/allow-nothing', action: 'ALLOW', rules: [] }],
    });
    assert.deepEqual(
      inboundOf(r, sleep).authorization?.policies.map((p) => p.name),
      ['foo/allow-foo', 'istio-system/allow-nothing'],
    );
    assert.deepEqual(inboundOf(r, sleep).authorization?.policies[0]?.rules, [
      {
        from: [
          {
            source: {
              namespaces: ['foo'],
              principals: ['cluster.local/ns/foo/sa/sleep'],
              notPrincipals: ['evil.local/*'],
            },
          },
        ],
      },
    ]);
  });

  it('RequestAuthentication jwtRules and the JWT-requiring policy on the selected workload', () => {
    const ra = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.20/security/tools/jwt/samples/jwks.json
    outputPayloadToHeader: x-jwt-payload
    fromHeaders: [{name: x-jwt, prefix: "Bearer "}]`;
    const r = compile(ra, fixture('istioio-authz-jwt-3.yaml'));
    const l = inboundOf(r, httpbin);
    assert.deepEqual(l.jwtRules, [
      {
        issuer: 'testing@secure.istio.io',
        jwksUri:
          'https://raw.githubusercontent.com/istio/istio/release-1.20/security/tools/jwt/samples/jwks.json',
        fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }],
        outputPayloadToHeader: 'x-jwt-payload',
      },
    ]);
    assert.deepEqual(l.authorization?.policies[0]?.rules[0]?.from, [
      { source: { requestPrincipals: ['testing@secure.istio.io/testing@secure.istio.io'] } },
    ]);
    assert.equal(inboundOf(r, sleep).jwtRules, undefined);
  });

  it('Istio fixture ext-authz (CUSTOM, no external authorizer): what it matches is denied', () => {
    const custom = fixture('istioio-authz-custom-2.yaml').replace(
      'name: ext-authz',
      'name: ext-authz\n  namespace: foo',
    );
    const r = compile(custom);
    assert.deepEqual(inboundOf(r, httpbin).authorization, {
      policies: [
        {
          name: 'foo/ext-authz',
          action: 'DENY',
          rules: [{ to: [{ operation: { paths: ['/headers'] } }] }],
        },
      ],
    });
    assert.equal(inboundOf(r, sleep).authorization, undefined);
    // …and the user is told, at the action.
    const warning = loadManifests([{ path: 'ext-authz.yaml', content: custom }]).diagnostics.find(
      (d) => d.path === 'spec.action',
    );
    assert.equal(warning?.code, 'SLUICE_FIELD_UNSUPPORTED');
    assert.equal(warning?.severity, 'warning');
    assert.match(warning?.message ?? '', /CUSTOM.*denied \(fail closed\)/);
  });

  it('Istio fixture crds-authz-valid: condition keys the proxies lack fail closed, and the proxy accepts the config', () => {
    const full = fixture('crds-authz-valid.yaml').replace(
      'name: full',
      'name: full\n  namespace: foo',
    );
    // ALLOW: the rule with connection.sni, source.trustDomain and experimental.* never matches.
    const allow = inboundOf(compile(full), httpbin);
    assert.deepEqual(allow.authorization?.policies, [
      { name: 'foo/full', action: 'ALLOW', rules: [] },
    ]);
    assert.doesNotThrow(() => compileListenerSecurity(allow, 'inbound', null));
    // DENY: the rule applies without those conditions (the others stay).
    const deny = inboundOf(
      compile(full.replace('spec:\n  selector:', 'spec:\n  action: DENY\n  selector:')),
      httpbin,
    );
    const rule = deny.authorization?.policies[0]?.rules[0];
    assert.equal(deny.authorization?.policies[0]?.action, 'DENY');
    assert.deepEqual(
      rule?.when?.map((c) => c.key),
      [
        'source.principal', // trustDomains, ANDed with principals
        'request.headers[X-header]',
        'source.ip',
        'remote.ip',
        'source.namespace',
        'source.principal',
        'request.auth.principal',
        'request.auth.audiences',
        'request.auth.presenter',
        'request.auth.claims[iss]',
        'request.auth.claims[nested1][nested2]',
        'destination.ip',
        'destination.port',
      ],
    );
    assert.ok(rule?.from && rule.to);
    assert.doesNotThrow(() => compileListenerSecurity(deny, 'inbound', null));
  });

  it('Istio fixture: a JWT rule without keys gets an empty key set (its tokens get 401), not a rejected config', () => {
    const ra = fixture('dataset-security-v1-RequestAuthentication.yaml').replace(
      'name: valid-request-authentication',
      'name: valid-request-authentication\n  namespace: foo',
    );
    const l = inboundOf(compile(ra), httpbin);
    assert.deepEqual(l.jwtRules, [{ issuer: 'example.com', jwks: '{"keys":[]}' }]);
    assert.doesNotThrow(() => compileListenerSecurity(l, 'inbound', null));
  });

  it('policies attached with targetRef (unsupported) select nothing', () => {
    const r = compile(fixture('istioio-authn-policy-9.yaml'));
    assert.equal(inboundOf(r, httpbin).authorization, undefined);
  });

  it('gateway proxies get the policies that select them on the gateway listener', () => {
    const gw = gatewayProxy('ingress', { istio: 'ingressgateway' });
    const r = compileMesh(
      stateOf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-deny, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]`),
      registryOf(gw, httpbin),
    );
    assert.equal(
      listenerOf(r.configs.get(gw.id)!, 'gateway').authorization?.policies[0]?.name,
      'istio-system/ingress-deny',
    );
    assert.equal(inboundOf(r, httpbin).authorization, undefined);
  });
});
