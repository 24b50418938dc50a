/**
 * Helpers of the canary end-to-end tests: manifests of demo-server workloads released by
 * Canaries (written as JSON, which is YAML), a gate server for the webhooks the test decides,
 * the controller API's canary views, events and manual actions, and requests through the
 * ingress gateway.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { CanaryView } from '../../../src/controller/canary/index.js';
import { waitFor } from '../../source/support/time.js';

export type { CanaryView };

export const NS = 'e2e';
const DEMO_SERVER = join(import.meta.dirname, '..', '..', '..', 'examples', 'demo-server');

/** A free TCP port on loopback (for addresses that must be known before the commit). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Copies the demo server into the repository (the Deployments run `demo-server/server.mjs`). */
export function addDemoServer(repoDir: string): void {
  mkdirSync(join(repoDir, 'demo-server'), { recursive: true });
  copyFileSync(join(DEMO_SERVER, 'server.mjs'), join(repoDir, 'demo-server', 'server.mjs'));
}

const doc = (o: unknown) => JSON.stringify(o, null, 1) + '\n';

/** A Deployment of the demo server with its env knobs, and its Service on port 9898. */
export function workload(name: string, env: Record<string, string>): string {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'main',
              command: ['node', 'demo-server/server.mjs'],
              env: Object.entries({ SERVICE_NAME: name, ...env }).map(([k, v]) => ({
                name: k,
                value: v,
              })),
              ports: [{ name: 'http', containerPort: 9898 }],
              // Generous on a loaded machine: a replica that misses a few probes stays ready.
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http' },
                periodSeconds: 1,
                timeoutSeconds: 5,
                failureThreshold: 30,
              },
            },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: {
      selector: { app: name },
      ports: [{ name: 'http', port: 9898, targetPort: 'http' }],
    },
  };
  return doc(deployment) + '---\n' + doc(service);
}

/** The ingress Gateway every canary's host is served on. */
export function gateway(): string {
  return doc({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'public', namespace: NS },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    },
  });
}

export const hostOf = (name: string) => `${name}.localhost`;

/** The built-in load generator through the gateway, as a `rollout` webhook. */
export function loadWebhook(
  gatewayPort: number,
  name: string,
  extraHeaders: Record<string, string> = {},
  rate = 10,
): Record<string, unknown> {
  return {
    name: 'load',
    type: 'rollout',
    url: 'sluice://load-generator',
    timeout: '5s',
    metadata: {
      url: `http://127.0.0.1:${gatewayPort}/`,
      headers: JSON.stringify({ Host: hostOf(name), ...extraHeaders }),
      rate: String(rate),
      duration: '20s',
    },
  };
}

/** A Canary for `name` (Deployment and Service of that name); `analysis` is merged in. */
export function canary(
  name: string,
  analysis: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): string {
  return doc({
    apiVersion: 'sluice.dev/v1beta1',
    kind: 'Canary',
    metadata: { name, namespace: NS },
    spec: {
      targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      progressDeadlineSeconds: 60,
      service: {
        port: 9898,
        targetPort: 'http',
        gateways: ['public', 'mesh'],
        hosts: [hostOf(name)],
      },
      analysis: { interval: '2s', threshold: 2, onNoData: 'hold', ...analysis },
      ...extra,
    },
  });
}

/** The request-success-rate check (min 99%) over a short window. */
export const successRate = (interval = '10s') => ({
  name: 'request-success-rate',
  thresholdRange: { min: 99 },
  interval,
});

/** The request-duration check (p99 in ms). */
export const duration = (max: number, interval = '10s') => ({
  name: 'request-duration',
  thresholdRange: { max },
  interval,
});

/**
 * An HTTP server answering gating webhooks as the test decides: a gate is closed (403)
 * until `open(type, name)`; `approveFirst` lets its first N calls through. Counts calls.
 */
export class GateServer {
  private server: Server | undefined;
  private readonly opened = new Set<string>();
  private readonly first = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  url = '';

