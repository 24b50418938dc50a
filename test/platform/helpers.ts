/**
 * Helpers of the platform tests: demo-server Deployments, a LocalPlatform stopped after the
 * test, plain HTTP requests, and process liveness by pid.
 */
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import type { WorkloadSpec } from '../../src/platform/platform.js';
import { LocalPlatform, type LocalPlatformOptions } from '../../src/platform/local/index.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface DemoOptions {
  name?: string;
  namespace?: string;
  version: string;
  replicas?: number;
  env?: Record<string, string>;
  command?: string[];
  labels?: Record<string, string>;
}

/** A Deployment of examples/demo-server, as the manifests layer hands it over. */
export function demoDeployment(o: DemoOptions): WorkloadSpec {
  const name = o.name ?? 'demo';
  const env = Object.entries({ VERSION: o.version, PORT: '9898', ...o.env }).map(([k, v]) => ({
    name: k,
    value: v,
  }));
  return {
    namespace: o.namespace ?? 'test',
    name,
    revision: `rev-${o.version}`,
    object: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: o.namespace ?? 'test' },
      spec: {
        replicas: o.replicas ?? 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name, version: o.version, ...o.labels } },
          spec: {
            containers: [
              {
                name: 'app',
                image: 'ghcr.io/example/demo:1',
                command: o.command ?? ['node', 'examples/demo-server/server.mjs'],
                env,
                ports: [{ name: 'http', containerPort: 9898 }],
                readinessProbe: {
                  httpGet: { path: '/readyz', port: 'http' },
                  periodSeconds: 1,
                  failureThreshold: 2,
                },
              },
            ],
          },
        },
      },
    },
  };
}

export const silent = pino({ level: 'silent' });

/** A LocalPlatform with short delays for tests, closed (and its state removed) after the test. */
export function localPlatform(
  t: TestContext,
  opts: Partial<LocalPlatformOptions> = {},
): LocalPlatform {
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-platform-'));
  const p = new LocalPlatform({
    stateDir,
    cwd: ROOT,
    logger: silent,
    drainMs: 150,
    graceMs: 5000,
    orphanGraceMs: 2000,
    backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 60_000 },
    ...opts,
  });
  t.after(async () => {
    await p.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return p;
}

export interface Answer {
  status: number;
  body: string;
  json: Record<string, unknown> | undefined;
}

/** One GET on a fresh connection (no keep-alive: each request picks its endpoint anew). */
export function get(
  port: number,
  path = '/',
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, headers, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** True while `pid` is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls `cond` every 50 ms until it holds; throws after `timeoutMs` with `what`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
