// examples/bookinfo under the local platform: its six Deployments start from the committed
// YAML, and the demo servers chain through their sidecars (productpage → details and
// reviews, reviews v2/v3 → ratings). Until the mesh compiler lands, the sidecars' outbound
// routes are written here: every Service name → the ready sidecars of its app, round robin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ProxyConfig } from '../../src/api/proxy-config.js';
import { loadManifests } from '../../src/manifests/index.js';
import type { LocalPlatform } from '../../src/platform/local/index.js';
import { ROOT, get, localPlatform, until } from './helpers.js';

const DIR = join(ROOT, 'examples', 'bookinfo');

function outboundRoutes(
  p: LocalPlatform,
  services: string[],
  configFiles: Map<string, string>,
): void {
  const proxies = p.registry().proxies;
  for (const me of proxies) {
    const file = configFiles.get(me.id) as string;
    const config = JSON.parse(readFileSync(file, 'utf8')) as ProxyConfig;
    config.version = 'bookinfo-test';
    config.listeners = config.listeners.filter((l) => l.name !== 'outbound');
    config.clusters = config.clusters.filter((c) => !c.name.startsWith('outbound|'));
    config.listeners.push({
      name: 'outbound',
      virtualHosts: services.map((svc) => ({
        name: svc,
        domains: [svc, `${svc}:9080`, `${svc}.default`, `${svc}.default:9080`],
        routes: [{ route: [{ cluster: `outbound|9080||${svc}.default.svc.cluster.local` }] }],
      })),
    });
    for (const svc of services)
      config.clusters.push({
        name: `outbound|9080||${svc}.default.svc.cluster.local`,
        loadBalancer: { simple: 'ROUND_ROBIN' },
        endpoints: proxies
          .filter((x) => x.labels.app === svc && x.ready)
          .map((x) => ({ address: x.address, port: x.inboundPort, version: x.labels.version })),
      });
    writeFileSync(file, JSON.stringify(config));
  }
}

test('bookinfo runs from its YAML and chains through the sidecars', async (t) => {
  const files = readdirSync(DIR)
    .filter((n) => n.endsWith('.yaml'))
    .map((n) => ({ path: relative(ROOT, join(DIR, n)), content: readFileSync(join(DIR, n)) }));
  const loaded = loadManifests(files);
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  const deployments = loaded.objects.filter((o) => o.kind === 'Deployment');
  const services = loaded.objects.filter((o) => o.kind === 'Service').map((o) => o.name);
  assert.equal(deployments.length, 6);

  const configFiles = new Map<string, string>();
  const p = localPlatform(t, {
    bootstrapFor: (ctx) => {
      configFiles.set(ctx.instance.id, ctx.configFile);
      return ctx.bootstrap;
    },
  });
  await p.apply(
    deployments.map((d) => ({
      namespace: d.namespace,
      name: d.name,
      object: d.object,
      revision: 'test',
    })),
  );
  await p.waitFor(
    (x) => x.status().every((s) => s.phase === 'Running' && s.readyReplicas === 1),
    90_000,
  );
  const reg = p.registry();
  assert.deepEqual(
    reg.proxies.map((x) => `${x.labels.app}:${x.labels.version}:${x.serviceAccount}`),
    [
      'details:v1:bookinfo-details',
      'productpage:v1:bookinfo-productpage',
      'ratings:v1:bookinfo-ratings',
      'reviews:v1:bookinfo-reviews',
      'reviews:v2:bookinfo-reviews',
      'reviews:v3:bookinfo-reviews',
    ],
  );
  outboundRoutes(p, services, configFiles);
  const productpage = reg.proxies.find((x) => x.labels.app === 'productpage');
  assert.ok(productpage);
  await until(
    async () => (await get(productpage.inboundPort, '/productpage')).status === 200,
    'productpage',
  );

  type Page = { service: string; version: string; backends?: { status: number; body: Page }[] };
  const reviewVersions = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const a = await get(productpage.inboundPort, '/productpage', { 'end-user': 'jason' });
    assert.equal(a.status, 200, a.body);
    const page = a.json as unknown as Page;
    const [details, reviews] = page.backends ?? [];
    assert.deepEqual([details?.body.service, details?.body.version], ['details', 'v1']);
    assert.equal(reviews?.body.service, 'reviews');
    reviewVersions.add(reviews?.body.version ?? '');
    const ratings = reviews?.body.backends ?? [];
    if (reviews?.body.version === 'v1')
      assert.equal(ratings.length, 0, 'reviews v1 calls no ratings');
    else assert.deepEqual([ratings[0]?.status, ratings[0]?.body.service], [200, 'ratings']);
  }
  assert.deepEqual([...reviewVersions].sort(), ['v1', 'v2', 'v3']);
});
