// bench/control-plane: the control plane's figures, one part per file, one JSON line at the
// end. `npm run bench -- control-plane [part...]` (default: every part).
//   compile — the mesh compiler: 1,000 services / 5,000 proxies (target <= 1 s)
// Parts register below; each returns plain figures merged under its name.
import { loadavg } from 'node:os';
import { runCompileBench } from './compile.js';

const PARTS: Record<string, () => Promise<Record<string, unknown>> | Record<string, unknown>> = {
  compile: () => runCompileBench() as unknown as Record<string, unknown>,
};

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(PARTS);
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
