// Part 2 of bench/control-plane: commit-to-all-ACKed through the whole product. `sluice up`
// as a library runs a local fleet from a repository served by `git daemon`: SERVICES
// Deployments of REPLICAS replicas each (the app is `sleep`, so the machine's memory goes to
// the real sidecar proxies), each with a Service, a DestinationRule and a weighted
// VirtualService. Each round commits a new weight for one service every proxy routes to (what
// a canary step or a one-line commit does), pushes, sends the signed webhook, and measures
// until every sidecar has ACKed a config with the change (and no proxy is behind).
// Baseline in the same run: the webhook-to-applied share (the controller's revision applied,
// before the mesh push). Target: p99 <= 1 s after the webhook.
import { createHmac } from 'node:crypto';
import { pino } from 'pino';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { gitTestEnv, makeRemote, TempDirs } from '../../test/source/support/git.js';
import { GitDaemon } from '../../test/source/support/servers.js';
import { pct, r1, rssMb } from '../support/figures.js';

export interface FleetFigures {
  services: number;
  replicas: number;
  proxies: number;
  rounds: number;
  startupAllSyncedS: number;
  /** Webhook answered → every proxy ACKed the commit's config. */
  commitToAllAckedMs: { p50: number; p99: number; max: number };
  /** Webhook answered → the controller applied the revision (fetch, load, sync). */
  webhookToAppliedMs: { p50: number; p99: number };
  slowestRounds: { round: number; ms: number; appliedMs: number }[];
  sidecarRssMb: { mean: number; max: number };
  controllerRssMb: number;
  targetP99Ms: number;
  meetsTarget: boolean;
}

const SECRET = 'bench-secret';

function manifests(services: number, replicas: number, weight: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let s = 0; s < services; s++) {
    const name = `svc${s}`;
    const w = s === 0 ? weight : 0;
    const deployment = (version: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}-${version}, namespace: fleet}
