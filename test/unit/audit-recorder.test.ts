import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuditRecorder, truncateBody } from '../../packages/gateway/src/audit/recorder.js';
import { kubectlSessionId } from '../../packages/gateway/src/audit/sessions.js';
import type { AuditOutcome, AuditStart } from '../../packages/gateway/src/audit/types.js';
import { isHoopError } from '../../packages/gateway/src/lib/errors.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditStore, Store } from '../../packages/gateway/src/store/types.js';

function start(overrides: Partial<AuditStart> = {}): AuditStart {
  return {
    requestId: 'r1',
    time: 1_700_000_000_000,
    cluster: 'prod',
    identity: 'ci-deployer',
    principal: { issuer: 'https://idp.test', subject: 'bot', groups: ['ci'] },
    method: 'GET',
    path: '/api/v1/namespaces/default/pods',
    info: {
      verb: 'list',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: 'default',
      name: '',
      isResourceRequest: true,
    },
    decision: { effect: 'allow', reason: 'rbac', serviceAccount: 'agents/ci' },
    ...overrides,
  };
}

const ok: AuditOutcome = { status: 200, bytesOut: 10, durationMs: 3 };

async function memoryStore(): Promise<Store> {
  return createStore('sqlite::memory:', { replicaId: 'r-1' });
}

/** An AuditStore whose next `failures` appends reject, to exercise retries and refusals. */
function flaky(audit: AuditStore, failures: { count: number }): AuditStore {
  return {
    ...audit,
    chain: audit.chain,
    async append(drafts) {
      if (failures.count > 0) {
        failures.count -= 1;
        throw new Error('disk on fire');
      }
      return audit.append(drafts);
    },
  };
}

function recorderFor(store: AuditStore | Store, overrides: Partial<Parameters<typeof createAuditRecorder>[0]> = {}) {
  let now = 1_700_000_000_000;
  return createAuditRecorder({
    store,
    replicaId: 'r-1',
    clock: () => (now += 1),
    maxBodyBytes: 16,
    bodies: true,
    sessionIdleMs: 60_000,
    retryBaseMs: 5,
    retryMaxMs: 20,
    ...overrides,
  });
}

test('begin writes the request before resolving; complete appends the outcome as a second chain record', async () => {
  const store = await memoryStore();
  const recorder = recorderFor(store);
  const handle = await recorder.begin(start({ kubectlSession: 'ks-1', kubectlCommand: 'kubectl get pods' }));
  const before = await store.audit.listRecords({ sessionId: handle.sessionId });
  assert.deepEqual(
    before.map((r) => [r.kind, r.seq]),
    [['request', 1]],
  );
  assert.equal(before[0]?.eventId, handle.eventId);
  assert.equal(handle.sessionId, kubectlSessionId('ci-deployer', 'ks-1'));
  handle.complete({ ...ok, approval: { id: 'a1', state: 'approved', by: ['alice'] } });
  handle.complete(ok); // a second completion is ignored
  await recorder.close();
  const after = await store.audit.listRecords({ sessionId: handle.sessionId });
  assert.deepEqual(
    after.map((r) => [r.kind, r.seq, r.eventId]),
    [
      ['request', 1, handle.eventId],
      ['outcome', 2, handle.eventId],
    ],
  );
  assert.equal(after[1]?.prevHash, after[0]?.hash);
  assert.deepEqual((after[1]?.data.approval as { by: string[] }).by, ['alice']);
  await store.close();
});

test('record() writes a refusal and its outcome in one durable write', async () => {
  const store = await memoryStore();
  const recorder = recorderFor(store);
  const writes = store.audit.stats().durableWrites;
  const handle = await recorder.record(
    start({ decision: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]' } }),
    {
      status: 403,
      bytesOut: 120,
      durationMs: 1,
    },
  );
  assert.equal(store.audit.stats().durableWrites, writes + 1);
  const records = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome'],
  );
  assert.equal((records[1]?.data as { status: number }).status, 403);
  await recorder.close();
  await store.close();
});

test('bodies are cut at maxBodyBytes on a character boundary, and left out when bodies is false', async () => {
  assert.deepEqual(truncateBody('héllo', 2), { text: 'h', bytes: 6, truncated: true });
  assert.deepEqual(truncateBody('abc', 3), { text: 'abc', bytes: 3, truncated: false });

  const store = await memoryStore();
  const recorder = recorderFor(store);
  const long = 'x'.repeat(40);
  const handle = await recorder.begin(start({ requestBody: long }));
  handle.complete({ ...ok, responseBody: 'short' });
  await recorder.close();
  const [request, outcome] = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.equal(request?.data.requestBody, 'x'.repeat(16));
  assert.equal(request?.data.requestBodyBytes, 40);
  assert.equal(request?.data.requestBodyTruncated, true);
  assert.equal(outcome?.data.responseBody, 'short');
  assert.equal(outcome?.data.responseBodyTruncated, undefined);

  const quiet = recorderFor(store, { bodies: false });
  const h2 = await quiet.begin(start({ requestBody: 'secret-ish' }));
  h2.complete({ ...ok, responseBody: 'x' });
  await quiet.close();
  const records = await store.audit.listRecords({ eventIds: [h2.eventId] });
  assert.ok(records.every((r) => !('requestBody' in r.data) && !('responseBody' in r.data)));
  await store.close();
});

