/** Whole-schema checks of the Istio kinds: registry entries and annotation hygiene. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXCLUSIVE } from '../../src/api/networking/common.js';
import { NETWORKING_VERSIONS, SECURITY_VERSIONS } from '../../src/api/networking/versions.js';
import { lookupKind } from '../../src/api/registry.js';
import { DEPRECATED, UNSUPPORTED } from '../../src/api/schema.js';
import { schemaNodes } from './helpers.js';

const ISTIO: [string, readonly string[]][] = [
  ['VirtualService', NETWORKING_VERSIONS],
  ['DestinationRule', NETWORKING_VERSIONS],
  ['ServiceEntry', NETWORKING_VERSIONS],
  ['PeerAuthentication', SECURITY_VERSIONS],
  ['AuthorizationPolicy', SECURITY_VERSIONS],
  ['RequestAuthentication', SECURITY_VERSIONS],
];

describe('Istio kinds', () => {
  for (const [kind, versions] of ISTIO) {
    it(`${kind} is registered under ${versions.join(', ')}`, () => {
      for (const v of versions) assert.equal(lookupKind(v, kind)?.kind, kind, v);
      assert.equal(lookupKind('networking.istio.io/v1alpha2', kind), undefined);
      const def = lookupKind(versions[0] as string, kind);
      assert.equal(def?.canonicalApiVersion, versions[0]);
      assert.equal(def?.namespaced, true);
    });

    it(`${kind} annotations give a reason, and only one annotation per field`, () => {
      const def = lookupKind(versions[0] as string, kind);
      let annotated = 0;
      for (const [at, node] of schemaNodes(def?.schema)) {
        const u = node[UNSUPPORTED];
        const d = node[DEPRECATED];
        if (u !== undefined)
          assert.ok(typeof u === 'string' && u.length > 10, `${at}: ${String(u)}`);
        if (d !== undefined)
          assert.ok(typeof d === 'string' && d.length > 3, `${at}: ${String(d)}`);
        assert.ok(u === undefined || d === undefined, `${at} is both unsupported and deprecated`);
        if (u !== undefined || d !== undefined) annotated++;
      }
      assert.ok(annotated > 0, 'every Istio kind has fields sluice does not implement');
    });

    it(`${kind} exclusive groups name fields of their object`, () => {
      const def = lookupKind(versions[0] as string, kind);
      let checked = 0;
      for (const [at, node] of schemaNodes(def?.schema)) {
        const groups: unknown[] = [];
        if (node[EXCLUSIVE]) groups.push(node[EXCLUSIVE]);
        for (const sub of (node.allOf as Record<string, unknown>[] | undefined) ?? []) {
          if (sub[EXCLUSIVE]) groups.push(sub[EXCLUSIVE]);
        }
        if (groups.length === 0 || at.endsWith('/allOf/0') || at.endsWith('/allOf/1')) continue;
        const props = Object.keys((node.properties as object | undefined) ?? {});
        for (const g of groups as string[][]) {
          for (const f of g) {
            assert.ok(props.includes(f), `${at}: ${f} is not a field (${props.join(', ')})`);
          }
          checked++;
        }
      }
      const hasExclusiveGroups = kind !== 'ServiceEntry' && kind !== 'PeerAuthentication';
      assert.equal(checked > 0, hasExclusiveGroups, `${checked} groups checked`);
    });
  }
});
