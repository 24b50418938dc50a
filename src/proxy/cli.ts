/**
 * `sluice proxy --bootstrap FILE`: runs one proxy until SIGINT/SIGTERM. Logs are pino JSON
 * on stdout; the first line after start is `{"msg":"proxy started","ports":{...}}`, which the
 * fleet (and tests) read to learn ports chosen by the OS.
 */
import { dirname, resolve } from 'node:path';
import pino from 'pino';
import { ProxyError } from './errors.js';
import { Proxy } from './proxy.js';
import { readBootstrap } from './validate.js';

export interface ProxyCommandOptions {
  bootstrap: string;
  logLevel?: string;
}

/** Parses `--bootstrap FILE [--log-level LEVEL]`. Throws on a usage error. */
export function parseProxyArgs(argv: readonly string[]): ProxyCommandOptions {
  let bootstrap: string | undefined;
  let logLevel: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes('=') ? a.split(/=(.*)/s, 2) : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--bootstrap') bootstrap = value();
    else if (flag === '--log-level') logLevel = value();
    else throw new Error(`unknown argument ${a}`);
  }
  if (bootstrap === undefined) throw new Error('--bootstrap FILE is required');
  return { bootstrap, logLevel };
}

/**
 * Runs the proxy command. Resolves with the exit code: 0 after a clean shutdown on
 * SIGINT/SIGTERM, 1 when the bootstrap is invalid or a listener cannot bind, 2 on usage error.
 */
export async function runProxyCommand(
  argv: readonly string[],
  opts: { signal?: AbortSignal } = {},
): Promise<number> {
  let parsed: ProxyCommandOptions;
  try {
    parsed = parseProxyArgs(argv);
  } catch (e) {
    process.stderr.write(
      `sluice proxy: ${(e as Error).message}\nusage: sluice proxy --bootstrap FILE [--log-level LEVEL]\n`,
    );
    return 2;
  }
  const log = pino({ name: 'sluice', level: parsed.logLevel ?? 'info' });
  let proxy: Proxy;
  let discovery: { stop(): Promise<void> } | null = null;
  try {
    const file = resolve(parsed.bootstrap);
    const bootstrap = await readBootstrap(file);
    proxy = new Proxy({ bootstrap, log, baseDir: dirname(file) });
    await proxy.start();
    if (bootstrap.config.discovery) {
      // Loaded only here: a proxy fed from a file never loads HTTP/2 or the X.509 code.
      const { DiscoveryClient } = await import('./discovery-client.js');
      const client = new DiscoveryClient({
        config: bootstrap.config.discovery,
        baseDir: dirname(file),
        target: proxy,
        logger: log,
      });
      client.start();
      discovery = client;
    }
  } catch (e) {
    const code = e instanceof ProxyError ? e.code : 'SLUICE_PROXY_BOOTSTRAP_INVALID';
    log.error({ code, reason: (e as Error).message }, 'proxy failed to start');
    return 1;
  }
  log.info({ component: 'proxy', ports: proxy.ports(), version: proxy.version }, 'proxy started');
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    opts.signal?.addEventListener('abort', stop, { once: true });
  });
  log.info({ component: 'proxy' }, 'proxy stopping');
  await discovery?.stop();
  await proxy.stop();
  return 0;
}
