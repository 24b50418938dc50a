// `sluice demo` as a user runs it: a real controller, fleet, gateway and (when installed, as
// .ci/run does) a real Prometheus; a healthy release must be promoted and a faulty one rolled
// back at the threshold, with the reason printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../cli/run-cli.js';

test('sluice demo promotes a healthy release and rolls back a faulty one', async () => {
  const r = await runCli(['demo']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /→ promoted: the primary runs 2\.0\.0/);
  assert.match(r.stdout, /→ rolled back: request-success-rate [\d.]+% < min 99% at weight \d+%/);
  assert.match(r.stdout, /summary: 2\.0\.0 promoted, 3\.0\.0 rolled back, in \d+s/);
  // Progress is shown step by step while the weight moves.
  assert.match(r.stdout, /Progressing +█░{9} {2}10%/);
  assert.match(r.stdout, /Succeeded/);
});
