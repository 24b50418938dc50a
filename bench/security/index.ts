/**
 * Security benchmark: the cost of mTLS, authorization and JWT on the request path. One
 * client proxy → server proxy chain (both in this process, with the upstream) measured with
 * wrk through the client proxy, per scenario:
 *   plaintext (baseline) · ISTIO_MUTUAL/STRICT · + 20 authorization policies · + JWT (cached)
 * Ratios are against the plaintext baseline of the same run. Ends with one JSON line.
 *
 *   npm run bench -- security [--duration 4] [--connections 16]
 *
 * Needs wrk on PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { loadavg } from 'node:os';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import type { AuthzPolicy, Cluster, ProxyConfig } from '../../src/api/proxy-config.js';
import { CertificateAuthority } from '../../src/mesh/ca/index.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { generateKeyAndCsr } from '../../src/proxy/security/index.js';

const args = process.argv.slice(2);
const opt = (name: string, d: number): number => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? d : Number(args[i + 1]);
};
const DURATION = opt('duration', 4);
const CONNECTIONS = opt('connections', 16);
if (spawnSync('which', ['wrk']).status !== 0) {
  console.error('bench/security: wrk not found (apt-get install -y wrk)');
  process.exit(2);
}
const log = pino({ level: 'silent' });
const body = Buffer.alloc(1024, 'x');
const app = http.createServer((_req, res) => {
  res.setHeader('content-length', body.length);
  res.end(body);
});
await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
const appPort = (app.address() as net.AddressInfo).port;

const ca = await CertificateAuthority.open({ logger: log });
async function identity(sa: string) {
  const spiffeId = `spiffe://cluster.local/ns/default/sa/${sa}`;
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(spiffeId);
  const c = await ca.sign({ csr: csrPem, spiffeId });
  return {
    certChainPem: c.certificateChain,
    privateKeyPem,
    trustBundlePem: c.trustBundle.join('\n'),
    spiffeId,
  };
}

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
const token = await new SignJWT({ sub: 'alice' })
  .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setIssuer('https://issuer')
  .setAudience('api')
  .setExpirationTime('2h')
  .sign(privateKey);

// 19 DENY policies that do not match, then one ALLOW that does: every request walks them all.
const policies: AuthzPolicy[] = [
  ...Array.from({ length: 19 }, (_, i) => ({
    name: `default/deny-${i}`,
    action: 'DENY' as const,
    rules: [
      {
        from: [{ source: { principals: [`cluster.local/ns/other/sa/sa-${i}`] } }],
        to: [{ operation: { paths: [`/admin/{*}/x${i}`], methods: ['DELETE'] } }],
      },
    ],
  })),
  {
    name: 'default/allow-client',
    action: 'ALLOW',
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/client'] } }] }],
  },
];

function cfg(kind: string, listener: ProxyConfig['listeners'][number], clusters: Cluster[]) {
  return {
    apiVersion: 'sluice.dev/v1alpha1' as const,
    kind: 'ProxyConfig' as const,
    version: kind,
    listeners: [listener],
    clusters,
  };
}

const vh = (cluster: string) => [
  { name: 'all', domains: ['*'], routes: [{ route: [{ cluster }] }] },
];

async function start(role: 'client' | 'server', config: ProxyConfig) {
  const p = new Proxy({
    log,
    bootstrap: {
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'ProxyBootstrap',
      identity: { workload: `${role}-v1`, namespace: 'default', serviceAccount: role },
      listeners: role === 'client' ? { outbound: { port: 0 } } : { inbound: { port: 0 } },
      config: { static: config },
    },
  });
  await p.start();
  p.setIdentity(await identity(role));
  return p;
}

interface Scenario {
  name: string;
  mtls: boolean;
  authz: boolean;
  jwt: boolean;
}
const scenarios: Scenario[] = [
  { name: 'plaintext', mtls: false, authz: false, jwt: false },
  { name: 'mtls', mtls: true, authz: false, jwt: false },
  { name: 'mtls_authz20', mtls: true, authz: true, jwt: false },
  { name: 'mtls_authz20_jwt', mtls: true, authz: true, jwt: true },
];

/** wrk as a child process (asynchronously: the proxies under test share this event loop). */
function wrk(port: number, headers: string[]): Promise<{ rps: number; p50: number; p99: number }> {
  const hs = headers.flatMap((h) => ['-H', h]);
  const child = spawn(
    'wrk',
    [
      '-t',
      '2',
      '-c',
      String(CONNECTIONS),
      '-d',
      `${DURATION}s`,
      '--latency',
      ...hs,
      `http://127.0.0.1:${port}/`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  return new Promise((resolve) => {
    child.on('close', () => {
      const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(text)?.[1] ?? 0);
      const ms = (label: string) => {
        const m = new RegExp(`${label}\\s+([0-9.]+)(us|ms|s)`).exec(text);
        if (!m) return 0;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
      };
      const errors = /Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1];
      if (errors) console.error(`  non-2xx responses: ${errors}`);
      resolve({ rps, p50: ms('50%'), p99: ms('99%') });
    });
  });
}

const results: Record<string, { rps: number; p50: number; p99: number }> = {};
for (const s of scenarios) {
  const server = await start(
    'server',
    cfg(
      s.name,
      {
        name: 'inbound',
        virtualHosts: vh('app'),
        ...(s.mtls ? { tls: { mode: 'STRICT' as const } } : {}),
        ...(s.authz ? { authorization: { policies } } : {}),
        ...(s.jwt
          ? {
              jwtRules: [
                {
                  issuer: 'https://issuer',
                  audiences: ['api'],
                  jwks: JSON.stringify({ keys: [jwk] }),
                  forwardOriginalToken: true,
                },
              ],
            }
          : {}),
      },
      [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
    ),
  );
  const inbound = server.ports().inbound as number;
  const client = await start(
    'client',
    cfg(s.name, { name: 'outbound', virtualHosts: vh('server') }, [
      {
        name: 'server',
        endpoints: [{ address: '127.0.0.1', port: inbound }],
        ...(s.mtls ? { tls: { mode: 'ISTIO_MUTUAL' as const } } : {}),
      },
    ]),
  );
  const port = client.ports().outbound as number;
  const headers = s.jwt ? [`authorization: Bearer ${token}`] : [];
  await wrk(port, headers); // warm-up run, discarded
  results[s.name] = await wrk(port, headers);
  console.error(
    `${s.name.padEnd(18)} ${results[s.name]!.rps.toFixed(0).padStart(7)} rps  p50 ${results[s.name]!.p50.toFixed(2)} ms  p99 ${results[s.name]!.p99.toFixed(2)} ms`,
  );
  await client.stop(100);
  await server.stop(100);
}
app.closeAllConnections();
app.close();
const base = results.plaintext!.rps || 1;
const figures: Record<string, number> = {
  load_average_1m: Math.round(loadavg()[0]! * 100) / 100,
  duration_s: DURATION,
  connections: CONNECTIONS,
};
for (const [k, v] of Object.entries(results)) {
  figures[`${k}_rps`] = Math.round(v.rps);
  figures[`${k}_p50_ms`] = Math.round(v.p50 * 1000) / 1000;
  figures[`${k}_p99_ms`] = Math.round(v.p99 * 1000) / 1000;
  if (k !== 'plaintext') figures[`${k}_vs_plaintext`] = Math.round((v.rps / base) * 1000) / 1000;
}
console.log(JSON.stringify(figures));
