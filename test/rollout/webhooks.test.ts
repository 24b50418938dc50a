import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { CanaryWebhook } from '../../src/api/flagger/canary.js';
import { LoadGenerator } from '../../src/rollout/loadtest.js';
import { WebhookCaller } from '../../src/rollout/webhooks.js';
import { startServer, waitFor, type TestServer } from './support.js';

const ctx = { name: 'podinfo', namespace: 'test', checksum: 'abc123', intervalMs: 1000 };

describe('webhooks over HTTP', () => {
  let server: TestServer;
  let flaky = 0;
  const caller = new WebhookCaller({ retryBackoffMs: 5 });

  before(async () => {
    server = await startServer((req, res) => {
      const path = req.url;
      if (path === '/ok') return void res.end('fine');
      if (path === '/accepted') return void res.writeHead(202).end();
      if (path === '/deny') return void res.writeHead(403).end('not approved\nsecond line');
      if (path === '/203') return void res.writeHead(203).end('non-authoritative');
      if (path === '/down') return void res.writeHead(503).end('busy');
      if (path === '/flaky') return void (++flaky < 3 ? res.writeHead(500).end() : res.end('ok'));
      if (path === '/hang') return; // never answers
      res.writeHead(404).end();
    });
  });
  after(async () => {
    await caller.close();
    await server.close();
  });

  const hook = (path: string, extra: Partial<CanaryWebhook> = {}): CanaryWebhook => ({
    name: `hook${path.replace(/\//g, '-')}`,
    url: `${server.url}${path}`,
    ...extra,
  });

  it('posts Flagger’s payload as JSON and passes on 200', async () => {
    const before = server.received.length;
    const out = await caller.call(
      hook('/ok', { type: 'confirm-rollout', metadata: { team: 'a' } }),
      'Progressing',
      ctx,
    );
    assert.deepEqual(out, {
      name: 'hook-ok',
      ok: true,
      url: `${server.url}/ok`,
      status: 200,
      message: '200',
    });
    const req = server.received[before]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req.body), {
      name: 'podinfo',
      namespace: 'test',
      phase: 'Progressing',
      checksum: 'abc123',
      type: 'confirm-rollout',
      metadata: { team: 'a' },
    });
  });

  it('202 passes, 203 and 403 fail with the status and the body’s first line', async () => {
    assert.equal((await caller.call(hook('/accepted'), 'Progressing', ctx)).ok, true);
    const r203 = await caller.call(hook('/203'), 'Progressing', ctx);
    assert.equal(r203.ok, false);
    assert.equal(r203.status, 203);
    const deny = await caller.call(hook('/deny'), 'Progressing', ctx);
    assert.equal(deny.ok, false);
    assert.equal(deny.message, 'SLUICE_ROLLOUT_WEBHOOK_REJECTED: HTTP 403: not approved');
  });

  it('retries 5xx up to `retries` times and succeeds when the hook recovers', async () => {
    flaky = 0;
    const n = server.received.length;
    const out = await caller.call(hook('/flaky', { retries: 3 }), 'Progressing', ctx);
    assert.equal(out.ok, true);
    assert.equal(server.received.length - n, 3);
  });

  it('gives up after the retries, and does not retry a 4xx', async () => {
    let n = server.received.length;
    const down = await caller.call(hook('/down', { retries: 2 }), 'Progressing', ctx);
    assert.equal(down.ok, false);
    assert.equal(server.received.length - n, 3);
    n = server.received.length;
    await caller.call(hook('/deny', { retries: 2 }), 'Progressing', ctx);
    assert.equal(server.received.length - n, 1);
  });

  it('times out a hook that never answers', async () => {
    const out = await caller.call(hook('/hang', { timeout: '150ms' }), 'Progressing', ctx);
    assert.equal(out.ok, false);
    assert.match(out.message, /^SLUICE_ROLLOUT_WEBHOOK_TIMEOUT: .* no answer within 150ms/);
  });

  it('reports a refused connection as unreachable', async () => {
    const gone = await startServer(() => {});
    const url = gone.url;
    await gone.close();
    const out = await caller.call({ name: 'gone', url: `${url}/x` }, 'Progressing', ctx);
    assert.equal(out.ok, false);
    assert.match(out.message, /^SLUICE_ROLLOUT_WEBHOOK_UNREACHABLE: .*ECONNREFUSED/);
  });

  it('reports a malformed HTTP response as unreachable, without throwing', async () => {
    const sockets = new Set<Socket>();
    const tcp: TcpServer = createTcpServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.end('HELLO THIS IS NOT HTTP\r\n\r\n');
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    try {
      const port = (tcp.address() as AddressInfo).port;
      const out = await caller.call(
        { name: 'garbage', url: `http://127.0.0.1:${port}/` },
        'Progressing',
        ctx,
      );
      assert.equal(out.ok, false);
      assert.match(out.message, /^SLUICE_ROLLOUT_WEBHOOK_UNREACHABLE: .*does not match the HTTP/);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  it('refuses a URL that is not http(s)', async () => {
    const out = await caller.call({ name: 'ftp', url: 'ftp://example.test/' }, 'Progressing', ctx);
    assert.match(out.message, /^SLUICE_ROLLOUT_WEBHOOK_URL/);
  });

  it('runs the webhooks of one type in order (no type and "" are rollout)', async () => {
    const hooks: CanaryWebhook[] = [
      hook('/ok', { name: 'a' }),
      hook('/deny', { name: 'b', type: '' }),
      hook('/ok', { name: 'c', type: 'pre-rollout' }),
    ];
    const out = await caller.runType(hooks, 'rollout', 'Progressing', ctx);
    assert.deepEqual(
      out.map((o) => [o.name, o.ok]),
      [
        ['a', true],
        ['b', false],
      ],
    );
  });

  it('event metadata wins over the hook’s own metadata', async () => {
    const n = server.received.length;
    await caller.call(
      hook('/ok', { type: 'event', metadata: { eventType: 'mine', extra: 'x' } }),
      'Failed',
      ctx,
      { eventMessage: 'Canary failed!', eventType: 'Warning', timestamp: '1' },
    );
    assert.deepEqual(JSON.parse(server.received[n]!.body).metadata, {
      eventMessage: 'Canary failed!',
      eventType: 'Warning',
      timestamp: '1',
      extra: 'x',
    });
  });
});

describe('the load generator as a webhook', () => {
  let target: TestServer;
  const gen = new LoadGenerator();
  const caller = new WebhookCaller({ loadGenerator: gen });
  before(async () => {
    target = await startServer((_req, res) => res.end('hi'));
  });
  after(async () => {
    await gen.close();
    await target.close();
  });

  it('starts a load with the metadata, once, and sends it to the target', async () => {
    const hook: CanaryWebhook = {
      name: 'load',
      url: 'sluice://load-generator',
      metadata: {
        url: `${target.url}/canary`,
        rate: '50',
        duration: '2s',
        headers: '{"x-canary": "insider"}',
      },
    };
    const first = await caller.call(hook, 'Progressing', ctx);
    assert.equal(first.ok, true);
    assert.match(first.message, /load started: 50\/s for 2000ms/);
    const again = await caller.call(hook, 'Progressing', ctx);
    assert.match(again.message, /already running/);
    await waitFor(() => target.received.length >= 10, 5000, '10 requests');
    assert.equal(target.received[0]!.url, '/canary');
    assert.equal(target.received[0]!.headers['x-canary'], 'insider');
    assert.equal(target.received[0]!.method, 'GET');
  });

  it('fails the webhook (it does not throw) on bad metadata or a command', async () => {
    const bad = await caller.call(
      { name: 'load', url: 'sluice://loadtest', metadata: { cmd: 'curl http://x/' } },
      'Progressing',
      ctx,
    );
    assert.equal(bad.ok, false);
    assert.match(bad.message, /^SLUICE_ROLLOUT_LOADTEST_INVALID: .*only hey commands/);
    const none = await new WebhookCaller().call(
      { name: 'load', url: 'sluice://load-generator', metadata: { url: target.url } },
      'Progressing',
      ctx,
    );
    assert.match(none.message, /no load generator is configured/);
  });
});
