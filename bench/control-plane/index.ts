// bench/control-plane: the control plane's figures, one part per file, one JSON line at the
// end. `npm run bench -- control-plane [part...]` (default: every part).
//   compile — the mesh compiler: 1,000 services / 5,000 proxies (target <= 1 s)
//   fleet   — commit-to-all-ACKed through `sluice up` with 200 real sidecars (target p99
//             <= 1 s after the webhook); options --services 20 --replicas 10 --rounds 20
//             --warmup 10
// Parts register below; each returns plain figures merged under its name.
import { loadavg } from 'node:os';
import { runCompileBench } from './compile.js';
import { runFleetBench } from './fleet.js';

const argv = process.argv.slice(2);
const option = (name: string): number | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? undefined : Number(argv[i + 1]);
};
const fleetOptions = Object.fromEntries(
  ['services', 'replicas', 'rounds', 'warmup']
    .map((k) => [k, option(k)] as const)
    .filter(([, v]) => v !== undefined),
);

const PARTS: Record<string, () => Promise<Record<string, unknown>> | Record<string, unknown>> = {
  compile: () => runCompileBench() as unknown as Record<string, unknown>,
  fleet: async () => (await runFleetBench(fleetOptions)) as unknown as Record<string, unknown>,
};

const names = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
const wanted = names.length > 0 ? names : Object.keys(PARTS);
const out: Record<string, unknown> = { loadAverage: loadavg().map((l) => Number(l.toFixed(2))) };
for (const name of wanted) {
  const part = PARTS[name];
  if (!part) {
    console.error(`unknown part ${name} (one of: ${Object.keys(PARTS).join(', ')})`);
    process.exit(2);
  }
  const figures = await part();
  console.log(`${name}:`, figures);
  out[name] = figures;
}
console.log(JSON.stringify(out));
