/**
 * Incremental compile: given the running version, compileConfig reuses the compiled clusters
 * and virtual hosts whose source objects it was compiled from (what a `config-delta` keeps),
 * and compiles again whatever changed or depends on a cluster that changed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cluster, ProxyConfig, VirtualHost } from '../../src/api/proxy-config.js';
import { compileConfig, type CompileContext } from '../../src/proxy/compile.js';
import { dispatchRoute } from '../../src/proxy/filters.js';
import { ClusterManager } from '../../src/proxy/upstream/cluster.js';

const ctx = (): CompileContext => ({
  identityLabels: {},
  clusters: new ClusterManager(),
  serverFilters: [],
  dispatch: dispatchRoute,
});

const cluster = (name: string, port = 8080): Cluster => ({
  name,
  endpoints: [{ address: '127.0.0.1', port }],
});
const vhost = (name: string, cluster: string): VirtualHost => ({
  name,
  domains: [name],
  routes: [{ route: [{ cluster }] }],
});

function config(version: string, clusters: Cluster[], vhosts: VirtualHost[]): ProxyConfig {
  return {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'ProxyConfig',
    version,
    listeners: [{ name: 'outbound', virtualHosts: vhosts }],
    clusters,
  };
}

test('unchanged sources are reused; a changed cluster recompiles the hosts that route to it', () => {
  const c = ctx();
  const [ca, cb] = [cluster('ca'), cluster('cb')];
  const [a, b] = [vhost('a', 'ca'), vhost('b', 'cb')];
  const v1 = compileConfig(config('v1', [ca, cb], [a, b]), c);
  v1.activate();
  const host = (v: typeof v1, name: string) =>
    v.listeners.get('outbound')?.vhosts.find(name) ?? assert.fail(`no host ${name}`);

  // Same objects: everything reused.
  const v2 = compileConfig(config('v2', [ca, cb], [a, b]), c, v1);
  assert.equal(v2.clusters.get('ca'), v1.clusters.get('ca'));
  assert.equal(host(v2, 'a'), host(v1, 'a'));
  assert.equal(host(v2, 'b'), host(v1, 'b'));

  // A new object for cluster cb (an endpoint moved): cb and the host routing to it are new.
  const cb2 = cluster('cb', 8081);
  const v3 = compileConfig(config('v3', [ca, cb2], [a, b]), c, v2);
  assert.equal(v3.clusters.get('ca'), v2.clusters.get('ca'));
  assert.notEqual(v3.clusters.get('cb'), v2.clusters.get('cb'));
  assert.equal(host(v3, 'a'), host(v2, 'a'));
  assert.notEqual(host(v3, 'b'), host(v2, 'b'));
  assert.equal(host(v3, 'b').routes[0]?.destinations[0]?.cluster, v3.clusters.get('cb'));

  // Equal content in new objects (a whole config from a reconnect): compiled again, correct.
  const fresh = structuredClone(config('v4', [ca, cb2], [a, b]));
  const v4 = compileConfig(fresh, c, v3);
  assert.notEqual(host(v4, 'a'), host(v3, 'a'));
  assert.equal(host(v4, 'a').routes[0]?.destinations[0]?.cluster, v4.clusters.get('ca'));

  // A version that fails to compile reuses nothing wrongly and leaves the previous intact.
  assert.throws(() => compileConfig(config('bad', [ca], [a, b]), c, v4), /unknown cluster "cb"/);
  assert.equal(host(v4, 'b').routes[0]?.destinations[0]?.cluster, v4.clusters.get('cb'));
});
