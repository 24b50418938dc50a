import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LoadGenerator, isLoadGeneratorUrl, parseLoadSpec } from '../../src/rollout/loadtest.js';
import { FakeClock, startServer, waitFor, type TestServer } from './support.js';

describe('load spec', () => {
  const d = { durationMs: 60_000 };
  it('has defaults and reads every field', () => {
    assert.deepEqual(parseLoadSpec({ url: 'http://podinfo-canary:9898/' }, d), {
      url: 'http://podinfo-canary:9898/',
      rate: 10,
      durationMs: 60_000,
      method: 'GET',
      headers: {},
      timeoutMs: 5000,
    });
    assert.deepEqual(
      parseLoadSpec(
        {
          url: 'https://x.test/api',
          rate: '2.5',
          duration: '30s',
          method: 'post',
          headers: 'X-A: 1\nx-b: two: three',
          body: '{}',
          timeout: '1s',
        },
        d,
      ),
      {
        url: 'https://x.test/api',
        rate: 2.5,
        durationMs: 30_000,
        method: 'POST',
        headers: { 'X-A': '1', 'x-b': 'two: three' },
        body: '{}',
        timeoutMs: 1000,
      },
    );
  });

  it('reads Flagger loadtester hey commands for their flags, never running them', () => {
    assert.deepEqual(
      parseLoadSpec(
        {
          cmd: `hey -z 1m -q 10 -c 2 -H "Cookie: canary=always" -m POST http://podinfo-canary.test:9898/`,
        },
        d,
      ),
      {
        url: 'http://podinfo-canary.test:9898/',
        rate: 20,
        durationMs: 60_000,
        method: 'POST',
        headers: { Cookie: 'canary=always' },
        timeoutMs: 5000,
      },
    );
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{}, /url is required/],
    [{ url: 'not a url' }, /is not a URL/],
    [{ url: 'file:///etc/passwd' }, /not http\(s\)/],
    [{ url: 'http://x/', rate: '0' }, /rate "0"/],
    [{ url: 'http://x/', rate: '5000' }, /rate "5000"/],
    [{ url: 'http://x/', rate: 'fast' }, /rate "fast"/],
    [{ url: 'http://x/', duration: 'forever' }, /duration "forever"/],
    [{ url: 'http://x/', timeout: '-1s' }, /timeout/],
    [{ url: 'http://x/', method: 'GET /x' }, /method/],
    [{ url: 'http://x/', headers: '{"a": 1}' }, /header a must be a string/],
    [{ url: 'http://x/', headers: '{nope' }, /not valid JSON/],
    [{ url: 'http://x/', headers: 'no colon' }, /is not "Name: value"/],
    [{ cmd: 'bash -c "rm -rf /"' }, /only hey commands/],
    [{ cmd: 'hey -z' }, /-z needs a value/],
  ];
  for (const [md, re] of bad) {
    it(`refuses ${JSON.stringify(md)}`, () => {
      assert.throws(
        () => parseLoadSpec(md, d),
        (e: Error & { code?: string }) =>
          e.code === 'SLUICE_ROLLOUT_LOADTEST_INVALID' && re.test(e.message),
      );
    });
  }

  it('knows its webhook URLs', () => {
    assert.ok(isLoadGeneratorUrl('sluice://load-generator'));
    assert.ok(isLoadGeneratorUrl('sluice://loadtest/'));
    assert.ok(!isLoadGeneratorUrl('http://flagger-loadtester.test/'));
  });
});

describe('load generator pacing (fake clock, real sockets)', () => {
  let ok: TestServer;
  let hang: TestServer;
  before(async () => {
    ok = await startServer((_r, res) => res.end('ok'));
    hang = await startServer(() => {});
  });
  after(async () => {
    await ok.close();
    await hang.close();
  });

  it('sends exactly rate × duration requests, then stops', async () => {
    const clock = new FakeClock();
    const gen = new LoadGenerator({ clock });
    gen.start(
      'k',
      parseLoadSpec({ url: `${ok.url}/`, rate: '10', duration: '1s' }, { durationMs: 0 }),
    );
    for (let i = 0; i < 12; i++) clock.advance(100);
    assert.equal(gen.stats('k')?.sent, 10);
    assert.equal(gen.stats('k')?.running, false);
    assert.equal(clock.pending, 0);
    await waitFor(() => ok.received.length >= 10, 5000, '10 requests');
    await gen.close();
    assert.equal(gen.stats('k')?.byStatus[200], 10);
    assert.equal(ok.received.length, 10);
  });

  it('drops requests beyond the in-flight cap instead of queueing them', async () => {
    const clock = new FakeClock();
    const gen = new LoadGenerator({ clock, maxInFlight: 3 });
    gen.start(
      'k',
      parseLoadSpec(
        { url: `${hang.url}/`, rate: '10', duration: '1s', timeout: '200ms' },
        { durationMs: 0 },
      ),
    );
    clock.advance(1000);
    const s = gen.stats('k')!;
    assert.equal(s.sent, 3);
    assert.equal(s.dropped, 7);
    await gen.close();
    assert.equal(gen.stats('k')?.errors, 3);
  });

  it('replaces a changed load and keeps a running identical one', () => {
    const clock = new FakeClock();
    const gen = new LoadGenerator({ clock });
    const a = parseLoadSpec({ url: `${ok.url}/a`, duration: '1m' }, { durationMs: 0 });
    const b = parseLoadSpec({ url: `${ok.url}/b`, duration: '1m' }, { durationMs: 0 });
    assert.equal(gen.start('k', a), true);
    assert.equal(gen.start('k', a), false);
    assert.equal(gen.start('k', b), true);
    gen.stop('k');
    assert.equal(gen.stats('k')?.running, false);
    assert.equal(clock.pending, 0);
    return gen.close();
  });
});
