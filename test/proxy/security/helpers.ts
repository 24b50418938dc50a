/**
 * Security test helpers: a real CA (the mesh's, in memory) issuing workload identities from
 * the proxy's own key + CSR, proxies with inbound/outbound security sections, and a real
 * mTLS client.
 */
import https from 'node:https';
import type { Cluster, Listener, ProxyConfig } from '../../../src/api/proxy-config.js';
import { CertificateAuthority } from '../../../src/mesh/ca/index.js';
import { generateKeyAndCsr } from '../../../src/proxy/security/index.js';
import type { IdentityMaterial } from '../../../src/proxy/security/identity.js';
import { bootstrap, silent, startProxyInProcess, type Response } from '../helpers.js';

export type { Response };

export function newCa(trustDomain = 'cluster.local'): Promise<CertificateAuthority> {
  return CertificateAuthority.open({ logger: silent, trustDomain });
}

export interface Issued extends IdentityMaterial {
  certChainPem: string;
  trustBundlePem: string;
  spiffeId: string;
  serial: string;
}

/** A workload identity for ns/sa: key and CSR made as the proxy makes them, signed by `ca`. */
export async function issue(ca: CertificateAuthority, ns: string, sa: string): Promise<Issued> {
  const spiffeId = `spiffe://${ca.trustDomain}/ns/${ns}/sa/${sa}`;
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(spiffeId);
  const c = await ca.sign({ csr: csrPem, spiffeId });
  return {
    certChainPem: c.certificateChain,
    privateKeyPem,
    trustBundlePem: c.trustBundle.join('\n'),
    spiffeId,
    serial: c.serialNumber,
  };
}

/** An inbound listener routing everything to cluster `app` at `appPort`. */
export function inboundConfig(
  appPort: number,
  listener: Partial<Listener> = {},
  version = 'v1',
): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [
      {
        name: 'inbound',
        virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ route: [{ cluster: 'app' }] }] }],
        ...listener,
      },
    ],
    clusters: [
      {
        name: 'app',
        service: 'server.default.svc.cluster.local',
        endpoints: [{ address: '127.0.0.1', port: appPort }],
      },
    ],
  };
}

/** An outbound listener sending everything to cluster `server` (the server proxy's inbound). */
export function outboundConfig(
  serverPort: number,
  tls?: Cluster['tls'],
  version = 'v1',
): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [
      {
        name: 'outbound',
        virtualHosts: [
          { name: 'all', domains: ['*'], routes: [{ route: [{ cluster: 'server' }] }] },
        ],
      },
    ],
    clusters: [
      {
        name: 'server',
        service: 'server.default.svc.cluster.local',
        endpoints: [
          {
            address: '127.0.0.1',
            port: serverPort,
            workload: 'server-v1',
            namespace: 'default',
            version: 'v1',
          },
        ],
        ...(tls ? { tls } : {}),
      },
    ],
  };
}

/** A proxy of workload `<name>-v1` (service account `name`) with one listener and `identity`. */
async function proxyOf(
  name: string,
  listener: 'inbound' | 'outbound',
  cfg: ProxyConfig,
  identity: IdentityMaterial | null,
) {
  const b = bootstrap(cfg, {
    identity: {
      workload: `${name}-v1`,
      namespace: 'default',
      serviceAccount: name,
      labels: { app: name, version: 'v1' },
    },
    listeners: { [listener]: { port: 0 }, admin: { port: 0 } },
  });
  const p = await startProxyInProcess(b);
  if (identity !== null) {
    const r = p.proxy.setIdentity(identity);
    if (!r.ok) throw new Error(`identity: ${r.error?.message}`);
  }
  return p;
}

/** A server-side proxy (inbound listener only) with `identity`. */
export const serverProxy = (cfg: ProxyConfig, identity: IdentityMaterial | null) =>
  proxyOf('server', 'inbound', cfg, identity);

/** A client-side proxy (outbound listener only) with `identity`. */
export const clientProxy = (cfg: ProxyConfig, identity: IdentityMaterial | null) =>
  proxyOf('client', 'outbound', cfg, identity);

/** One request over mTLS with `id`'s certificate (fresh connection; no server-name check). */
export function mtlsRequest(
  port: number,
  id: { certChainPem: string; privateKeyPem: string; trustBundlePem: string },
  opts: { path?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<Response & { peerSerial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
        cert: id.certChainPem,
        key: id.privateKeyPem,
        ca: id.trustBundlePem,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const peerSerial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
          .serialNumber;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            peerSerial,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The admin port's metrics text. */
export async function metrics(admin: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
}

/** Polls `fn` until it returns true, at most `ms` (no fixed sleeps). */
export async function eventually(fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  }
}
