/**
 * Upstream connections read into a buffer they reuse from read to read
 * (src/proxy/upstream/read-buffer.ts). These tests make the downstream side queue what it is
 * given (a client that stops reading), so a reused buffer would corrupt the bytes still
 * queued: the client checks every byte of a large random body.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { bootstrap, cluster, config, startProxy, upstream, withCleanup } from './helpers.js';

const BODY = randomBytes(24 * 1024 * 1024);
const DIGEST = createHash('sha256').update(BODY).digest('hex');

/**
 * An upstream that streams BODY honouring backpressure; `sent` counts. `piece` bytes per
 * write: 64 KiB writes arrive as full reads; 1 KiB writes a turn of the event loop apart
 * arrive as many small reads, so the proxy queues several of them downstream before its
 * socket reports backpressure.
 */
async function bodyUpstream(chunked: boolean, piece: number) {
  const progress = { sent: 0 };
  const up = await upstream('big', (_req, res) => {
    res.writeHead(200, chunked ? {} : { 'content-length': String(BODY.length) });
    const step = (): void => {
      while (progress.sent < BODY.length) {
        const end = Math.min(progress.sent + piece, BODY.length);
        const ok = res.write(BODY.subarray(progress.sent, end));
        progress.sent = end;
        if (!ok) {
          res.once('drain', step);
          return;
        }
        if (piece < 64 * 1024) {
          setImmediate(step);
          return;
        }
      }
      res.end();
    };
    step();
  });
  return { up, progress };
}

/** Resolves once `progress.sent` has not moved for five looks 20 ms apart (or all was sent). */
async function stalled(progress: { sent: number }): Promise<boolean> {
  let last = -1;
  let still = 0;
  while (still < 5) {
    await new Promise((r) => setTimeout(r, 20));
    if (progress.sent === BODY.length) return false;
    still = progress.sent === last ? still + 1 : 0;
    last = progress.sent;
  }
  return true;
}

for (const [chunked, piece] of [
  [false, 64 * 1024],
  [true, 64 * 1024],
  [false, 1024],
] as const) {
  const kind = `${chunked ? 'chunked' : 'content-length'} body in ${piece / 1024} KiB writes`;
  test(`a ${kind}, read slowly over HTTP/1.1, arrives intact`, () =>
    withCleanup(async (defer) => {
      const { up, progress } = await bodyUpstream(chunked, piece);
      defer(() => up.close());
      const { proxy, port } = await startProxy(
        bootstrap(config([{ route: [{ cluster: 'big' }] }], [cluster('big', [up.port])])),
      );
      defer(() => proxy.stop());
      const result = await new Promise<{ digest: string; backpressure: boolean }>(
        (resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
            const hash = createHash('sha256');
            res.pause();
            // Not reading: the proxy's writes queue, then it stops reading the upstream.
            stalled(progress).then((backpressure) => {
              res.on('data', (c: Buffer) => hash.update(c));
              res.on('end', () => resolve({ digest: hash.digest('hex'), backpressure }));
              res.resume();
            }, reject);
          });
          req.on('error', reject);
          req.end();
        },
      );
      assert.equal(result.backpressure, true, 'the upstream was held back while the client waited');
      assert.equal(result.digest, DIGEST);
    }));
}

test('a body read slowly over HTTP/2 (h2c) arrives intact', () =>
  withCleanup(async (defer) => {
    const { up, progress } = await bodyUpstream(false, 64 * 1024);
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'big' }] }], [cluster('big', [up.port])])),
    );
    defer(() => proxy.stop());
    const session = http2.connect(`http://127.0.0.1:${port}`);
    defer(() => session.close());
    const digest = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/', ':authority': 'big.default' });
      stream.on('error', reject);
      stream.on('response', () => {
        const hash = createHash('sha256');
        stream.pause();
        stalled(progress).then(() => {
          stream.on('data', (c: Buffer) => hash.update(c));
          stream.on('end', () => resolve(hash.digest('hex')));
          stream.resume();
        }, reject);
      });
      stream.end();
    });
    assert.equal(digest, DIGEST);
  }));

test('a pipelining client that stops reading holds the proxy back; every answer then arrives intact and in order', () =>
  withCleanup(async (defer) => {
    // 8 KiB answers, each head and body coalesced into one write, each different.
    const bodyFor = (n: number) => Buffer.alloc(8 * 1024, `answer ${n};`);
    let served = 0;
    const up = await upstream('pipe', (req, res) => {
      served++;
      res.end(bodyFor(Number(req.url?.slice(1))));
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'pipe' }] }], [cluster('pipe', [up.port])])),
    );
    defer(() => proxy.stop());
    const N = 2000; // 16 MiB of answers: more than the socket buffers between us take
    const socket = net.connect(port, '127.0.0.1');
    defer(() => socket.destroy());
    socket.pause();
    let out = '';
    for (let i = 0; i < N; i++) out += `GET /${i} HTTP/1.1\r\nhost: pipe\r\n\r\n`;
    socket.write(out);
    // Not reading: the proxy stops taking requests once its socket holds what it wrote.
    let last = -1;
    let still = 0;
    while (still < 5 && served < N) {
      await new Promise((r) => setTimeout(r, 20));
      still = served === last ? still + 1 : 0;
      last = served;
    }
    assert.ok(
      served < N,
      `the upstream got ${served} of ${N} requests while the client read nothing`,
    );
    // Reading: every answer, in order, byte for byte.
    const chunks: Buffer[] = [];
    let total = 0;
    const one = 8 * 1024;
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        total += d.length;
        // Heads are ~100 bytes; all N bodies in means we can stop and parse.
        if (total >= N * (one + 60)) {
          const all = Buffer.concat(chunks).toString('latin1');
          if ((all.match(/HTTP\/1\.1 200/g) ?? []).length === N) resolve();
        }
      });
      socket.on('error', reject);
      socket.resume();
    });
    const all = Buffer.concat(chunks).toString('latin1');
    const bodies = all.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).slice(1);
    assert.equal(bodies.length, N);
    for (let i = 0; i < N; i++) {
      assert.ok(bodies[i] === bodyFor(i).toString('latin1'), `answer ${i} differs`);
    }
  }));

test('shutdown does not wait for a client that stops reading its answers', () =>
  withCleanup(async (defer) => {
    let served = 0;
    const up = await upstream('pipe', (_req, res) => {
      served++;
      res.end(Buffer.alloc(8 * 1024, 'x'));
    });
    defer(() => up.close());
    const { proxy, port } = await startProxy(
      bootstrap(config([{ route: [{ cluster: 'pipe' }] }], [cluster('pipe', [up.port])])),
    );
    defer(() => proxy.stop());
    const socket = net.connect(port, '127.0.0.1');
    defer(() => socket.destroy());
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nhost: pipe\r\n\r\n'.repeat(2000));
    let last = -1;
    let still = 0;
    while (still < 5) {
      await new Promise((r) => setTimeout(r, 20));
      still = served === last ? still + 1 : 0;
      last = served;
    }
    // SIGTERM: a clean exit (0), not the helper's SIGKILL after 5 s.
    assert.equal(await proxy.stop(), 0);
  }));
