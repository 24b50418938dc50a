/**
 * The provider contract, run against every backend (memory and builtin in
 * provider.test.ts, prometheus in prometheus.test.ts): a fixture names a query with a
 * known value, one with no data, one that fails, and the provider's clock.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { MetricProvider } from '../../src/metrics/provider.js';

export interface ContractFixture {
  provider: () => MetricProvider;
  now: () => number;
  valued: { query: string; value: number; tolerance: number };
  noData: string;
  failing: { query: string; code: string };
}

export function providerContract(name: string, fx: () => ContractFixture): void {
  it(`${name}: a query with data is ok with its value, the query and the time`, async () => {
    const f = fx();
    const before = f.now();
    const m = await f.provider().query(f.valued.query);
    assert.equal(m.phase, 'ok', JSON.stringify(m));
    assert.ok(
      Math.abs((m.value as number) - f.valued.value) <= f.valued.tolerance,
      `${m.value} vs ${f.valued.value}`,
    );
    assert.equal(m.query, f.valued.query);
    assert.ok(m.at >= before && m.at <= f.now());
    assert.equal(m.error, undefined);
  });
  it(`${name}: a query without series is no-data, not zero`, async () => {
    const f = fx();
    const m = await f.provider().query(f.noData);
    assert.equal(m.phase, 'no-data', JSON.stringify(m));
    assert.equal(m.value, undefined);
  });
  it(`${name}: a failing query resolves to an error measurement with a code`, async () => {
    const f = fx();
    const m = await f.provider().query(f.failing.query);
    assert.equal(m.phase, 'error', JSON.stringify(m));
    assert.equal(m.error?.code, f.failing.code);
    assert.ok((m.error?.message.length ?? 0) > 0);
    assert.equal(m.value, undefined);
  });
  it(`${name}: check() answers reachable`, async () => {
    assert.deepEqual(await fx().provider().check(), { ok: true });
  });
}
