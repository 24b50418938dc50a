// The local mesh end to end: a git repository with a frontend and two backend versions,
// `sluice up` (as a library) running real workload processes, sidecars, the ingress gateway,
// discovery with the CA, and the mesh compiler. Requests go through the gateway, as a user's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { pino } from 'pino';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startController, type RunningController } from '../../src/controller/runner.js';
import { TempDirs, WorkRepo } from '../source/support/git.js';
import { waitFor } from '../source/support/time.js';
import { selfSignedCert } from '../support/certs.js';

const tmp = new TempDirs();
let c: RunningController;
let repo: WorkRepo;
let privateKey: Parameters<SignJWT['sign']>[0];

const deployment = (
  name: string,
  app: string,
  version: string,
  env: Record<string, string> = {},
) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: shop
spec:
  selector:
    matchLabels: {app: ${app}, version: ${version}}
  template:
    metadata:
      labels: {app: ${app}, version: ${version}}
    spec:
      containers:
        - name: main
          command: ["node", "demo-server/server.mjs"]
          env:
            - {name: VERSION, value: ${version}}
            - {name: SERVICE_NAME, value: ${app}}
${Object.entries(env)
  .map(([k, v]) => `            - {name: ${k}, value: "${v}"}`)
  .join('\n')}
          ports: [{name: http, containerPort: 9080}]
          # Generous on a loaded test machine: a replica that misses a few probes stays ready.
          readinessProbe:
            httpGet: {path: /readyz, port: 9080}
            periodSeconds: 1
            timeoutSeconds: 5
            failureThreshold: 30
`;

const service = (name: string) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: shop
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 9080, targetPort: 9080}]
`;

