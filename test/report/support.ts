// Shared helpers for the report tests: local HTTP servers on OS-chosen ports that follow each
// git host's documented commit status API (errors included), a fake clock, a bounded poll and
// a pino logger whose lines are kept.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Clock } from '../../src/report/clock.js';

export interface Received {
  method: string;
  /** The raw request target, percent-encoding kept. */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface TestServer {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1:0. `handle` returns the answer, or undefined to leave it hanging. */
export async function startServer(
  handle: (req: Received, n: number) => Answer | undefined,
): Promise<TestServer & { hanging: ServerResponse[] }> {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      received.push(r);
      const a = handle(r, received.length);
      if (!a) {
        hanging.push(res);
        return;
      }
      const text =
        typeof a.body === 'string' ? a.body : a.body === undefined ? '' : JSON.stringify(a.body);
      res.writeHead(a.status, {
        ...(typeof a.body === 'string'
          ? { 'content-type': 'text/plain' }
          : { 'content-type': 'application/json' }),
        ...a.headers,
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    hanging,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `cond` every 5 ms until true; fails after `ms` (a bound, not a wait). */
export async function waitFor(cond: () => boolean, what = 'condition', ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A clock that moves only when told; due timers fire in time order during `advance`. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.parse('2025-01-01T00:00:00Z')) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Timers waiting. */
  get pending(): number {
    return this.timers.size;
  }
  /** The delays of the waiting timers from now, in ms, sorted. */
  delays(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.t).sort((a, b) => a - b);
  }
  /** Moves time forward by `ms`, firing due timers in order (and those they arm, if due). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
    this.t = end;
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}

/** A pino logger at trace level whose JSON lines land in `lines`. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), lines };
}

// ---------------------------------------------------------------------------------------------
// Git host doubles. Each follows its host's documented commit status endpoint: the path, the
// auth header, the states, the description limit, the answers for a bad token, a token without
// write access, an unknown repository; `script` answers the next requests first (429, 5xx...).
// ---------------------------------------------------------------------------------------------

export interface StoredStatus {
  sha: string;
  context: string;
  state: string;
  description: string;
  targetUrl?: string;
}

export interface HostDouble extends TestServer {
  /** The API base URL to configure. */
  apiUrl: string;
  /** Statuses the host accepted, in order. */
  statuses: StoredStatus[];
  /** Answers for the next requests, before the documented behaviour. */
  script: Answer[];
  /** Statuses already stored per "sha context" (GitHub's limit counts these). */
  counts: Map<string, number>;
  hanging: ServerResponse[];
  /** While true, requests are left unanswered (in `hanging`). */
  hold: boolean;
}

export interface HostDoubleOptions {
  token: string;
  /** A token that authenticates but may not write statuses (403). */
  readOnlyToken?: string;
  /** owner/repo (GitLab: group/sub/project). */
  repository: string;
  /** The API path prefix (GitHub.com: '', Enterprise: '/api/v3', GitLab '/api/v4', Gitea '/api/v1'). */
  prefix?: string;
  /** The description limit the host enforces. */
  maxDescription?: number;
  /** GitHub's statuses per sha and context (default 1,000). */
  statusLimit?: number;
  /** Echo the presented credential in 401 bodies (a careless proxy): scrubbing must catch it. */
  echoToken?: boolean;
}

type Kind = 'github' | 'gitlab' | 'gitea';

export async function startHostDouble(kind: Kind, o: HostDoubleOptions): Promise<HostDouble> {
  const statuses: StoredStatus[] = [];
  const script: Answer[] = [];
  const counts = new Map<string, number>();
  const current = new Map<string, string>(); // GitLab: the state of (sha, name)
  const prefix = o.prefix ?? { github: '', gitlab: '/api/v4', gitea: '/api/v1' }[kind];
  const handle = (req: Received): Answer | undefined => {
    if (double.hold) return undefined;
    const next = script.shift();
    if (next) return next;
    if (req.method !== 'POST') return { status: 405, body: { message: 'Method Not Allowed' } };
    // Auth first, as the hosts do.
    const presented =
      kind === 'gitlab'
        ? (req.headers['private-token'] as string | undefined)
        : /^(?:Bearer|token) (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (presented !== o.token && presented !== o.readOnlyToken) {
      const echo = o.echoToken && presented ? ` (${presented})` : '';
      const message =
        kind === 'github'
          ? presented
            ? `Bad credentials${echo}`
            : 'Requires authentication'
          : kind === 'gitlab'
            ? `401 Unauthorized${echo}`
            : `token is required${echo}`;
      return { status: 401, body: { message } };
    }
    const repoPath =
      kind === 'gitlab'
        ? new RegExp(`^${prefix}/projects/([^/]+)/statuses/([0-9a-fA-F]+)$`)
        : new RegExp(`^${prefix}/repos/([^/]+/[^/]+)/statuses/([0-9a-fA-F]+)$`);
    const m = repoPath.exec(req.url);
    const repo = m ? decodeURIComponent(m[1] as string) : undefined;
    if (!m || repo !== o.repository)
      return {
        status: 404,
        body: { message: kind === 'gitlab' ? '404 Project Not Found' : 'Not Found' },
      };
    if (presented === o.readOnlyToken)
      return {
        status: 403,
        body: {
          message:
            kind === 'github'
              ? 'Resource not accessible by integration'
              : kind === 'gitlab'
                ? '403 Forbidden'
                : 'user should have write access to the repository',
        },
      };
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body) as Record<string, unknown>;
    } catch {
      return { status: 400, body: { message: 'Problems parsing JSON' } };
    }
    const sha = m[2] as string;
    const context = String(
      (kind === 'gitlab' ? (body.name ?? body.context) : body.context) ?? 'default',
    );
    const state = String(body.state);
    const description = String(body.description ?? '');
    const states = {
      github: ['error', 'failure', 'pending', 'success'],
      gitlab: ['pending', 'running', 'success', 'failed', 'canceled'],
      gitea: ['pending', 'success', 'error', 'failure', 'warning'],
    }[kind];
    if (!states.includes(state))
      return kind === 'gitlab'
        ? { status: 400, body: { error: 'state does not have a valid value' } }
        : {
            status: 422,
            body: { message: 'Validation Failed', errors: [{ field: 'state', code: 'invalid' }] },
          };
    const max = o.maxDescription ?? { github: 140, gitlab: 255, gitea: 100_000 }[kind];
    if (Array.from(description).length > max)
      return kind === 'gitlab'
        ? {
            status: 400,
            body: { message: { description: [`is too long (maximum is ${max} characters)`] } },
          }
        : {
            status: 422,
            body: {
              message: 'Validation Failed',
              errors: [
                {
                  resource: 'Status',
                  code: 'custom',
                  field: 'description',
                  message: `description is too long (maximum is ${max} characters)`,
                },
              ],
            },
          };
    const key = `${sha} ${context.toLowerCase()}`;
    if (kind === 'github' && (counts.get(key) ?? 0) >= (o.statusLimit ?? 1000))
      return {
        status: 422,
        body: {
          message: 'Validation Failed',
          errors: [
            {
              resource: 'Status',
              code: 'custom',
              message: 'This SHA and context has reached the maximum number of statuses.',
            },
          ],
        },
      };
    if (kind === 'gitlab') {
      const from = current.get(key);
      const event = {
        pending: 'enqueue',
        running: 'run',
        success: 'success',
        failed: 'drop',
        canceled: 'cancel',
      }[state];
      const refused =
        from !== undefined &&
        (from === state || (from === 'pending' && (state === 'success' || state === 'failed')));
      if (refused)
        return {
          status: 400,
          body: {
            message: `Cannot transition status via :${event} from :${from} (Reason(s): Status cannot transition via "${event}")`,
          },
        };
      current.set(key, state);
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const stored: StoredStatus = { sha, context, state, description };
    if (typeof body.target_url === 'string') stored.targetUrl = body.target_url;
    statuses.push(stored);
    return {
      status: 201,
      body: {
        id: statuses.length,
        state: kind === 'gitlab' ? undefined : state,
        status: kind === 'gitlab' ? state : undefined,
        description,
        target_url: stored.targetUrl ?? null,
        [kind === 'gitlab' ? 'name' : 'context']: context,
      },
    };
  };
  const server = await startServer(handle);
  const double: HostDouble = {
    ...server,
    apiUrl: server.url + prefix,
    statuses,
    script,
    counts,
    hold: false,
  };
  return double;
}
