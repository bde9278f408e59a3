// `hoopgate serve` sets V8's heap growing factor for a replica holding many approvals (issue #13),
// unless the operator started node with a setting of their own. What the factor does to RSS is the
// held cell's figure (`npm run bench -- --held --held-h2`), not something a unit test can show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { servingHeapFlag, tuneHeapForServing } from '../../packages/gateway/src/lib/heap-tuning.js';

test('an operator’s own --heap-growing-percent (command line or NODE_OPTIONS) is left alone', () => {
  assert.equal(tuneHeapForServing(['--heap-growing-percent=50'], ''), false);
  assert.equal(tuneHeapForServing([], '--max-old-space-size=512 --heap_growing_percent=0'), false);
});

test('without one, serve sets a growing factor of 1.2', () => {
  assert.equal(tuneHeapForServing(['--enable-source-maps'], '--max-old-space-size=512'), true);
  assert.equal(servingHeapFlag, '--heap-growing-percent=20');
});
