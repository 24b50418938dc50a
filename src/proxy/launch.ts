/**
 * How a proxy process is started: `proxyCommand()` gives the fleet the executable and
 * arguments of one lean data-plane process (`node <flags> <bundle> --bootstrap FILE`).
 *
 * The bundle is the proxy entry (main.ts, or main.js in a build) with everything it imports
 * in one ESM file, built with esbuild on first use and cached by the content of its inputs.
 * Two things keep the process small (issue 4's RSS target): the schema checks run the small
 * interpreter of schema-lite.ts over the api schemas embedded as JSON, so the process loads
 * neither ajv nor TypeBox, and the YAML parser stays outside the bundle, loaded only for a
 * file that is not JSON.
 * Running the bundle needs no TypeScript loader (tsx costs ~35 MB per process).
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ProxyBootstrap, ProxyConfig } from '../api/proxy-config.js';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * V8 flags of a proxy process, chosen by measurement (wrk, 32 connections, 1 KiB responses):
 * a 1 MB semi-space keeps private (anonymous) memory under load at ~16 MB against ~21 MB
 * with V8's default (16 MB), with no throughput difference we could measure on this machine;
 * 2 and 4 MB sat in between. --single-threaded saves another ~2 MB but cost ~20% of
 * throughput in three paired runs; --single-threaded-gc, --v8-pool-size, --optimize-for-size
 * and malloc arena limits did not lower the peak; --no-opt costs 3x throughput. The
 * old-space cap turns a leak into a crash the fleet restarts rather than a swapping host.
 */
export const PROXY_V8_FLAGS: readonly string[] = [
  '--max-semi-space-size=1',
  '--max-old-space-size=128',
];

export interface ProxyCommand {
  execPath: string;
  args: string[];
}

export interface ProxyCommandOptions {
  /** Appended as `--bootstrap FILE` when given (the fleet may append it itself). */
  bootstrap?: string;
  logLevel?: string;
  /** V8 flags; default PROXY_V8_FLAGS. */
  v8Flags?: readonly string[];
}

/**
 * The command of one proxy process. Builds the bundle on first use (~0.3 s) and reuses it
 * while its inputs are unchanged; rejects when it cannot be built (esbuild missing, a source
 * that does not parse).
 */
export async function proxyCommand(opts: ProxyCommandOptions = {}): Promise<ProxyCommand> {
  const args = [...(opts.v8Flags ?? PROXY_V8_FLAGS), await buildProxyBundle()];
  if (opts.bootstrap !== undefined) args.push('--bootstrap', opts.bootstrap);
  if (opts.logLevel !== undefined) args.push('--log-level', opts.logLevel);
  return { execPath: process.execPath, args };
}

function projectRoot(): string {
  let d = here;
  for (;;) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) return here;
    d = up;
  }
}

/** Files whose change must rebuild the bundle: the proxy and api trees (source or build). */
function inputKey(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (n.endsWith(ext)) h.update(`${p}\0${st.size}\0${st.mtimeMs}\n`);
    }
  };
  walk(here);
  walk(join(here, '..', 'api'));
  try {
    h.update(readFileSync(join(root, 'package.json')));
  } catch {
    /* not inside a package: the sources alone key the bundle */
  }
  h.update(process.version);
  return h.digest('hex').slice(0, 16);
}

function cacheDir(root: string): string {
  for (const d of [
    join(root, 'node_modules', '.cache', 'sluice-proxy'),
    join(tmpdir(), 'sluice-proxy'),
  ]) {
    try {
      mkdirSync(d, { recursive: true });
      return d;
    } catch {
      /* not writable: next */
    }
  }
  throw new Error('no writable cache directory for the proxy bundle');
}

/** Bundles older than a day go (not newer: a running proxy may still import a lazy chunk). */
function pruneOld(cache: string, keep: string): void {
  const dayAgo = Date.now() - 86_400_000;
  let names: string[];
  try {
    names = readdirSync(cache);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(cache, n);
    if (p === keep || !n.startsWith('proxy-')) continue;
    try {
      if (statSync(p).mtimeMs < dayAgo) rmSync(p, { recursive: true, force: true });
    } catch {
      /* raced with another process */
    }
  }
}

/** The schema-check.ts contract over the api schemas embedded as JSON (no TypeBox). */
function validatorModule(): string {
  const lite = JSON.stringify(join(here, `schema-lite${ext}`));
  return `import { checkSchema } from ${lite};
const CONFIG = ${JSON.stringify(ProxyConfig)};
const BOOTSTRAP = ${JSON.stringify(ProxyBootstrap)};
export function checkConfig(v) { return checkSchema(CONFIG, v); }
export function checkBootstrap(v) { return checkSchema(BOOTSTRAP, v); }
`;
}

/**
 * Builds the proxy bundle when its inputs changed and returns its path. Concurrent callers
 * (several processes) each build into a temporary directory and rename it: the result is whole.
 */
export async function buildProxyBundle(): Promise<string> {
  const root = projectRoot();
  const dir = join(cacheDir(root), `proxy-${inputKey(root)}`);
  const out = join(dir, 'main.mjs');
  if (existsSync(out)) return out;
  const esbuild = require('esbuild') as typeof import('esbuild');
  const yamlUrl = pathToFileURL(require.resolve('yaml')).href;
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [join(here, `main${ext}`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Code behind a dynamic import() (discovery client, YAML) becomes its own chunk, read
    // from disk only when used: a proxy fed from a file never parses it.
    splitting: true,
    outdir: tmp,
    entryNames: 'main',
    outExtension: { '.js': '.mjs' },
    logLevel: 'silent',
    legalComments: 'none',
    // CommonJS dependencies (pino) call require() for Node's modules.
    banner: {
      js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'sluice-proxy',
        setup(build) {
          build.onResolve({ filter: /^yaml$/ }, () => ({ path: yamlUrl, external: true }));
          build.onResolve({ filter: /\/schema-check\.js$/ }, () => ({
            path: 'schema-check',
            namespace: 'sluice-generated',
          }));
          build.onLoad({ filter: /.*/, namespace: 'sluice-generated' }, () => ({
            contents: validatorModule(),
            loader: 'js',
            resolveDir: root,
          }));
        },
      },
    ],
  });
  pruneOld(dirname(dir), dir);
  try {
    renameSync(tmp, dir);
  } catch (e) {
    // Another process renamed its (identical) build first.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(out)) throw e;
  }
  return out;
}
