import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceEntryKind as def } from '../../src/api/networking/service-entry.js';
import { describeErrors, errorsOf, rejectsAt, withChange, type InvalidCase } from './helpers.js';

/** A ServiceEntry using every supported field. */
const base = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'ServiceEntry',
  metadata: { name: 'payments', namespace: 'shop' },
  spec: {
    hosts: ['payments.example.com'],
    addresses: ['10.1.2.3', '192.168.0.0/16'],
    ports: [
      { number: 443, name: 'https', protocol: 'HTTPS' },
      { number: 80, name: 'http', protocol: 'http', targetPort: 8080 },
    ],
    location: 'MESH_EXTERNAL',
    resolution: 'STATIC',
    endpoints: [
      { address: '127.0.0.2', ports: { http: 7072 }, labels: { version: 'v1' } },
      { address: '127.0.0.3' },
    ],
    exportTo: ['.', 'billing'],
  },
};

const cases: InvalidCase[] = [
  {
    name: 'an entry without hosts',
    path: ['spec', 'hosts'],
    value: undefined,
    at: '/spec',
    keyword: 'required',
  },
  {
    name: 'an empty hosts list',
    path: ['spec', 'hosts'],
    value: [],
    at: '/spec/hosts',
    keyword: 'minItems',
  },
  {
    name: 'an empty host',
    path: ['spec', 'hosts', 0],
    value: '',
    at: '/spec/hosts/0',
    keyword: 'minLength',
  },
  {
    name: 'an address longer than 64 characters',
    path: ['spec', 'addresses', 0],
    value: 'a'.repeat(65),
    at: '/spec/addresses/0',
    keyword: 'maxLength',
  },
  {
    name: 'an address that is a mapping',
    path: ['spec', 'addresses', 1],
    value: { '001:db8:': null },
    at: '/spec/addresses/1',
    keyword: 'type',
  },
  {
    name: 'a port without name',
    path: ['spec', 'ports', 0, 'name'],
    value: undefined,
    at: '/spec/ports/0',
    keyword: 'required',
  },
  {
    name: 'a port number 0',
    path: ['spec', 'ports', 0, 'number'],
    value: 0,
    at: '/spec/ports/0/number',
    keyword: 'minimum',
  },
  {
    name: 'a targetPort over 65535',
    path: ['spec', 'ports', 1, 'targetPort'],
    value: 65536,
    at: '/spec/ports/1/targetPort',
    keyword: 'maximum',
  },
  {
    name: 'a port field Istio does not have',
    path: ['spec', 'ports', 0, 'port'],
    value: 443,
    at: '/spec/ports/0',
    keyword: 'additionalProperties',
  },
  {
    name: 'an unknown location',
    path: ['spec', 'location'],
    value: 'OUTSIDE',
    at: '/spec/location',
    keyword: 'anyOf',
  },
  {
    name: 'an unknown resolution',
    path: ['spec', 'resolution'],
    value: 'MAGIC',
    at: '/spec/resolution',
    keyword: 'anyOf',
  },
  {
    name: 'an endpoint field typo',
    path: ['spec', 'endpoints', 0, 'adress'],
    value: '1.2.3.4',
    at: '/spec/endpoints/0',
    keyword: 'additionalProperties',
  },
  {
    name: 'an endpoint port given as a string',
    path: ['spec', 'endpoints', 0, 'ports', 'http'],
    value: '7072',
    at: '/spec/endpoints/0/ports/http',
    keyword: 'type',
  },
  {
    name: 'an endpoint port name that is not a DNS label',
    path: ['spec', 'endpoints', 0, 'ports', 'my_port'],
    value: 80,
    at: '/spec/endpoints/0/ports',
    keyword: 'additionalProperties',
  },
  {
    name: 'an endpoint port over 65535',
    path: ['spec', 'endpoints', 0, 'ports', 'http'],
    value: 70000,
    at: '/spec/endpoints/0/ports/http',
    keyword: 'maximum',
  },
  {
    name: 'an endpoint label that is a number',
    path: ['spec', 'endpoints', 0, 'labels', 'version'],
    value: 2,
    at: '/spec/endpoints/0/labels/version',
    keyword: 'type',
  },
  {
    name: 'a negative endpoint weight',
    path: ['spec', 'endpoints', 1, 'weight'],
    value: -1,
    at: '/spec/endpoints/1/weight',
    keyword: 'minimum',
  },
  {
    name: 'a workloadSelector with matchLabels (networking uses labels)',
    path: ['spec', 'workloadSelector'],
    value: { matchLabels: { app: 'a' } },
    at: '/spec/workloadSelector',
    keyword: 'additionalProperties',
  },
];

describe('ServiceEntry schema', () => {
  it('accepts an entry using every supported field', () => {
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

  it('has no deprecated forms, so no normalize', () => {
    assert.equal(def.normalize, undefined);
    assert.equal(def.canonicalApiVersion, 'networking.istio.io/v1');
  });
});
