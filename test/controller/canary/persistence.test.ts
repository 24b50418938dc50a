import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CANARY_ERROR_CODES,
  STATE_FILE,
  type CanaryRecord,
} from '../../../src/controller/canary/index.js';
import {
  apexService,
  canary,
  canarySpec,
  deployment,
  harness,
  versionOf,
  weights,
} from './support.js';

type Json = Record<string, unknown>;

const stored = (dir: string) =>
  (
    JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as {
      canaries: Record<string, CanaryRecord>;
    }
  ).canaries['test/podinfo'];

describe('canary controller: persistence', () => {
  it('a restarted controller resumes at the same weight and does not promote twice', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
    await h.advance(10_000);
    h.sync([deployment('2.0.0'), apexService, canary(spec)], 'r2');
    await h.advance(30_000);
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 30);
    assert.equal(stored(h.dir)?.state.canaryWeight, 30, 'stored after the transition');

    await h.restart(); // as after kill -9: a new controller reads the state directory
    let view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Progressing');
    assert.equal(view?.canaryWeight, 30);
    assert.equal(view?.revision, 'r2');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=70',
      'podinfo-canary=30',
    ]);
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '1.0.0');
    assert.equal(versionOf(h.find('Deployment', 'podinfo')), '2.0.0');
    // The schedule carries on: the next step one interval after the last tick.
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.canaryWeight, 40);
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Promoting');
    assert.equal(stored(h.dir)?.promotions, 1);
    assert.equal(stored(h.dir)?.state.phase, 'Promoting', 'recorded before it is acted on');

    await h.restart(); // crash right after the promotion was recorded
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Promoting');
    assert.equal(versionOf(h.find('Deployment', 'podinfo-primary')), '2.0.0');
    await h.advance(20_000);
    view = h.cc.get('test', 'podinfo');
    assert.equal(view?.phase, 'Succeeded');
    assert.equal(view?.promotions, 1, 'never two promotions');
    const copies = h.store
      .listEvents()
      .filter((e) => /^Copying podinfo.test template spec/.test(e.message));
    assert.equal(copies.length, 1);
  });

  it('a corrupt state file restarts every canary from Initializing with an event', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
    await h.advance(10_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
    writeFileSync(join(h.dir, STATE_FILE), '{"version": 1, "canaries": {"test/podinfo": {"sta');
    await h.restart();
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initializing');
    const events = h.store.listEvents();
    const reset = events.find((e) => e.reason === 'CanaryStateReset');
    assert.equal(reset?.code, 'SLUICE_CANARY_STATE_INVALID');
    assert.ok(
      events.some((e) => e.code === 'SLUICE_STATE_UNREADABLE'),
      'the file was set aside',
    );
    await h.advance(20_000);
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
  });

  it('a damaged record is repaired field by field, or discarded with the reason', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
    await h.advance(10_000);
    const file = JSON.parse(readFileSync(join(h.dir, STATE_FILE), 'utf8')) as {
      canaries: Record<string, Json>;
    };
    const rec = file.canaries['test/podinfo'] as Json;
    rec.route = { primary: 70, canary: 70 };
    (rec.state as Json).failedChecks = -3;
    writeFileSync(join(h.dir, STATE_FILE), JSON.stringify(file));
    await h.restart();
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initialized');
    assert.deepEqual(weights(h.find('VirtualService', 'podinfo')), [
      'podinfo-primary=100',
      'podinfo-canary=0',
    ]);
    const repaired = h.store.listEvents().find((e) => e.reason === 'CanaryStateRepaired');
    assert.match(repaired?.message ?? '', /failedChecks is not a count; route weights/);

    delete rec.promoted;
    writeFileSync(join(h.dir, STATE_FILE), JSON.stringify(file));
    await h.restart();
    assert.equal(h.cc.get('test', 'podinfo')?.phase, 'Initializing');
    assert.ok(
      h.store.listEvents().some((e) => /discarded.*no promoted spec/.test(e.message)),
      'says why it starts over',
    );
  });

  it('a deleted Canary terminates and leaves the committed objects in force', async (t) => {
    const h = harness(t);
    const spec = canarySpec();
    h.provider.set(h.successRateQuery(spec), 99.9);
    h.sync([deployment('1.0.0'), apexService, canary(spec)], 'r1');
    await h.advance(10_000);
    assert.equal(h.find('Deployment', 'podinfo-primary') !== undefined, true);
    h.sync([deployment('1.0.0'), apexService], 'r2');
    await h.advance(0);
    assert.equal(h.cc.list().length, 0);
    assert.equal(h.find('Deployment', 'podinfo-primary'), undefined);
    assert.deepEqual((h.find('Service', 'podinfo')?.spec as Json).selector, { app: 'podinfo' });
    assert.equal(stored(h.dir), undefined, 'its state is dropped');
    const text = await h.metrics.registry.metrics();
    assert.doesNotMatch(text, /sluice_canary_status\{/);
  });
});

describe('canary controller: error registry', () => {
  it('registers every code the canary controller uses, each with a sentence', () => {
    for (const [code, meaning] of Object.entries(CANARY_ERROR_CODES)) {
      assert.match(code, /^SLUICE_CANARY_[A-Z_]+$/);
      assert.ok(meaning.length > 20 && meaning.endsWith('.'), code);
    }
    const dir = join(import.meta.dirname, '../../../src/controller/canary');
    const controllerCodes = readFileSync(
      join(import.meta.dirname, '../../../src/controller/errors.ts'),
      'utf8',
    );
    for (const f of [
      'canary-controller.ts',
      'inputs.ts',
      'objects.ts',
      'record.ts',
      'routes.ts',
      'metrics.ts',
    ]) {
      for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/(SLUICE_[A-Z_]+)/g)) {
        const code = m[1] as string;
        assert.ok(
          code in CANARY_ERROR_CODES || controllerCodes.includes(`${code}:`),
          `${code} (${f}) is not registered`,
        );
      }
    }
  });
});
