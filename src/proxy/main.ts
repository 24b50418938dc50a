/**
 * Standalone entry of one proxy process (`node --import tsx src/proxy/main.ts --bootstrap F`),
 * used by tests and benchmarks; `sluice proxy` runs the same `runProxyCommand`.
 */
import { runProxyCommand } from './cli.js';

process.exitCode = await runProxyCommand(process.argv.slice(2));
