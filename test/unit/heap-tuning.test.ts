// `hoopgate serve` sets V8's heap growing factor for a replica holding many approvals (issue #13),
// unless node was started with a setting of its own. What the factor does to RSS is the held cell's
// figure (`npm run bench -- --held --held-h2`), not something a unit test can show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { servingHeapFlag, tuneHeapForServing } from '../../packages/gateway/src/lib/heap-tuning.js';

test('an operator’s own --heap-growing-percent on node’s command line is left alone', () => {
  assert.equal(tuneHeapForServing(['--heap-growing-percent=50']), false);
  assert.equal(tuneHeapForServing(['--max-old-space-size=512', '--heap_growing_percent=0']), false);
});

test('without one, serve sets a growing factor of 1.2', () => {
  assert.equal(tuneHeapForServing(['--enable-source-maps']), true);
  assert.equal(servingHeapFlag, '--heap-growing-percent=20');
});
