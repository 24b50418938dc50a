/**
 * Proxy benchmark: the same 1 KiB upstream (nginx) measured directly, through nginx as a
 * reverse proxy (1 worker, upstream keepalive) and through one sluice proxy process.
 * Throughput with wrk; latency at a fixed 1,000 rps with hey (`-q`). Ends with one JSON line.
 *
 *   npm run bench -- proxy [--duration 5] [--rounds 3] [--connections 32] [--v8-flags "--a --b"]
 *
 * The three targets are measured in turns, `--rounds` times for `--duration` seconds each
 * (direct, nginx, sluice; then again), and each figure is the median of its rounds: on a
 * shared machine a burst of other work then spoils one round of each, not one target.
 *
 * The sluice proxy runs as the fleet starts it (`proxyCommand()`: the lean bundle with the
 * default V8 flags, or `--v8-flags` to compare others; "none" for V8's defaults).
 *
 * Needs nginx (Debian nginx-light), wrk and hey on PATH.
 *
 * Where the added latency goes (CPU profile of the proxy under wrk, --cpu-prof): the request
 * path in JavaScript is under 5% of the proxy's samples; the write syscalls (writev of the
 * corked response, the upstream request write — loopback TCP runs the receiver's stack in
 * the sender's syscall) take over half, GC ~4%, the rest is idle. No timer, nextTick or
 * setImmediate sits between reading a request and writing it upstream, or between reading a
 * response and writing it downstream; both sides set TCP_NODELAY and the response head and
 * first body bytes leave in one writev. What remains is the cost of a second process hop:
 * two more loopback traversals and two more epoll wake-ups, which on a shared 2-core host
 * is mostly waiting for a CPU (compare nginx_added_p90_ms in the same run).
 *
 * The floors, measured on this machine (session 2; wrk -c32, 1 KiB, proxy pinned to its own
 * core where CPU per request is compared):
 * - A bare Node.js TCP relay (no HTTP parsing: socket 'data' → write, both ways) does about
 *   0.83x nginx-as-proxy at 15 µs CPU per request. A larger young generation
 *   (--max-semi-space-size=8) does not raise throughput and adds 13 MB RSS.
 * - At 1,000 rps the bare relay already adds ~0.4 ms p90 (hey), nginx ~0.2 ms: the extra
 *   process hop (two more loopback deliveries and wake-ups on a VM) costs more than the 0.15 ms
 *   target before any proxy work. hey reports in steps of 0.1 ms.
 * - An idle `node` process is 40 MB RSS (34 MB of it the executable's mapped pages; loading
 *   net, http2 and tls maps ~3.5 MB more, and optimised code another ~3.5 MB of compiler
 *   pages). Those pages are shared by every proxy on a host: pss_mb is the per-proxy share.
 *
 * Session 3 (perf record with --perf-basic-prof; /proc CPU per request, A/B of two bundles
 * in alternating runs): sluice went from ~22-23 µs to ~19-20 µs of CPU per request, and from
 * 0.44-0.46x to 0.48-0.54x nginx (median of six runs 0.52), by
 * - upstream sockets reading into a reused buffer of their own (`onread`, read-buffer.ts)
 *   instead of Node allocating, shrinking and later sweeping a 64 KiB ArrayBuffer per read:
 *   ~10% of the proxy's CPU (malloc/free, BackingStore bookkeeping, GC). Downstream sockets
 *   cannot do this: net.Server has no `onread`;
 * - one reused buffer for the coalesced response head and first body bytes;
 * - header-name and line-ending checks as byte-table and indexOf scans instead of regexes.
 * Half the proxy's CPU is now the kernel (loopback TCP send and receive, wake-ups of the
 * peer process), and no single user-space function is over ~1.5%: Node's stream machinery,
 * head parsing and building, telemetry and the UUID of x-request-id each take a little.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { PROXY_V8_FLAGS, proxyCommand } from '../../src/proxy/launch.js';
import { cpuMs, pssMb, r1, statusMb } from '../support/figures.js';

const cpuSeconds = (pid: number): number => cpuMs(pid) / 1000;

const args = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? d : Number(args[i + 1]);
};
const DURATION = opt('duration', 5);
const ROUNDS = opt('rounds', 3);
const CONNECTIONS = opt('connections', 32);
const RATE = 1000;
const flagsArg = args.includes('--v8-flags') ? (args[args.indexOf('--v8-flags') + 1] ?? '') : null;
const V8_FLAGS =
  flagsArg === null ? PROXY_V8_FLAGS : flagsArg === 'none' ? [] : flagsArg.split(/\s+/);

for (const tool of ['nginx', 'wrk', 'hey']) {
  if (spawnSync('which', [tool]).status !== 0) {
    console.error(`bench/proxy: ${tool} not found (apt-get install -y nginx-light wrk hey)`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

function nginxConf(name: string, body: string): string {
  const p = join(dir, name);
  const conf = `worker_processes 1; daemon off; pid ${p}.pid; error_log ${p}.err;
events { worker_connections 4096; }
http { access_log off; default_type application/octet-stream;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/pt; fastcgi_temp_path ${dir}/ft;
  uwsgi_temp_path ${dir}/ut; scgi_temp_path ${dir}/st;
  keepalive_requests 1000000;
  ${body}
}`;
  writeFileSync(`${p}.conf`, conf);
  return `${p}.conf`;
}

function startNginx(conf: string): ChildProcess {
  const c = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  children.push(c);
  return c;
}

function wrk(port: number): { rps: number; requests: number } {
  const r = spawnSync(
    'wrk',
    ['-t1', `-c${CONNECTIONS}`, `-d${DURATION}s`, `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(r.stdout)?.[1] ?? 0);
  const requests = Number(/([0-9]+) requests in/.exec(r.stdout)?.[1] ?? 0);
  const errors = /Non-2xx or 3xx responses: ([0-9]+)/.exec(r.stdout)?.[1];
  if (errors) console.error(`wrk :${port}: ${errors} non-2xx responses`);
  return { rps, requests };
}

/** hey at a fixed 1,000 rps (10 workers × 100 qps); latency percentiles in ms. */
function hey(port: number): { p50: number; p90: number; p99: number } {
  const r = spawnSync(
    'hey',
    ['-z', `${DURATION}s`, '-c', '10', '-q', String(RATE / 10), `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const pct = (p: number) =>
    Number(new RegExp(`${p}% in ([0-9.]+) secs`).exec(r.stdout)?.[1] ?? NaN) * 1000;
  return { p50: pct(50), p90: pct(90), p99: pct(99) };
}

async function startSluice(upstreamPort: number): Promise<{ child: ChildProcess; port: number }> {
  const boot = {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyBootstrap',
    identity: { workload: 'bench-client', namespace: 'bench' },
    listeners: { outbound: { port: 0 }, admin: { port: 0 } },
    config: {
      static: {
        apiVersion: 'sluice.dev/v1alpha1',
        kind: 'ProxyConfig',
        version: 'bench',
        listeners: [
          {
            name: 'outbound',
            virtualHosts: [
              { name: 'upstream', domains: ['*'], routes: [{ route: [{ cluster: 'upstream' }] }] },
            ],
          },
        ],
        clusters: [
          {
            name: 'upstream',
            service: 'upstream.bench.svc.cluster.local',
            endpoints: [{ address: '127.0.0.1', port: upstreamPort, workload: 'upstream' }],
          },
        ],
      },
    },
  };
  const file = join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(boot));
  const cmd = await proxyCommand({ bootstrap: file, logLevel: 'info', v8Flags: V8_FLAGS });
  const child = spawn(cmd.execPath, cmd.args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env },
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; ports?: { outbound?: number } };
        if (j.msg === 'proxy started' && j.ports?.outbound) resolve(j.ports.outbound);
      } catch {
        /* not JSON */
      }
    });
    child.once('exit', (code) => reject(new Error(`sluice proxy exited with ${code}`)));
  });
  return { child, port };
}

async function main(): Promise<void> {
  const upstreamPort = await freePort();
  const nginxPort = await freePort();
  const body = 'x'.repeat(1024);
  startNginx(
    nginxConf(
      'upstream',
      `server { listen 127.0.0.1:${upstreamPort}; location / { return 200 "${body}"; } }`,
    ),
  );
  startNginx(
    nginxConf(
      'proxy',
      `upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://up;
    proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
    ),
  );
  await waitPort(upstreamPort);
  await waitPort(nginxPort);
  const sluice = await startSluice(upstreamPort);
  const pid = sluice.child.pid as number;
  await new Promise((r) => setTimeout(r, 500));
  const idleRss = r1(statusMb(pid, 'VmRSS'));

  // warm-up (JIT, connection pools)
  spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, '-d2s', `http://127.0.0.1:${sluice.port}/`]);
  spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, '-d1s', `http://127.0.0.1:${nginxPort}/`]);

  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  const rps = { direct: [] as number[], nginx: [] as number[], sluice: [] as number[] };
  let saturatedCpu = 0;
  let saturatedRequests = 0;
  for (let r = 0; r < ROUNDS; r++) {
    rps.direct.push(wrk(upstreamPort).rps);
    rps.nginx.push(wrk(nginxPort).rps);
    const cpu0 = cpuSeconds(pid);
    const sl = wrk(sluice.port);
    saturatedCpu += cpuSeconds(pid) - cpu0;
    saturatedRequests += sl.requests;
    rps.sluice.push(sl.rps);
    console.log(
      `round ${r + 1}: direct ${rps.direct[r]?.toFixed(0)}, nginx ${rps.nginx[r]?.toFixed(0)}, sluice ${sl.rps.toFixed(0)} rps`,
    );
  }
  type Lat = { p50: number; p90: number; p99: number };
  const lat = { direct: [] as Lat[], nginx: [] as Lat[], sluice: [] as Lat[] };
  let latencyCpu = 0;
  for (let r = 0; r < ROUNDS; r++) {
    lat.direct.push(hey(upstreamPort));
    lat.nginx.push(hey(nginxPort));
    const cpu0 = cpuSeconds(pid);
    lat.sluice.push(hey(sluice.port));
    latencyCpu += cpuSeconds(pid) - cpu0;
  }
  const med = (ls: Lat[]): Lat => ({
    p50: median(ls.map((l) => l.p50)),
    p90: median(ls.map((l) => l.p90)),
    p99: median(ls.map((l) => l.p99)),
  });
  const latDirect = med(lat.direct);
  const latNginx = med(lat.nginx);
  const latSluice = med(lat.sluice);
  console.log('latency at 1000 rps (ms, median of rounds):', {
    direct: latDirect,
    nginx: latNginx,
    sluice: latSluice,
  });
  const direct = { rps: median(rps.direct) };
  const nginx = { rps: median(rps.nginx) };
  const sl = { rps: median(rps.sluice) };
  const r3 = (n: number) => Math.round(n * 1000) / 1000;
  const result = {
    bench: 'proxy',
    duration_s: DURATION,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    rps_direct: Math.round(direct.rps),
    rps_nginx: Math.round(nginx.rps),
    rps_sluice: Math.round(sl.rps),
    // The median of each round's ratio (nginx and sluice measured seconds apart).
    ratio_sluice_nginx: r3(median(rps.sluice.map((x, i) => x / (rps.nginx[i] as number)))),
    added_p50_ms: r3(latSluice.p50 - latDirect.p50),
    added_p90_ms: r3(latSluice.p90 - latDirect.p90),
    added_p99_ms: r3(latSluice.p99 - latDirect.p99),
    nginx_added_p90_ms: r3(latNginx.p90 - latDirect.p90),
    cpu_s_per_1k_req_saturated: r3((saturatedCpu / saturatedRequests) * 1000),
    cpu_s_per_1k_req_at_1000rps: r3((latencyCpu / (RATE * DURATION * ROUNDS)) * 1000),
    idle_rss_mb: idleRss,
    peak_rss_mb: r1(statusMb(pid, 'VmHWM')),
    // RSS after load split: private memory, and file pages (the node executable, shared by
    // every proxy on the host); PSS counts each shared page once per process mapping it.
    rss_anon_mb: r1(statusMb(pid, 'RssAnon')),
    rss_file_mb: r1(statusMb(pid, 'RssFile')),
    pss_mb: r1(pssMb(pid)),
    v8_flags: V8_FLAGS.join(' '),
    loadavg_1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
  console.log(JSON.stringify(result));
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
