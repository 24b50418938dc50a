// bench/canary: the rollout scheduler's CPU with many canaries ticking on the real clock.
//   - N canaries (default 1,000), each with the two builtin checks (request-success-rate and
//     request-duration, Flagger's Istio queries rendered per canary) answered by the in-memory
//     provider, analysis.interval 10s, stepping 10% to 50%; a canary that succeeds gets a new
//     revision, so every tick is a real analysis tick (decide + render + query + evaluate).
//   - First ticks are spread over one interval; after a warm-up interval, CPU (user+system of
//     this process) is measured over a window. Target: < 20% of one core.
//   - Baseline, in the same run: the same scheduler and timers with a reconcile that does
//     nothing; and the cost of one pure `decide` call.
// Usage: npm run bench -- canary [canaries] [windowSeconds]
import { loadavg } from 'node:os';
import type { CanarySpec } from '../../src/api/flagger/canary.js';
import { MemoryProvider } from '../../src/metrics/index.js';
import { planChecks, type AnalysisTarget } from '../../src/rollout/analysis.js';
import { decide, type Observations } from '../../src/rollout/decide.js';
import { canaryTickIO, decideTick } from '../../src/rollout/reconcile.js';
import { CanaryScheduler } from '../../src/rollout/scheduler.js';
import type { RolloutState } from '../../src/rollout/state.js';
import { WebhookCaller } from '../../src/rollout/webhooks.js';

const N = Number(process.argv[2] ?? 1000);
const WINDOW_MS = Number(process.argv[3] ?? 20) * 1000;
const INTERVAL_MS = 10_000;
const READY = { ready: 2, desired: 2 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

interface Canary {
  key: string;
  target: AnalysisTarget;
  generation: number;
  state?: RolloutState;
}

const provider = new MemoryProvider({}, { now: () => Date.now() });
const caller = new WebhookCaller();
const analysisDeps = { template: () => undefined, provider: () => provider };
const canaries = new Map<string, Canary>();
for (let i = 0; i < N; i++) {
  const ns = `team-${i % 50}`;
  const name = `app-${i}`;
  const spec = {
    targetRef: { kind: 'Deployment', name },
    service: { port: 80 },
    analysis: {
      interval: '10s',
      threshold: 5,
      stepWeight: 10,
      maxWeight: 50,
      metrics: [
        { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
        { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
      ],
    },
  } as unknown as CanarySpec;
  const target = { namespace: ns, name, spec };
  for (const p of planChecks(target, analysisDeps)) {
    provider.set(p.query, p.name === 'request-success-rate' ? 99.9 : 120);
  }
  canaries.set(`${ns}/${name}`, { key: `${ns}/${name}`, target, generation: 1 });
}

let ticks = 0;
let actions = 0;
async function reconcile(key: string) {
  const c = canaries.get(key) as Canary;
  const obs: Observations = {
    namespace: c.target.namespace,
    name: c.target.name,
    spec: c.target.spec,
    targetHash: `rev-${c.generation}`,
    primary: READY,
    canary: READY,
  };
  const io = canaryTickIO({
    target: c.target,
    analysis: analysisDeps,
    webhooks: caller,
    state: c.state,
  });
  const d = await decideTick(c.state, obs, new Date(), io);
  c.state = d.state;
  if (d.state.phase === 'Succeeded' || d.state.phase === 'Initialized') c.generation++;
  ticks++;
  actions += d.actions.length;
  return { requeueAfterMs: d.requeueAfterMs ?? INTERVAL_MS };
}

async function measure(rec: (key: string) => Promise<{ requeueAfterMs: number }>) {
  const scheduler = new CanaryScheduler({ reconcile: rec });
  let i = 0;
  for (const key of canaries.keys()) scheduler.add(key, (i++ * INTERVAL_MS) / N);
  await sleep(INTERVAL_MS); // warm-up: every canary has ticked once
  const ticks0 = ticks;
  const runs0 = scheduler.stats().runs;
  const c0 = cpuMs();
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const cpu = cpuMs() - c0;
  const wall = performance.now() - t0;
  const runs = scheduler.stats().runs - runs0;
  await scheduler.close();
  return { cpuPercent: (cpu / wall) * 100, cpuMs: cpu, runs, ticks: ticks - ticks0 };
}

// Pure decide: a Progressing canary with passing checks, one call per tick.
function decideCost(): number {
  const c = canaries.values().next().value as Canary;
  const state: RolloutState = {
    phase: 'Progressing',
    failedChecks: 0,
    canaryWeight: 20,
    iterations: 0,
    lastAppliedSpec: 'rev-2',
    lastPromotedSpec: 'rev-1',
    lastTransitionTime: new Date().toISOString(),
    conditions: [],
    mirrored: false,
    analysis: [],
  };
  const obs: Observations = {
    namespace: c.target.namespace,
    name: c.target.name,
    spec: c.target.spec,
    targetHash: 'rev-2',
    primary: READY,
    canary: READY,
    checks: planChecks(c.target, analysisDeps).map((p) => ({
      name: p.name,
      query: p.query,
      unit: p.unit,
      measurement: { kind: 'value' as const, value: 99.9 },
    })),
  };
  const now = new Date();
  const n = 20_000;
  for (let i = 0; i < 2000; i++) decide(state, obs, now);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) decide(state, obs, now);
  return ((performance.now() - t0) * 1000) / n;
}

const load0 = loadavg()[0] as number;
console.log(`canaries: ${N}, interval ${INTERVAL_MS / 1000}s, window ${WINDOW_MS / 1000}s`);
const decideUs = decideCost();
console.log(`pure decide: ${round(decideUs)} µs per call`);
const baseline = await measure(async () => ({ requeueAfterMs: INTERVAL_MS }));
console.log(
  `baseline (scheduler + timers, no-op reconcile): ${round(baseline.cpuPercent)}% of one core, ${baseline.runs} runs`,
);
const full = await measure(reconcile);
console.log(
  `full ticks (decide + analysis + in-memory provider): ${round(full.cpuPercent)}% of one core, ` +
    `${full.ticks} ticks, ${round((full.cpuMs * 1000) / Math.max(1, full.ticks))} µs CPU per tick, ` +
    `${actions} actions total`,
);
const load1 = loadavg()[0] as number;
console.log(`load average (1m): ${round(load0)} at start, ${round(load1)} at end (2 cores shared)`);
await caller.close();
console.log(
  JSON.stringify({
    bench: 'canary',
    canaries: N,
    intervalMs: INTERVAL_MS,
    windowMs: WINDOW_MS,
    ticks: full.ticks,
    ticksPerSecond: round(full.ticks / (WINDOW_MS / 1000)),
    cpuPercentOfOneCore: round(full.cpuPercent),
    targetCpuPercent: 20,
    withinTarget: full.cpuPercent < 20,
    baselineCpuPercent: round(baseline.cpuPercent),
    ratioVsBaseline: round(full.cpuPercent / Math.max(0.01, baseline.cpuPercent)),
    cpuUsPerTick: round((full.cpuMs * 1000) / Math.max(1, full.ticks)),
    decideUsPerCall: round(decideUs),
    loadavg1m: [round(load0), round(load1)],
  }),
);
