// Issue #13: an outcome is not committed on its own; it rides with the next request's durable write
// (one append, one transaction), or goes out after outcomeDelayMs, on flush() and on close().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import type { AuditOutcome, AuditStart } from '../../packages/gateway/src/audit/types.js';
import { isHoopError } from '../../packages/gateway/src/lib/errors.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditStore, Store } from '../../packages/gateway/src/store/types.js';

const ok: AuditOutcome = { status: 200, bytesOut: 10, durationMs: 3 };

function start(requestId: string): AuditStart {
  return {
    requestId,
    time: 1_700_000_000_000,
    cluster: 'prod',
    identity: 'ci-deployer',
    principal: { issuer: 'https://idp.test', subject: 'bot', groups: ['ci'] },
    method: 'GET',
    path: `/api/v1/namespaces/default/pods/${requestId}`,
    info: {
      verb: 'get',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: 'default',
      name: requestId,
      isResourceRequest: true,
    },
    decision: { effect: 'allow', reason: 'rbac', serviceAccount: 'agents/ci' },
  };
}

/** Counts the store's appends and the kinds each carried; the next `fail` appends reject. */
function counting(audit: AuditStore) {
  const appends: string[][] = [];
  const state = { fail: 0 };
  const store: AuditStore = {
    ...audit,
    chain: audit.chain,
    async append(drafts) {
      appends.push(drafts.map((d) => d.kind));
      if (state.fail > 0) {
        state.fail -= 1;
        throw new Error('disk on fire');
      }
      return audit.append(drafts);
    },
  };
  return { store, appends, state };
}

async function setup(outcomeDelayMs: number) {
  const store: Store = await createStore('sqlite::memory:', { replicaId: 'r-1' });
  const spy = counting(store.audit);
  let now = 1_700_000_000_000;
  const recorder = createAuditRecorder({
    store: spy.store,
    replicaId: 'r-1',
    clock: () => (now += 1),
    maxBodyBytes: 16,
    bodies: false,
    sessionIdleMs: 60_000,
    retryBaseMs: 5,
    retryMaxMs: 20,
    outcomeDelayMs,
  });
  const kinds = async () =>
    (await store.audit.listRecords({}))
      .sort((x, y) => x.seq - y.seq)
      .map((r) => `${r.kind}:${String(r.data['path'] ?? '')}`);
  return { store, spy, recorder, kinds };
}

test('an outcome goes out in the next request’s write: one append for both, outcome first', async () => {
  const { store, spy, recorder, kinds } = await setup(60_000);
  const first = await recorder.begin(start('a'));
  first.complete(ok);
  assert.equal(recorder.stats().pendingOutcomes, 1, 'queued, not written');
  assert.equal(spy.appends.length, 1, 'no commit of its own');
  await recorder.begin(start('b'));
  assert.deepEqual(spy.appends, [['request'], ['outcome', 'request']]);
  const records = await store.audit.listRecords({ eventIds: [first.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
  );
  assert.equal(recorder.stats().pendingOutcomes, 0);
  await recorder.close();
  assert.deepEqual(await kinds(), [
    'request:/api/v1/namespaces/default/pods/a',
    'outcome:',
    'request:/api/v1/namespaces/default/pods/b',
  ]);
  await store.close();
});

test('with no next request, the outcome is written after outcomeDelayMs', async () => {
  const { store, spy, recorder } = await setup(100);
  const handle = await recorder.begin(start('a'));
  handle.complete(ok);
  await sleep(5);
  assert.equal(spy.appends.length, 1, 'not yet');
  const deadline = Date.now() + 5_000;
  while (spy.appends.length < 2 && Date.now() < deadline) await sleep(5);
  assert.deepEqual(spy.appends, [['request'], ['outcome']]);
  await recorder.flush();
  assert.equal((await store.audit.listRecords({ eventIds: [handle.eventId] })).length, 2);
  await recorder.close();
  await store.close();
});

test('flush() writes the queued outcomes at once and resolves when they are written', async () => {
  const { store, recorder } = await setup(60_000);
  const handle = await recorder.begin(start('a'));
  handle.complete(ok);
  await recorder.flush();
  const records = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
  );
  assert.equal(recorder.stats().pendingOutcomes, 0);
  await recorder.close();
  await store.close();
});

test('close() writes a queued outcome (nothing lost on a clean stop)', async () => {
  const { store, recorder } = await setup(60_000);
  const handle = await recorder.begin(start('a'));
  handle.complete(ok);
  await recorder.close();
  const records = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
  );
  await store.close();
});

test('a refused request does not take the outcomes it carried down with it: they are retried', async () => {
  const { store, spy, recorder } = await setup(60_000);
  const first = await recorder.begin(start('a'));
  first.complete(ok);
  spy.state.fail = 1;
  await assert.rejects(recorder.begin(start('b')), (error: unknown) => {
    assert.ok(isHoopError(error));
    assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
    return true;
  });
  await recorder.flush();
  const records = await store.audit.listRecords({});
  assert.deepEqual(
    records.map((r) => `${r.kind}:${r.eventId === first.eventId ? 'a' : 'other'}`),
    ['request:a', 'outcome:a'],
    'the outcome of a is written, b is not recorded',
  );
  assert.deepEqual(spy.appends, [['request'], ['outcome', 'request'], ['outcome']]);
  await recorder.close();
  await store.close();
});

test('flush() with the store down rejects at the first failed write instead of waiting; the records are kept and written once it is back', async () => {
  const { store, spy, recorder } = await setup(60_000);
  const handle = await recorder.begin(start('a'));
  handle.complete(ok);
  spy.state.fail = 1_000_000;
  await assert.rejects(recorder.flush(), (error: unknown) => {
    assert.ok(isHoopError(error));
    assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
    return true;
  });
  assert.equal(recorder.stats().pendingOutcomes, 1, 'still queued, still retried');
  spy.state.fail = 0;
  await recorder.flush();
  const records = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
  );
  await recorder.close();
  await store.close();
});

test('flush() waits for a request write that carries queued outcomes', async () => {
  const { store, recorder } = await setup(60_000);
  const first = await recorder.begin(start('a'));
  first.complete(ok);
  const second = recorder.begin(start('b')); // takes a's outcome into its own write
  await recorder.flush();
  const records = await store.audit.listRecords({ eventIds: [first.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
    'the carried outcome is durable when flush() resolves',
  );
  await second;
  await recorder.close();
  await store.close();
});
