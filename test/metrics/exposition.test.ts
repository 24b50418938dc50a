import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExposition, parseSampleValue } from '../../src/metrics/exposition.js';
import { StatsRegistry } from '../../src/proxy/stats.js';
import { scopeLabels } from './helpers.js';

describe('exposition parser', () => {
  it('reads the proxy stats registry output exactly (counters and labelled histograms)', () => {
    const stats = new StatsRegistry();
    const a = stats.scope('a', () => scopeLabels({ destination_workload: 'podinfo' }));
    const b = stats.scope('b', () =>
      scopeLabels({ destination_workload: 'odd "name"\\x', reporter: 'source' }),
    );
    for (let i = 0; i < 7; i++) a.record(200, '', 3, 10, 10);
    a.record(503, 'UF,URX', 700, 10, 10);
    b.record(200, '', 0.2, 1, 1);
    const text = stats.exposition();
    const all = parseExposition(text);
    const totals = all.filter((s) => s.name === 'istio_requests_total');
    assert.equal(totals.length, 3);
    const ok = totals.find(
      (s) => s.labels.response_code === '200' && s.labels.reporter === 'destination',
    );
    assert.equal(ok?.value, 7);
    assert.equal(ok?.labels.destination_service, 'podinfo.test.svc.cluster.local');
    assert.equal(ok?.labels.response_flags, '-');
    const failed = totals.find((s) => s.labels.response_code === '503');
    assert.equal(failed?.labels.response_flags, 'UF,URX');
    assert.equal(
      totals.find((s) => s.labels.reporter === 'source')?.labels.destination_workload,
      'odd "name"\\x',
    );
    const buckets = all.filter(
      (s) =>
        s.name === 'istio_request_duration_milliseconds_bucket' &&
        s.labels.response_code === '200' &&
        s.labels.reporter === 'destination',
    );
    assert.equal(buckets.length, 20);
    assert.equal(buckets.find((s) => s.labels.le === '1')?.value, 0);
    assert.equal(buckets.find((s) => s.labels.le === '5')?.value, 7);
    assert.equal(buckets.find((s) => s.labels.le === '+Inf')?.value, 7);
    assert.ok(all.some((s) => s.name === 'sluice_proxy_config_applied_total' && s.value === 0));
  });

  it('skips the label parsing of known series, keyed by their text', () => {
    const text = 'a{x="1"} 1\na{x="2"} 2\n';
    const [first, second] = parseExposition(text, { known: (k) => k === 'a{x="1"}' });
    assert.deepEqual(first, { name: 'a', key: 'a{x="1"}', labels: {}, value: 1 });
    assert.deepEqual(second, { name: 'a', key: 'a{x="2"}', labels: { x: '2' }, value: 2 });
    assert.throws(() => parseExposition('a{x="1"} 1 }'), { code: 'SLUICE_METRICS_BAD_EXPOSITION' });
  });

  it('keeps only the names asked for', () => {
    const stats = new StatsRegistry();
    stats.scope('a', () => scopeLabels()).record(200, '', 3, 10, 10);
    const names = new Set(['istio_requests_total']);
    const got = parseExposition(stats.exposition(), { names });
    assert.deepEqual([...new Set(got.map((s) => s.name))], ['istio_requests_total']);
  });

  it('reads the format details: escapes, spaces, timestamps, special values, CRLF, no final newline', () => {
    const text = [
      '# HELP x a help with "quotes"',
      '# TYPE x counter',
      'x{a="1",b="q\\"uote",c="back\\\\slash",d="new\\nline",} 3 1395066363000',
      '  y   4.5e3',
      'z{ a = "v" } +Inf\r',
      'w -Inf',
      'n NaN',
      'e{} 0',
    ].join('\n');
    const got = parseExposition(text);
    assert.deepEqual(got[0], {
      name: 'x',
      key: 'x{a="1",b="q\\"uote",c="back\\\\slash",d="new\\nline",}',
      labels: { a: '1', b: 'q"uote', c: 'back\\slash', d: 'new\nline' },
      value: 3,
    });
    assert.equal(got[1]?.value, 4500);
    assert.deepEqual(got[2], {
      name: 'z',
      key: 'z{ a = "v" }',
      labels: { a: 'v' },
      value: Infinity,
    });
    assert.equal(got[3]?.value, -Infinity);
    assert.ok(Number.isNaN(got[4]?.value));
    assert.deepEqual(got[5], { name: 'e', key: 'e{}', labels: {}, value: 0 });
    assert.equal(got[1]?.key, 'y');
  });

  const bad: [string, RegExp][] = [
    ['x{a="1"', /line 1: unterminated|line 1: expected/],
    ['x{a=1} 2', /quoted value/],
    ['x{a="1",a="2"} 2', /duplicate label a/],
    ['x{a="\\q"} 2', /invalid escape/],
    ['x 12abc', /number value/],
    ['x', /space before the value/],
    ['ok 1\n9x 1', /line 2: expected a metric name/],
    ['x 1 2 3', /after the value/],
    ['x 1 notatime', /after the value/],
    ['<html>', /metric name/],
  ];
  for (const [text, why] of bad)
    it(`rejects ${JSON.stringify(text)} with a coded error naming the line`, () => {
      assert.throws(
        () => parseExposition(text),
        (err: { code?: string; message: string }) =>
          err.code === 'SLUICE_METRICS_BAD_EXPOSITION' && why.test(err.message),
      );
    });

  it('parses values as Prometheus does', () => {
    assert.equal(parseSampleValue('1'), 1);
    assert.equal(parseSampleValue('-0.5'), -0.5);
    assert.equal(parseSampleValue('.5'), 0.5);
    assert.equal(parseSampleValue('1e-3'), 0.001);
    assert.equal(parseSampleValue('inf'), Infinity);
    assert.equal(parseSampleValue(''), undefined);
    assert.equal(parseSampleValue('0x10'), undefined);
  });
});