spec:
  replicas: ${version === 'v1' ? replicas - Math.floor(replicas / 2) : Math.floor(replicas / 2)}
  selector: {matchLabels: {app: ${name}, version: ${version}}}
  template:
    metadata: {labels: {app: ${name}, version: ${version}}}
    spec:
      containers:
        - name: main
          command: ["sleep", "3600"]
          ports: [{containerPort: 8080}]`;
    files[`${name}.yaml`] = [
      deployment('v1'),
      deployment('v2'),
      `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: fleet}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: 8080}]`,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: fleet}
spec:
  host: ${name}
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: fleet}
spec:
  hosts: [${name}]
  http:
    - match: [{headers: {x-canary: {exact: "true"}}}]
      route: [{destination: {host: ${name}, subset: v2}}]
    - route:
        - {destination: {host: ${name}, subset: v1}, weight: ${100 - w}}
        - {destination: {host: ${name}, subset: v2}, weight: ${w}}
      retries: {attempts: 2, retryOn: "connect-failure,refused-stream,503"}`,
    ].join('\n---\n');
  }
  return files;
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`bench/control-plane fleet: ${what} timed out`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function runFleetBench(
  opts: { services?: number; replicas?: number; rounds?: number; warmup?: number } = {},
): Promise<FleetFigures> {
  const SERVICES = opts.services ?? 20;
  const REPLICAS = opts.replicas ?? 10;
  const ROUNDS = opts.rounds ?? 20;
  const WARMUP = opts.warmup ?? 10;
  const tmp = new TempDirs();
  const base = tmp.make('sluice-bench-fleet-');
  const daemon = await GitDaemon.start(base);
  let c: RunningController | undefined;
  try {
    const { work } = makeRemote(tmp, base, 'fleet');
    work.commit(manifests(SERVICES, REPLICAS, 0), 'initial');
    work.push('origin', 'main');
    const started = performance.now();
    c = await startController({
      source: daemon.url('fleet'),
      ref: { branch: 'main' },
      intervalMs: 3_600_000,
      stateDir: tmp.make('sluice-bench-fleet-state-'),
      listen: '127.0.0.1:0',
      webhookSecret: SECRET,
      logger: pino({ level: 'silent' }),
      env: gitTestEnv,
      fleet: { gatewayListen: '127.0.0.1:0', prometheus: 'off' },
    });
    const ctl = c;
    const discovery = ctl.discovery;
    if (!discovery) throw new Error('no discovery server');
    const expected = SERVICES * REPLICAS + 1;
    const allSynced = () => {
      const st = discovery.status();
      return st.length >= expected && st.every((p) => p.state === 'SYNCED');
    };
    await until(`${expected} proxies SYNCED`, allSynced, 900_000);
    // Every certificate issued, so that CSRs do not overlap the measured rounds.
    await until(
      'certificates',
      () => discovery.status().every((p) => p.certificateNotAfter !== null),
      300_000,
    );
    const startupAllSyncedS = (performance.now() - started) / 1000;

    const total: number[] = [];
    const applied: number[] = [];
    const rounds: { round: number; ms: number; appliedMs: number }[] = [];
    for (let r = 1 - WARMUP; r <= ROUNDS; r++) {
      const before = new Map(discovery.status().map((p) => [p.id, p.latestVersion]));
      const sha = work.commit(manifests(SERVICES, REPLICAS, (r + WARMUP) % 50), `round ${r}`);
      work.push('origin', 'main');
      const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: sha }));
      const signature = createHmac('sha256', SECRET).update(body).digest('hex');
      const res = await fetch(ctl.url + '/hooks/git', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': `sha256=${signature}`,
        },
        body,
      });
      const t = performance.now();
      if (res.status !== 202) throw new Error(`controller hook answered ${res.status}`);
      let appliedAt = NaN;
      await until(
        `round ${r}: every proxy ACKing the commit`,
        () => {
          if (Number.isNaN(appliedAt) && ctl.controller.revision?.endsWith(sha))
            appliedAt = performance.now();
          if (Number.isNaN(appliedAt)) return false;
          // Every sidecar routes to svc0, so each one's config changes; the gateway's does not
          // (no Gateway routes to it). Done when all changed ones have ACKed.
          const st = discovery.status();
          const changed = st.filter((p) => p.latestVersion !== before.get(p.id));
          return changed.length >= SERVICES * REPLICAS && st.every((p) => p.state === 'SYNCED');
        },
        60_000,
      );
      const ms = performance.now() - t;
      if (r > 0) {
        total.push(ms);
        applied.push(appliedAt - t);
        rounds.push({ round: r, ms: r1(ms), appliedMs: r1(appliedAt - t) });
      }
    }
    const sidecars = ctl.platform
      .status()
      .flatMap((w) => w.replicaStatuses ?? [])
      .map((rep) => rssMb(rep.sidecar?.pid))
      .filter((x) => !Number.isNaN(x));
    return {
      services: SERVICES,
      replicas: REPLICAS,
      proxies: expected,
      rounds: ROUNDS,
      startupAllSyncedS: r1(startupAllSyncedS),
      commitToAllAckedMs: {
        p50: r1(pct(total, 50)),
        p99: r1(pct(total, 99)),
        max: r1(Math.max(...total)),
      },
      webhookToAppliedMs: { p50: r1(pct(applied, 50)), p99: r1(pct(applied, 99)) },
      slowestRounds: rounds.sort((a, b) => b.ms - a.ms).slice(0, 3),
      sidecarRssMb: {
        mean: r1(sidecars.reduce((a, b) => a + b, 0) / sidecars.length),
        max: r1(Math.max(...sidecars)),
      },
      controllerRssMb: r1(process.memoryUsage().rss / 1048576),
      targetP99Ms: 1000,
      meetsTarget: pct(total, 99) <= 1000,
    };
  } finally {
    await c?.stop();
    await daemon.down();
    tmp.cleanup();
  }
}
