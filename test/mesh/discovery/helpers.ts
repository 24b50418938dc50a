/**
 * Test helpers for discovery: real `sluice proxy` processes on OS-chosen ports, raw HTTP/2
 * discovery streams (to play a misbehaving or foreign proxy), bounded polling.
 */
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import type { ProxyBootstrap } from '../../../src/api/proxy-config.js';
import { DISCOVERY_PATH } from '../../../src/api/proxy-config.js';
import { runProxyProcess, type ProxyProcess } from '../../support/proxy-process.js';

const MAIN = join(import.meta.dirname, '..', '..', '..', 'src', 'proxy', 'main.ts');
const TSX = import.meta.resolve('tsx');

/** Polls `fn` until it returns a truthy value; fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export type { ProxyProcess };

/** Writes a discovery bootstrap in `dir` and starts `node --import tsx src/proxy/main.ts`. */
export async function spawnProxy(opts: {
  dir: string;
  url: string;
  proxyId: string;
  token?: string;
  tokenFile?: string;
  workload?: string;
  serviceAccount?: string;
  /** Default outbound, inbound and admin on port 0. */
  listeners?: ProxyBootstrap['listeners'];
  extraArgs?: string[];
}): Promise<ProxyProcess> {
  const name = opts.proxyId.replace(/[^a-z0-9]+/gi, '-');
  const bootstrap: ProxyBootstrap = {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyBootstrap',
    identity: {
      workload: opts.workload ?? 'client',
      namespace: 'default',
      labels: { app: opts.workload ?? 'client', version: 'v1' },
      ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
    },
    listeners: opts.listeners ?? {
      outbound: { port: 0 },
      inbound: { port: 0 },
      admin: { port: 0 },
    },
    config: {
      discovery: {
        url: opts.url,
        proxyId: opts.proxyId,
        ...(opts.token !== undefined ? { token: opts.token } : {}),
        ...(opts.tokenFile !== undefined ? { tokenFile: opts.tokenFile } : {}),
      },
    },
  };
  const file = join(opts.dir, `bootstrap-${name}.json`);
  await writeFile(file, JSON.stringify(bootstrap));
  return runProxyProcess(process.execPath, [
    '--import',
    TSX,
    MAIN,
    '--bootstrap',
    file,
    ...(opts.extraArgs ?? []),
  ]);
}

export interface RawStream {
  status: number;
  /** The JSON body of a refused stream. */
  body: string;
  messages: Record<string, unknown>[];
  /** Resolves with the first message (from index `from`) that `pred` accepts. */
  next(
    pred: (m: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<Record<string, unknown>>;
  send(line: string): void;
  closed: Promise<void>;
  close(): void;
}

/** Opens a discovery stream by hand (as a proxy would, or as an attacker would). */
export async function rawStream(
  url: string,
  headers: Record<string, string>,
  path = DISCOVERY_PATH,
): Promise<RawStream> {
  const session = http2.connect(url);
  session.on('error', () => undefined);
  const req = session.request(
    { ':method': 'POST', ':path': path, ...headers },
    { endStream: false },
  );
  req.on('error', () => undefined);
  const closed = new Promise<void>((r) => req.once('close', () => r()));
  void closed.then(() => session.close());
  const messages: Record<string, unknown>[] = [];
  let body = '';
  let buf = '';
  const status = await new Promise<number>((resolve, reject) => {
    req.once('response', (h) => resolve(Number(h[':status'])));
    req.once('close', () => reject(new Error('stream closed before a response')));
  });
  // As a proxy does: when the server ends its side, end ours so the stream closes at once.
  req.on('end', () => req.end());
  req.setEncoding('utf8');
  req.on('data', (d: string) => {
    if (status !== 200) {
      body += d;
      return;
    }
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      messages.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  if (status !== 200) await closed;
  return {
    status,
    get body() {
      return body;
    },
    messages,
    next: (pred, what) => waitFor(() => messages.find(pred), what, 10_000),
    send: (line) => req.write(line),
    closed,
    close: () => {
      req.close();
      session.destroy();
    },
  };
}