test('sessions: same identity within the idle window shares a session; after it, a new one; kubectl sessions are deterministic', async () => {
  const store = await memoryStore();
  const recorder = recorderFor(store, { sessionIdleMs: 1000 });
  const t = 1_700_000_000_000;
  const a = await recorder.begin(start({ time: t }));
  const b = await recorder.begin(start({ time: t + 900 }));
  const c = await recorder.begin(start({ time: t + 2500 }));
  const other = await recorder.begin(start({ time: t + 901, identity: 'other' }));
  const k1 = await recorder.begin(start({ time: t, kubectlSession: 'abc' }));
  const k2 = await recorder.begin(start({ time: t + 99_999, kubectlSession: 'abc' }));
  assert.equal(a.sessionId, b.sessionId);
  assert.notEqual(b.sessionId, c.sessionId);
  assert.notEqual(a.sessionId, other.sessionId);
  assert.equal(k1.sessionId, k2.sessionId);
  assert.notEqual(k1.sessionId, a.sessionId);
  await recorder.close();
  await store.close();
});

test('a failed durable write refuses the request with ERR_AUDIT_UNAVAILABLE (a 503 Status)', async () => {
  const store = await memoryStore();
  const failures = { count: 1 };
  let counted = 0;
  const recorder = recorderFor(flaky(store.audit, failures), {
    metrics: { auditFailures: { inc: () => (counted += 1) } },
  });
  await assert.rejects(recorder.begin(start()), (error: unknown) => {
    assert.ok(isHoopError(error));
    assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
    const status = statusFromError(error);
    assert.equal(status.kind, 'Status');
    assert.equal(status.code, 503);
    assert.equal(status.reason, 'ServiceUnavailable');
    assert.match(status.message, /^hoopgate: the audit store is unavailable, so the request was not forwarded/);
    return true;
  });
  assert.equal(counted, 1);
  assert.equal((await store.audit.listRecords({})).length, 0);
  // The store is back: the next request is recorded.
  await recorder.begin(start());
  assert.equal((await store.audit.listRecords({})).length, 1);
  await recorder.close();
  await store.close();
});

test('a failed outcome write is retried with backoff and counted, never dropped', async () => {
  const store = await memoryStore();
  const failures = { count: 0 };
  const recorder = recorderFor(flaky(store.audit, failures));
  const handle = await recorder.begin(start());
  failures.count = 3;
  handle.complete(ok);
  recorder.appendFrames(handle.eventId, [{ at: 1, stream: 'stdout', data: 'hi' }]);
  assert.equal(recorder.stats().pendingOutcomes >= 1, true);
  await recorder.close();
  assert.deepEqual(recorder.stats(), { pendingOutcomes: 0, failedOutcomeWrites: 3 });
  const records = await store.audit.listRecords({ eventIds: [handle.eventId] });
  assert.deepEqual(
    records.map((r) => r.kind),
    ['request', 'outcome', 'frames'],
  );
  assert.equal(records[2]?.sessionId, handle.sessionId);
  await store.close();
});

test('close() gives up after closeTimeoutMs and says how many records were lost', async () => {
  const store = await memoryStore();
  const failures = { count: 0 };
  const recorder = recorderFor(flaky(store.audit, failures), { closeTimeoutMs: 50 });
  const handle = await recorder.begin(start());
  failures.count = 1_000_000;
  handle.complete(ok);
  await assert.rejects(recorder.close(), (error: unknown) => {
    assert.ok(isHoopError(error));
    assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
    assert.match(error.message, /^1 audit record\(s\) could not be written before shutdown/);
    return true;
  });
  assert.ok(recorder.stats().failedOutcomeWrites >= 1);
  assert.equal(recorder.stats().pendingOutcomes, 1);
  await store.close();
});

test('after close(), begin refuses with ERR_SHUTTING_DOWN', async () => {
  const store = await memoryStore();
  const recorder = recorderFor(store);
  await recorder.close();
  await assert.rejects(
    recorder.begin(start()),
    (error: unknown) => isHoopError(error) && error.code === 'ERR_SHUTTING_DOWN',
  );
  await store.close();
});