  async start(): Promise<void> {
    this.server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let key = '?';
        try {
          const p = JSON.parse(Buffer.concat(chunks).toString()) as { name: string; type: string };
          key = `${p.type}/${p.name}`;
        } catch {
          // not a webhook payload: refused below
        }
        const n = (this.counts.get(key) ?? 0) + 1;
        this.counts.set(key, n);
        const ok = this.opened.has(key) || n <= (this.first.get(key) ?? 0);
        res.writeHead(ok ? 200 : 403, { 'content-type': 'text/plain' });
        res.end(ok ? 'approved\n' : 'not yet\n');
      });
    });
    await new Promise<void>((r) => (this.server as Server).listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** A webhook entry for the Canary: `type` gated by this server. */
  hook(type: string): Record<string, unknown> {
    return { name: `gate-${type}`, type, url: `${this.url}/gate`, timeout: '5s' };
  }

  approveFirst(type: string, name: string, n: number): void {
    this.first.set(`${type}/${name}`, n);
  }

  open(type: string, name: string): void {
    this.opened.add(`${type}/${name}`);
  }

  close(type: string, name: string): void {
    this.opened.delete(`${type}/${name}`);
    this.first.delete(`${type}/${name}`);
  }

  calls(type: string, name: string): number {
    return this.counts.get(`${type}/${name}`) ?? 0;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** The controller API's canary endpoints and event log. */
export class CanaryApi {
  constructor(
    readonly url: string,
    private readonly stateDir: string,
  ) {}

  async view(name: string): Promise<CanaryView | undefined> {
    const res = await fetch(`${this.url}/api/v1/canaries/${NS}/${name}`).catch(() => undefined);
    if (res?.status !== 200) {
      await res?.body?.cancel();
      return undefined;
    }
    return (await res.json()) as CanaryView;
  }

  /** Polls the canary's view until `cond` holds; the failure names the last view. */
  async until(
    name: string,
    cond: (v: CanaryView) => boolean,
    what: string,
    timeoutMs = 90_000,
  ): Promise<CanaryView> {
    let last: CanaryView | undefined;
    try {
      return await waitFor(
        async () => {
          last = await this.view(name);
          if (last && cond(last)) return last;
          await new Promise((r) => setTimeout(r, 150));
          return undefined;
        },
        `${name}: ${what}`,
        timeoutMs,
      );
    } catch (err) {
      const events = await this.events(name).catch(() => []);
      throw new Error(
        `${(err as Error).message}\nlast view: ${JSON.stringify(last)}\nevents:\n${events
          .slice(-25)
          .map((e) => `  ${e.reason}: ${e.message}`)
          .join('\n')}`,
      );
    }
  }

  async events(name?: string): Promise<{ reason: string; message: string; type: string }[]> {
    const res = await fetch(`${this.url}/api/v1/events?limit=5000`);
    const body = (await res.json()) as {
      events: {
        reason: string;
        message: string;
        type: string;
        object?: { kind: string; name: string };
      }[];
    };
    return body.events.filter(
      (e) => name === undefined || (e.object?.kind === 'Canary' && e.object.name === name),
    );
  }

  token(): string {
    return readFileSync(join(this.stateDir, 'api-token'), 'utf8').trim();
  }

  /** POSTs a manual action with the API token; returns the status and the body. */
  async act(
    name: string,
    action: string,
    token = this.token(),
  ): Promise<{ status: number; body: { accepted?: boolean; message?: string; error?: unknown } }> {
    const res = await fetch(`${this.url}/api/v1/canaries/${NS}/${name}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as { accepted?: boolean } };
  }
}

/** A GET through the gateway for a canary's host: the answering version (x-version). */
export function versionVia(
  gatewayUrl: string,
  name: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; version: string | null }> {
  // fetch() does not send a Host header of the caller's choosing; node:http does.
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      gatewayUrl + '/',
      { headers: { host: hostOf(name), ...headers }, agent: false, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on('end', () => {
          const v = res.headers['x-version'];
          resolve({ status: res.statusCode ?? 0, version: typeof v === 'string' ? v : null });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 10s')));
    req.on('error', reject);
    req.end();
  });
}

/** `n` GETs through the gateway; the versions that answered 200, counted. */
export async function versionsVia(
  gatewayUrl: string,
  name: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await versionVia(gatewayUrl, name, headers);
    const key = r.status === 200 ? (r.version ?? 'none') : `status ${r.status}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** An instant query against a Prometheus; the first sample's value, or undefined. */
export async function promValue(prometheusUrl: string, query: string): Promise<number | undefined> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as {
    data?: { result?: { value: [number, string] }[] };
  };
  const v = body.data?.result?.[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}
