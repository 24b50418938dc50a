/**
 * Request and response head parsing (src/proxy/http1/head.ts): the table of what is accepted
 * with which fields, and what is refused with which status. Refusals cover the request
 * smuggling vectors of RFC 9112 (bare CR or LF, NUL, obs-fold, whitespace before the colon,
 * conflicting framing).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_LENGTH,
  BODY_NONE,
  HeadError,
  parseRequestHead,
  parseResponseHead,
} from '../../../src/proxy/http1/head.js';

/** Parses `head` (without its final blank line) as the proxy does from a buffer. */
function request(head: string) {
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  return parseRequestHead(buf, 0, buf.length - 4);
}

function response(head: string, headRequest = false) {
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  return parseResponseHead(buf, 0, buf.length - 4, headRequest);
}

function refusal(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof HeadError, String(e));
    return e.status;
  }
  return 0;
}

test('request heads: fields, values without OWS, framing', () => {
  const h = request(
    'POST /p?q=1 HTTP/1.1\r\nHost: a\r\nX-Pad: \t v  w \t\r\nX-Empty:\r\nContent-Length: 5',
  );
  assert.equal(h.method, 'POST');
  assert.equal(h.target, '/p?q=1');
  assert.deepEqual(h.names, ['host', 'x-pad', 'x-empty', 'content-length']);
  assert.deepEqual(h.values, ['a', 'v  w', '', '5']);
  assert.equal(h.bodyKind, BODY_LENGTH);
  assert.equal(h.contentLength, 5);
  assert.equal(h.keepAlive, true);
  // obs-text (0x80-0xFF) is field content: a trailing NBSP is kept, only SP and HTAB are OWS.
  assert.deepEqual(request('GET / HTTP/1.1\r\nx: caf\xe9\xa0').values, ['caf\xe9\xa0']);
  const c = request('PUT / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close');
  assert.equal(c.bodyKind, BODY_CHUNKED);
  assert.equal(c.keepAlive, false);
  const old = request('GET / HTTP/1.0\r\nconnection: keep-alive, x-hop');
  assert.equal(old.keepAlive, true);
  assert.deepEqual(old.hopByHop, ['x-hop']);
  assert.equal(request('GET / HTTP/1.1\r\nhost: a').bodyKind, BODY_NONE);
  // Connection values naming only close/keep-alive/upgrade list no hop-by-hop header.
  for (const v of ['Keep-Alive', 'close', 'Upgrade', ' close ']) {
    assert.equal(request(`GET / HTTP/1.1\r\nconnection: ${v}`).hopByHop, null, v);
  }
  assert.equal(request('GET / HTTP/1.1\r\nconnection: Close').keepAlive, false);
  assert.deepEqual(request('GET / HTTP/1.1\r\nconnection: close, X-A').hopByHop, ['x-a']);
});

test('request heads refused, with their status', () => {
  const cases: [string, number][] = [
    ['GET / HTTP/1.1\nhost: a', 400], // bare LF ending the request line
    ['GET / HTTP/1.1\r\nhost: a\nx: y', 400], // bare LF between fields
    ['GET / HTTP/1.1\r\nhost: a\rx: y', 400], // bare CR
    ['GET / HTTP/1.1\r\nhost: a\r', 400], // CR at the very end
    ['GET / HTTP/1.1\r\nx: a\0b', 400], // NUL in a value
    ['GET / HTTP/1.1\r\nhost : a', 400], // whitespace before the colon
    ['GET / HTTP/1.1\r\nhost: a\r\n folded', 400], // obs-fold
    ['GET / HTTP/1.1\r\nno colon', 400],
    ['GET / HTTP/1.1\r\nbad[name]: v', 400],
    ['GET / HTTP/1.1\r\n: empty name', 400],
    ['GET / HTTP/1.1\r\nn\xe4me: v', 400], // obs-text is not a token character
    ['G@T / HTTP/1.1', 400],
    ['GET  / HTTP/1.1', 400],
    ['GET / x HTTP/1.1', 400],
    ['GET / HTTP/2.0', 505],
    ['GET / FTP/1.1', 400],
    ['POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4', 400],
    ['POST / HTTP/1.1\r\ncontent-length: -1', 400],
    ['POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked', 400],
    ['POST / HTTP/1.1\r\ntransfer-encoding: gzip', 501],
    ['POST / HTTP/1.0\r\ntransfer-encoding: chunked', 400],
  ];
  for (const [head, want] of cases)
    assert.equal(
      refusal(() => request(head)),
      want,
      head,
    );
});

test('response heads: status, framing by status, method and headers', () => {
  const r = response('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A:  b ');
  assert.equal(r.status, 200);
  assert.equal(r.reason, 'OK');
  assert.deepEqual(r.values, ['3', 'b']);
  assert.equal(r.bodyKind, BODY_LENGTH);
  assert.equal(response('HTTP/1.1 204 No Content\r\ncontent-length: 3').bodyKind, BODY_NONE);
  assert.equal(response('HTTP/1.1 200 OK\r\ncontent-length: 3', true).bodyKind, BODY_NONE);
  assert.equal(
    response('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked').bodyKind,
    BODY_CHUNKED,
  );
  const close = response('HTTP/1.1 200 OK');
  assert.equal(close.bodyKind, BODY_CLOSE);
  assert.equal(close.keepAlive, false);
  assert.equal(response('HTTP/1.1 200').reason, '');
});

test('response heads refused with 502', () => {
  for (const head of [
    'HTTP/1.1 200 OK\nx: y',
    'HTTP/1.1 200 OK\r\nx: a\rb',
    'HTTP/1.1 200 OK\r\nx: a\0',
    'HTTP/1.1 20 OK',
    'HTTP/2 200 OK',
    'garbage',
    'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2',
  ]) {
    assert.equal(
      refusal(() => response(head)),
      502,
      head,
    );
  }
});