function manifests(jwks: string): Record<string, string> {
  return {
    'apps/frontend.yaml':
      deployment('frontend', 'frontend', 'v1', { BACKEND_URL: 'http://backend:9080/' }) +
      '---\n' +
      service('frontend'),
    'apps/backend.yaml':
      deployment('backend-v1', 'backend', 'v1') +
      '---\n' +
      deployment('backend-v2', 'backend', 'v2') +
      '---\n' +
      service('backend'),
    'routing/gateway.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: shop
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*"]
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [shop.example.com]
      tls: {mode: SIMPLE, credentialName: shop-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: frontend
  namespace: shop
spec:
  hosts: ["*"]
  gateways: [public]
  http:
    - route:
        - destination: {host: frontend, port: {number: 9080}}
`,
    'routing/backend.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: backend
  namespace: shop
spec:
  host: backend
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend
  namespace: shop
spec:
  hosts: [backend]
  http:
    - match:
        - headers:
            end-user: {exact: jason}
      route:
        - destination: {host: backend, subset: v2}
    - route:
        - destination: {host: backend, subset: v1}
          weight: 70
        - destination: {host: backend, subset: v2}
          weight: 30
`,
    'security/policies.yaml': `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: shop
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: shop
spec:
  selector:
    matchLabels: {app: frontend}
  action: DENY
  rules:
    - to:
        - operation: {paths: ["/admin", "/admin/*"]}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: shop
spec:
  selector:
    matchLabels: {app: frontend}
  jwtRules:
    - issuer: https://issuer.example
      audiences: [shop]
      jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: secure-needs-jwt
  namespace: shop
spec:
  selector:
    matchLabels: {app: frontend}
  action: ALLOW
  rules:
    - from:
        - source: {requestPrincipals: ["*"]}
      to:
        - operation: {paths: ["/secure"]}
    - to:
        - operation: {notPaths: ["/secure"]}
`,
  };
}

/** `<dir>/shop-cert/tls.crt|key`: the gateway's credential for shop.example.com (openssl). */
let credentials = '';
let stateDir = '';

before(async () => {
  credentials = tmp.make('sluice-mesh-credentials-');
  mkdirSync(join(credentials, 'shop-cert'));
  selfSignedCert(
    'shop.example.com',
    join(credentials, 'shop-cert', 'tls.crt'),
    join(credentials, 'shop-cert', 'tls.key'),
  );
  const keys = await generateKeyPair('RS256');
  privateKey = keys.privateKey;
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  repo = WorkRepo.init(tmp.make('sluice-mesh-repo-'));
  mkdirSync(join(repo.dir, 'demo-server'));
  copyFileSync(
    join(import.meta.dirname, '..', '..', 'examples', 'demo-server', 'server.mjs'),
    join(repo.dir, 'demo-server', 'server.mjs'),
  );
  repo.commit(manifests(JSON.stringify({ keys: [jwk] })));
  c = await startController({
    source: repo.dir,
    intervalMs: 3_600_000,
    stateDir: (stateDir = join(tmp.make('sluice-mesh-state-'), 'state')),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    fleet: {
      gatewayListen: '127.0.0.1:0',
      prometheus: 'off',
      gatewayCredentialsDir: credentials,
      accessLogSampling: 1,
    },
  });
  // Ready: every replica ready, every proxy SYNCED, and the chain answers through the gateway.
  await waitFor(
    async () => {
      const gw = c.gatewayUrl;
      if (!gw || !c.controller.ready || !fleetSettled()) return false;
      const res = await fetch(gw + '/').catch(() => undefined);
      if (res?.status !== 200) return false;
      const body = (await res.json()) as { backends?: { status: number }[] };
      return body.backends?.[0]?.status === 200;
    },
    'the frontend answering through the gateway with its backend',
    120_000,
  ).catch(async (err: Error) => {
    // Say what state the mesh is in: that is what a failure here needs.
    const proxies = await fetch(c.url + '/api/v1/proxies').then((r) => r.text());
    const events = await fetch(c.url + '/api/v1/events').then((r) => r.text());
    const last = c.gatewayUrl
      ? await fetch(c.gatewayUrl + '/').then(
          (r) => r.text(),
          (e: Error) => e.message,
        )
      : 'no gateway';
    throw new Error(
      `${err.message}\nlast answer: ${last}\nproxies: ${proxies}\nevents: ${events.slice(-4000)}`,
    );
  });
});

after(async () => {
  await c?.stop();
  tmp.cleanup();
});

/** Every workload has all its replicas ready and every proxy runs its latest config. */
function fleetSettled(): boolean {
  const workloads = c.platform.status();
  const proxies = c.discovery?.status() ?? [];
  return (
    workloads.length > 0 &&
    workloads.every((w) => w.replicas > 0 && w.readyReplicas === w.replicas) &&
    proxies.length > 0 &&
    proxies.every((p) => p.state === 'SYNCED')
  );
}

interface Answer {
  service: string;
  version: string;
  backends: { status: number; body?: Answer }[];
}

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch((c.gatewayUrl as string) + path, { headers });
  const text = await res.text();
  let body: Answer | undefined;
  try {
    body = JSON.parse(text) as Answer;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

test('gateway → frontend → backend: header routing and weighted routing', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await get('/', { 'end-user': 'jason' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body?.backends[0]?.body?.version, 'v2', 'end-user: jason goes to v2');
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const r = await get('/');
    assert.equal(r.status, 200, r.text);
    const v = r.body?.backends[0]?.body?.version ?? 'none';
    seen.set(v, (seen.get(v) ?? 0) + 1);
  }
  assert.ok(
    (seen.get('v1') ?? 0) > 0 && (seen.get('v2') ?? 0) > 0,
    `a 70/30 split reaches both: ${JSON.stringify([...seen])}`,
  );
  assert.equal((seen.get('v1') ?? 0) + (seen.get('v2') ?? 0), 60);
});

/** Access-log lines (the proxies' JSON lines of component access-log) in the fleet's log files. */
function accessLines(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const logs = join(stateDir, 'logs');
  for (const f of readdirSync(logs, { recursive: true }) as string[]) {
    if (!f.endsWith('.log')) continue;
    for (const line of readFileSync(join(logs, f), 'utf8').split('\n')) {
      if (!line.includes('"access-log"')) continue;
      try {
        out.push({ ...(JSON.parse(line) as Record<string, unknown>), file: f });
      } catch {
        /* a line being written */
      }
    }
  }
  return out;
}

test('--access-log: the gateway and the sidecars log the request under one request id', async () => {
  const id = `e2e-access-${Date.now()}`;
  assert.equal((await get('/', { 'x-request-id': id })).status, 200);
  const lines = await waitFor(() => {
    const mine = accessLines().filter((l) => l.requestId === id);
    const listeners = new Set(mine.map((l) => l.listener));
    return listeners.has('gateway') && listeners.has('inbound') ? mine : null;
  }, 'access-log lines of the gateway and a sidecar');
  const gw = lines.find((l) => l.listener === 'gateway') as Record<string, unknown>;
  assert.equal(gw.status, 200);
  assert.equal(gw.path, '/');
  assert.match(String(gw.file), /^istio-system\//);
  const inbound = lines.find((l) => l.listener === 'inbound') as Record<string, unknown>;
  assert.match(String(inbound.file), /\.sidecar\.log$/);
});

test('an HTTPS Gateway server: TLS terminated at the gateway with its credentialName', async () => {
  const gw = new URL(c.gatewayUrl as string);
  const answer = await new Promise<{ status: number; body: string; cn: string }>((ok, fail) => {
    const req = https.request(
      {
        host: gw.hostname,
        port: Number(gw.port),
        path: '/',
        servername: 'shop.example.com',
        headers: { host: 'shop.example.com' },
        ca: readFileSync(join(credentials, 'shop-cert', 'tls.crt')),
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
          ok({ status: res.statusCode ?? 0, body, cn: String(cert.subject?.CN) });
        });
      },
    );
    req.on('error', fail);
    req.end();
  });
  assert.equal(answer.cn, 'shop.example.com');
  assert.equal(answer.status, 200, answer.body);
  assert.equal((JSON.parse(answer.body) as Answer).service, 'frontend');
});

