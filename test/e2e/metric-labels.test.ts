// Issue #12 item 2 (metrics part): label values come from closed sets. Before the caller is known
// nothing derived from the path becomes a label, so unauthenticated requests with random resource
// names add no series (each used to stay in /hoop/metrics for the life of the process).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { requestLabels } from '../../packages/gateway/src/lib/metrics.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

describe('request metric labels', () => {
  test('requestLabels: nothing for an unknown caller; a resource name only when it looks like one', () => {
    assert.deepEqual(requestLabels(false, 'get', 'pods'), { verb: '', resource: '' });
    assert.deepEqual(requestLabels(true, 'list', 'pods'), { verb: 'list', resource: 'pods' });
    assert.deepEqual(requestLabels(true, 'get', 'deployments.apps'), { verb: 'get', resource: 'deployments.apps' });
    assert.deepEqual(requestLabels(true, 'get', 'x'.repeat(64)), { verb: 'get', resource: 'other' });
    assert.deepEqual(requestLabels(true, 'get', 'Pods<script>'), { verb: 'get', resource: 'other' });
    assert.deepEqual(requestLabels(true, 'get', ''), { verb: 'get', resource: '' });
  });

  describe('through the gateway', () => {
    let world: TestWorld;
    before(async () => {
      world = await startTestWorld();
    });
    after(async () => {
      await world?.assertNoCanaryLeaked();
      await world?.close();
    });

    const metricsText = async () => (await world.call('/hoop/metrics')).text;

    test('200 unauthenticated requests with random 2 KB resource names add no series and no label value', async () => {
      await world.call('/api/v1/namespaces/staging/warmup'); // the 401 series exists after one refusal
      const before = await metricsText();
      const names = Array.from({ length: 200 }, () => `r${randomBytes(1024).toString('hex')}`);
      for (const name of names) {
        const response = await world.call(`/api/v1/namespaces/staging/${name}`);
        assert.equal(response.status, 401);
      }
      const afterText = await metricsText();
      for (const name of names.slice(0, 5)) assert.ok(!afterText.includes(name), 'no path-derived label value');
      const series = (text: string) =>
        text.split('\n').filter((line) => line.startsWith('hoopgate_requests_total{')).length;
      assert.equal(series(afterText), series(before), 'no new hoopgate_requests_total series');
      assert.ok(afterText.length - before.length < 4096, `metrics grew by ${afterText.length - before.length} bytes`);
    });
  });
});
