/**
 * Every Istio object of sluice's Istio kinds in the conformance files (test/fixtures/istio,
 * copied verbatim from real upstream manifests, see SOURCES.md) validates against its schema,
 * still validates after `normalize`, and is marked unsupported/deprecated exactly where sluice
 * does not implement a field or where Istio deprecated it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lookupKind } from '../../src/api/registry.js';
import type { KindDefinition } from '../../src/api/kind.js';
import { DEPRECATED, UNSUPPORTED } from '../../src/api/schema.js';
import { annotatedPaths, errorsOf, istioFixtureDocs, withChange } from './helpers.js';

const KINDS = [
  'VirtualService',
  'DestinationRule',
  'ServiceEntry',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
];

const docs = istioFixtureDocs()
  .filter((d) => KINDS.includes(String(d.object.kind)))
  .map((d) => {
    const def = lookupKind(String(d.object.apiVersion), String(d.object.kind));
    assert.ok(def, `${d.file}#${d.index}: ${String(d.object.apiVersion)} is not accepted`);
    return { ...d, def, name: `${d.file}#${d.index} ${String(d.object.kind)}` };
  });

/**
 * Documents that do not validate, and why. `crds-serviceentry-valid.yaml` writes an unquoted
 * IPv6 address in a flow sequence (`[1.2.3.4, 001:db8::]`): YAML 1.2 (the `yaml` package, in
 * both its 1.1 and 1.2 modes) reads `001:db8::` as the one-key mapping {"001:db8:": null},
 * while Go's yaml.v2 (what kubectl uses) reads a string. The schema rightly rejects a mapping
 * as an address; the same document with the string Kubernetes sees validates.
 */
const KNOWN_INVALID: Record<
  string,
  { path: string; keyword: string; asKubernetesReadsIt: unknown }
> = {
  'crds-serviceentry-valid.yaml#0 ServiceEntry': {
    path: '/spec/addresses/1',
    keyword: 'type',
    asKubernetesReadsIt: '001:db8::',
  },
};

/** Fields marked unsupported or deprecated in the conformance documents; the rest have none. */
const ANNOTATED: Record<string, { unsupported?: string[]; deprecated?: string[] }> = {
  'crds-destinationrule-valid.yaml#0 DestinationRule': {
    unsupported: ['spec.trafficPolicy.loadBalancer.warmup'],
  },
  'crds-destinationrule-valid.yaml#1 DestinationRule': {
    unsupported: ['spec.trafficPolicy.loadBalancer.warmup'],
  },
  'crds-destinationrule-valid.yaml#2 DestinationRule': {
    unsupported: ['spec.trafficPolicy.loadBalancer.warmup'],
  },
  'crds-destinationrule-valid.yaml#3 DestinationRule': {
    unsupported: ['spec.trafficPolicy.connectionPool.http.http2KeepAlive'],
  },
  'crds-reqauth-valid.yaml#0 RequestAuthentication': {
    unsupported: [
      'spec.targetRefs',
      'spec.jwtRules[0].fromCookies',
      'spec.jwtRules[0].timeout',
      'spec.jwtRules[0].spaceDelimitedClaims',
      'spec.jwtRules[0].presence',
    ],
  },
  'crds-serviceentry-valid.yaml#0 ServiceEntry': {
    unsupported: ['spec.workloadSelector', 'spec.subjectAltNames'],
  },
  'crds-serviceentry-valid.yaml#2 ServiceEntry': { unsupported: ['spec.workloadSelector'] },
  'istioio-authn-policy-9.yaml#0 AuthorizationPolicy': { unsupported: ['spec.targetRef'] },
  'istioio-authz-custom-2.yaml#0 AuthorizationPolicy': {
    unsupported: ['spec.action', 'spec.provider'],
  },
  'legacy-2018-bookinfo-virtual-service-ratings-test-abort.yaml#0 VirtualService': {
    deprecated: ['spec.http[0].fault.abort.percent'],
  },
  'legacy-2018-bookinfo-virtual-service-ratings-test-delay.yaml#0 VirtualService': {
    deprecated: ['spec.http[0].fault.delay.percent'],
  },
  'legacy-2020-testdata-destination-rule-all.yaml#1 DestinationRule': {
    unsupported: ['spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.minimumRingSize'],
    deprecated: ['spec.trafficPolicy.outlierDetection.consecutiveErrors'],
  },
  'samples-multicluster-expose-istiod.yaml#1 VirtualService': { unsupported: ['spec.tls'] },
  'testdata-destination-rule-passthrough.yaml#0 DestinationRule': {
    unsupported: ['spec.trafficPolicy.loadBalancer.simple'],
  },
  'samples-tcp-echo-tcp-echo-20-v2.yaml#0 VirtualService': { unsupported: ['spec.tcp'] },
  'samples-tcp-echo-tcp-echo-all-v1.yaml#2 VirtualService': { unsupported: ['spec.tcp'] },
  'testdata-rule-websocket-route.yaml#2 VirtualService': {
    deprecated: ['spec.http[0].websocketUpgrade'],
  },
  'testdata-rule-websocket-route.yaml#3 VirtualService': {
    deprecated: ['spec.http[0].websocketUpgrade'],
  },
};

