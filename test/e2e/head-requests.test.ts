// Issue #12 item 1: a HEAD request (`curl -I`) on an allowed resource, and a response the masker
// refuses, used to destroy the upstream body with no error listener: the RequestAbortedError was
// unhandled and the gateway process exited. Each case here is followed by a normal call that must
// still be answered. The test world runs the gateway in this process, where node's test runner
// would swallow the uncaught error, so the file collects uncaught errors itself and asserts none.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const uncaught: unknown[] = [];
process.on('uncaughtException', (error) => uncaught.push(error));
process.on('unhandledRejection', (error) => uncaught.push(error));

describe('HEAD requests leave the gateway serving', () => {
  let world: TestWorld;
  let token: string;
  before(async () => {
    world = await startTestWorld();
    token = await world.token('ci-deployer');
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  async function assertStillServing(): Promise<void> {
    // Give an unhandled 'error' event (emitted on a later tick) the chance to end the process.
    await sleep(50);
    assert.deepEqual(uncaught, [], 'no error escaped the gateway');
    const response = await world.call('/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json().kind, 'PodList');
  }

  for (const path of [
    '/api/v1/namespaces/staging/secrets/db-credentials',
    '/api/v1/namespaces/staging/secrets',
    '/api/v1/namespaces/staging/pods',
  ]) {
    test(`HEAD ${path} answers with headers only`, async () => {
      const response = await world.call(path, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      assert.equal(response.text, '');
      assert.match(String(response.headers['audit-id']), /.+/);
      await assertStillServing();
    });
  }

  test('many HEAD requests at once', async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        world.call('/api/v1/namespaces/staging/secrets', {
          method: 'HEAD',
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
    );
    assert.deepEqual(new Set(responses.map((r) => r.status)), new Set([200]));
    await assertStillServing();
  });
});