test('STRICT mTLS: the mesh talks mutual TLS, a plaintext client at a sidecar is refused', async () => {
  type Row = {
    id: string;
    kind: string;
    address: string;
    state: string;
    certificateNotAfter: string | null;
  };
  // Every proxy runs the latest config (a recompile may be on its way: wait for the ACKs).
  const proxies = await waitFor(
    async () => {
      const body = (await (await fetch(c.url + '/api/v1/proxies')).json()) as { proxies: Row[] };
      return body.proxies.every((p) => p.state === 'SYNCED') ? body.proxies : undefined;
    },
    'every proxy SYNCED',
    60_000,
  );
  const sidecars = proxies.filter((p) => p.kind === 'sidecar');
  assert.equal(sidecars.length, 3);
  for (const p of proxies) assert.ok(p.certificateNotAfter, `${p.id} has a workload certificate`);
  const backend = sidecars.find((p) => p.id.includes('/backend-v1/')) as { address: string };
  await assert.rejects(fetch(`http://${backend.address}/`), 'plaintext to a STRICT sidecar fails');
});

test('AuthorizationPolicy DENY and a JWT-protected path', async () => {
  assert.equal((await get('/admin')).status, 403);
  assert.equal((await get('/admin/users')).status, 403);
  assert.equal((await get('/public')).status, 200);

  assert.equal((await get('/secure')).status, 403, 'no token: denied by the ALLOW policy');
  const token = await new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer('https://issuer.example')
    .setAudience('shop')
    .setExpirationTime('5m')
    .sign(privateKey);
  assert.equal((await get('/secure', { authorization: `Bearer ${token}` })).status, 200);
  const wrongAudience = await new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer('https://issuer.example')
    .setAudience('other')
    .setExpirationTime('5m')
    .sign(privateKey);
  assert.equal((await get('/secure', { authorization: `Bearer ${wrongAudience}` })).status, 401);
});

test('a regex the proxies cannot compile is refused at load: the previous routing keeps serving, no proxy NACKs', async () => {
  await waitFor(fleetSettled, 'the fleet settled', 60_000);
  const good = await get('/', { 'end-user': 'jason' });
  assert.equal(good.status, 200);
  // It passes the schema; every sidecar of the namespace would reject its whole config.
  const broken = manifests('{}')['routing/backend.yaml'] as string;
  const sha = repo.commit({
    'routing/backend.yaml': broken.replace(
      'end-user: {exact: jason}',
      'end-user: {regex: "(unclosed"}',
    ),
  });
  await c.poller.trigger('test');
  await waitFor(() => c.controller.revision?.endsWith(sha), 'the broken revision applied', 60_000);
  const refused = c.controller.status().diagnostics.find((d) => d.code === 'SLUICE_VALUE_INVALID');
  assert.equal(refused?.file, 'routing/backend.yaml');
  assert.equal(refused?.path, 'spec.http[0].match[0].headers.end-user.regex');
  await waitFor(fleetSettled, 'the fleet settled', 60_000);
  const still = await get('/', { 'end-user': 'jason' });
  assert.equal(still.status, 200);
  assert.equal(still.body?.backends[0]?.body?.version, 'v2', 'the previous routing keeps serving');
});

test('a config a proxy refuses is NACKed and its previous one keeps serving', async () => {
  await waitFor(fleetSettled, 'the fleet settled', 60_000);
  // A certificate the gateway cannot read: only the proxy reading it can tell.
  const gateway = manifests('{}')['routing/gateway.yaml'] as string;
  const sha = repo.commit({
    'routing/gateway.yaml': gateway.replace('credentialName: shop-cert', 'credentialName: gone'),
  });
  await c.poller.trigger('test');
  await waitFor(() => c.controller.revision?.endsWith(sha), 'the revision applied', 60_000);
  const nacked = await waitFor(
    async () => {
      const body = (await (await fetch(c.url + '/api/v1/proxies')).json()) as {
        proxies: { id: string; state: string; reason: { code: string } | null }[];
      };
      return body.proxies.find((p) => p.state === 'NACKED');
    },
    'a proxy NACKing the config',
    60_000,
  );
  assert.ok(nacked.reason?.code, 'the NACK carries a coded reason');
  const still = await get('/', { 'end-user': 'jason' });
  assert.equal(still.status, 200);
  assert.equal(still.body?.backends[0]?.body?.version, 'v2', 'the previous config keeps serving');
});