function errorText(def: KindDefinition, value: unknown): string {
  return JSON.stringify(errorsOf(def, value).map((e) => `${e.instancePath} ${e.message}`));
}

describe('Istio conformance files', () => {
  it('hold the documents INDEX.md counts, so no file is silently skipped', () => {
    const counts: Record<string, number> = {};
    for (const d of docs) {
      const kind = String(d.object.kind);
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
    assert.deepEqual(counts, {
      VirtualService: 48,
      DestinationRule: 29,
      ServiceEntry: 25,
      PeerAuthentication: 4,
      AuthorizationPolicy: 10,
      RequestAuthentication: 3,
    });
  });

  for (const d of docs) {
    const known = KNOWN_INVALID[d.name];
    if (known) {
      it(`${d.name} fails only where YAML parsers disagree`, () => {
        const errs = errorsOf(d.def, d.object);
        assert.deepEqual(
          errs.map((e) => [e.instancePath, e.keyword]),
          [[known.path, known.keyword]],
        );
        const pointer = known.path.split('/').slice(1);
        const path = pointer.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p));
        const fixed = withChange(d.object, path, known.asKubernetesReadsIt);
        assert.deepEqual(errorsOf(d.def, fixed), [], errorText(d.def, fixed));
      });
      continue;
    }
    it(`${d.name} validates`, () => {
      assert.deepEqual(errorsOf(d.def, d.object), [], errorText(d.def, d.object));
    });
  }

  it('mark unsupported and deprecated fields exactly where expected', () => {
    const actual: typeof ANNOTATED = {};
    for (const d of docs) {
      const unsupported = annotatedPaths(d.def.schema, d.object, UNSUPPORTED);
      const deprecated = annotatedPaths(d.def.schema, d.object, DEPRECATED);
      if (unsupported.length === 0 && deprecated.length === 0) continue;
      actual[d.name] = {
        ...(unsupported.length ? { unsupported } : {}),
        ...(deprecated.length ? { deprecated } : {}),
      };
    }
    assert.deepEqual(actual, ANNOTATED);
  });

  it('normalize to the canonical apiVersion, without deprecated fields, still valid', () => {
    for (const d of docs) {
      if (KNOWN_INVALID[d.name]) continue;
      const before = structuredClone(d.object);
      const out = d.def.normalize
        ? d.def.normalize(d.object, String(d.object.apiVersion))
        : d.object;
      assert.deepEqual(d.object, before, `${d.name}: normalize mutated its input`);
      if (d.def.normalize) assert.equal(out.apiVersion, d.def.canonicalApiVersion, d.name);
      assert.deepEqual(annotatedPaths(d.def.schema, out, DEPRECATED), [], d.name);
      assert.deepEqual(errorsOf(d.def, out), [], `${d.name}: ${errorText(d.def, out)}`);
    }
  });
});
