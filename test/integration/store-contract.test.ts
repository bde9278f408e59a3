// One contract, every store: the same suite runs against SQLite (always), a real mongod when
// MONGODB_URI is set, and otherwise the in-process wire-protocol server (test/helpers/mongo-server.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Sqlite from 'better-sqlite3';
import type { ApprovalGrant, ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { createCheckpointer, loadSigningKey } from '../../packages/gateway/src/audit/checkpoint.js';
import { exportEvents, sessionEvents, streamSessionEvents } from '../../packages/gateway/src/audit/events.js';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import { createRetentionJob } from '../../packages/gateway/src/audit/retention.js';
import type { AuditStart } from '../../packages/gateway/src/audit/types.js';
import { verifyAudit } from '../../packages/gateway/src/audit/verify.js';
import { isHoopError } from '../../packages/gateway/src/lib/errors.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { Store, StoreOptions } from '../../packages/gateway/src/store/types.js';
import { openMongoBackend } from '../helpers/mongo-server.js';
import { approvalRecord } from '../helpers/hold-request.js';

/** One test's backend: every open() reaches the same data (a second replica, a reopened store). */
export interface ContractBackend {
  open(replicaId: string, options?: Partial<StoreOptions>): Promise<Store>;
  /** Makes writes fail (lock held / server gone); restore() undoes it when the backend can. */
  break(): Promise<{ restore?: () => Promise<void> }>;
  /** Where createStore must refuse at start. */
  unreachableUrl: string;
  /** Durable write round trips seen by the server, when it can tell. */
  insertCommands?: () => number;
  /** Cursor continuations (getMore) seen by the server, when it can tell. */
  getMoreCommands?: () => number;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Tests this backend cannot run, with the reason (reported as skipped). */
  skip?: Partial<Record<'break' | 'restore', string>>;
}

const T0 = 1_700_000_000_000;

function start(overrides: Partial<AuditStart> = {}): AuditStart {
  return {
    requestId: randomUUID(),
    time: T0,
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
    decision: { effect: 'allow', reason: 'rbac' },
    ...overrides,
  };
}

function approval(id: string, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return approvalRecord(id, T0, { email: 'bot@example.com', ...overrides });
}

function grant(id: string, overrides: Partial<ApprovalGrant> = {}): ApprovalGrant {
  return {
    id,
    approvalId: 'a-1',
    identity: 'ci-deployer',
    issuer: 'https://idp.test',
    subject: 'agent-7',
    cluster: 'prod',
    verb: 'delete',
    apiGroup: '',
    resource: 'pods',
    subresource: '',
    namespace: 'staging',
    name: '',
    serviceAccount: 'agents/ci-elevated',
    grantedBy: 'U1',
    createdAt: T0,
    expiresAt: T0 + 900_000,
    ...overrides,
  };
}

export function runStoreContract(
  name: string,
  makeBackend: () => Promise<ContractBackend>,
  options: ContractOptions = {},
): void {
  describe(`store contract: ${name}`, () => {
    async function withBackend(fn: (backend: ContractBackend, store: Store) => Promise<void>): Promise<void> {
      const backend = await makeBackend();
      const store = await backend.open('r-1');
      try {
        await fn(backend, store);
      } finally {
        await store.close().catch(() => undefined);
        await backend.cleanup();
      }
    }

    function recorder(store: Store, clock = { now: T0 }) {
      return createAuditRecorder({
        store,
        replicaId: 'r-1',
        clock: () => clock.now,
        maxBodyBytes: 1024,
        bodies: true,
        sessionIdleMs: 60_000,
      });
    }

    test('consumeOnce: a key is consumed once on every replica until it expires, then may be consumed again', () =>
      withBackend(async (backend) => {
        const clock = { now: T0 };
        const a = await backend.open('r-a', { clock: () => clock.now });
        const b = await backend.open('r-b', { clock: () => clock.now });
        assert.equal(await a.consumeOnce('saml|idp|id-1', T0 + 60_000), true);
        assert.equal(await a.consumeOnce('saml|idp|id-1', T0 + 60_000), false, 'a replay on the same replica');
        assert.equal(await b.consumeOnce('saml|idp|id-1', T0 + 60_000), false, 'a replay on another replica');
        assert.equal(await b.consumeOnce('saml|idp|id-2', T0 + 60_000), true, 'another key is independent');
        // Concurrent claims of one key: exactly one wins.
        const raced = await Promise.all([a, b, a, b].map((store) => store.consumeOnce('saml|idp|id-3', T0 + 60_000)));
        assert.equal(raced.filter(Boolean).length, 1);
        clock.now = T0 + 59_999;
        assert.equal(await b.consumeOnce('saml|idp|id-1', T0 + 120_000), false, 'not yet expired');
        clock.now = T0 + 60_000;
        assert.equal(await b.consumeOnce('saml|idp|id-1', T0 + 120_000), true, 'expired: claimable again');
        assert.equal(await a.consumeOnce('saml|idp|id-1', T0 + 120_000), false);
      }));

    test('begin is durable before it resolves; complete appends an outcome record linked in the chain', () =>
      withBackend(async (backend, store) => {
        const rec = recorder(store);
        const handle = await rec.begin(start({ kubectlSession: 'ks', requestBody: '{"kind":"Pod"}' }));
        // Another connection sees it at once: it was durable before begin() resolved.
        const reader = await backend.open('reader');
        const seen = await reader.audit.listRecords({ eventIds: [handle.eventId] });
        assert.deepEqual(
          seen.map((r) => [r.kind, r.chain, r.seq, r.sessionId]),
          [['request', 'r-1', 1, handle.sessionId]],
        );
        assert.equal(seen[0]?.data.requestBody, '{"kind":"Pod"}');
        handle.complete({ status: 201, bytesOut: 99, durationMs: 7, upstreamMs: 5 });
        await rec.close();
        const records = await reader.audit.readChain('r-1', 0, 10);
        assert.deepEqual(
          records.map((r) => [r.kind, r.seq]),
          [
            ['request', 1],
            ['outcome', 2],
          ],
        );
        assert.equal(records[1]?.prevHash, records[0]?.hash);
        assert.equal(records[1]?.data.status, 201);
        assert.deepEqual(await reader.audit.getRecord('r-1', 2), records[1]);
        assert.equal(await reader.audit.getRecord('r-1', 3), null);
        await reader.close();
      }));

    test('sessions: summaries with identity, cluster, window, calls, decisions and approvals; filter by identity', () =>
      withBackend(async (_backend, store) => {
        const rec = recorder(store);
        const a1 = await rec.begin(start({ time: T0, kubectlSession: 'k1' }));
        a1.complete({ status: 200, bytesOut: 1, durationMs: 1 });
        await rec.record(
          start({ time: T0 + 10, kubectlSession: 'k1', decision: { effect: 'deny', reason: 'deny-rule' } }),
          {
            status: 403,
            bytesOut: 1,
            durationMs: 1,
          },
        );
        await rec.record(
          start({ time: T0 + 20, kubectlSession: 'k1', decision: { effect: 'approve', reason: 'approval-required' } }),
          {
            status: 200,
            bytesOut: 1,
            durationMs: 1,
            approval: { id: 'a1', state: 'approved', by: ['alice'] },
          },
        );
        await rec.record(start({ time: T0 + 30, identity: 'other', cluster: 'staging' }), {
          status: 200,
          bytesOut: 1,
          durationMs: 1,
        });
        await rec.close();
        const sessions = await store.audit.listSessions();
        assert.equal(sessions.length, 2);
        const k1 = sessions.find((s) => s.sessionId === a1.sessionId);
        assert.ok(k1);
        assert.equal(k1.identity, 'ci-deployer');
        assert.equal(k1.cluster, 'prod');
        assert.equal(k1.start, T0);
        assert.ok(k1.end >= T0 + 20);
        assert.equal(k1.calls, 3);
        assert.deepEqual(k1.decisions, { allow: 1, deny: 1, approve: 1 });
        assert.equal(k1.approvals, 1);
        const others = await store.audit.listSessions({ identity: 'other' });
        assert.deepEqual(
          others.map((s) => [s.identity, s.cluster, s.calls]),
          [['other', 'staging', 1]],
        );
        assert.deepEqual(await store.audit.listSessions({ identity: 'nobody' }), []);
        assert.equal((await store.audit.listSessions({ limit: 1 })).length, 1);
        const events = await sessionEvents(store.audit, a1.sessionId);
        assert.deepEqual(
          events.map((e) => [e.decision.effect, e.outcome?.status]),
          [
            ['allow', 200],
            ['deny', 403],
            ['approve', 200],
          ],
        );
      }));

    test('export: events of a time window, joined with outcomes, paged in order', () =>
      withBackend(async (_backend, store) => {
        const rec = recorder(store);
        for (let i = 0; i < 5; i += 1) {
          await rec.record(start({ time: T0 + i * 1000, requestId: `req-${i}` }), {
            status: 200 + i,
            bytesOut: i,
            durationMs: 1,
          });
        }
        await rec.close();
        const all = [];
        for await (const event of exportEvents(store.audit, { pageSize: 2 })) all.push(event);
        assert.deepEqual(
          all.map((e) => e.requestId),
          ['req-0', 'req-1', 'req-2', 'req-3', 'req-4'],
        );
        assert.ok(all.every((e) => typeof e.sessionId === 'string' && e.sessionId !== ''));
        assert.deepEqual(
          all.map((e) => e.outcome?.status),
          [200, 201, 202, 203, 204],
        );
        const window = [];
        for await (const event of exportEvents(store.audit, { since: T0 + 1000, until: T0 + 3000, pageSize: 1 }))
          window.push(event);
        assert.deepEqual(
          window.map((e) => e.requestId),
          ['req-1', 'req-2'],
        );
        assert.equal(window[0]?.time, new Date(T0 + 1000).toISOString());
      }));

    test('cursors: scanRecords streams every match in (time, chain, seq) order, batch by batch; scanChain from a seq', () =>
      withBackend(async (backend, store) => {
        const drafts = Array.from({ length: 23 }, (_, i) => ({
          kind: (i % 2 === 0 ? 'request' : 'outcome') as 'request' | 'outcome',
          // Equal times across records, so the (chain, seq) tie-break is exercised.
          time: T0 + Math.floor(i / 4),
          eventId: `e-${Math.floor(i / 2)}`,
          sessionId: 's-cursor',
          identity: 'ci-deployer',
          data: { i },
        }));
        const other = await backend.open('r-0');
        await other.audit.append(drafts.slice(0, 5).map((d) => ({ ...d, data: { i: 100 + d.data.i } })));
        await store.audit.append(drafts);
        const expected = await store.audit.listRecords({});
        assert.equal(expected.length, 28);
        const before = backend.getMoreCommands?.() ?? 0;
        const streamed: string[] = [];
        for await (const record of store.audit.scanRecords({}, { batchSize: 4 }))
          streamed.push(`${record.chain}:${record.seq}:${record.hash}`);
        assert.deepEqual(
          streamed,
          expected.map((r) => `${r.chain}:${r.seq}:${r.hash}`),
        );
        // A MongoDB cursor really continued with getMore (the batches were not one reply).
        if (backend.getMoreCommands !== undefined)
          assert.ok(
            backend.getMoreCommands() - before >= 5,
            `getMore sent ${backend.getMoreCommands() - before} times`,
          );

        const requests: number[] = [];
        for await (const record of store.audit.scanRecords(
          { kinds: ['request'], since: T0 + 1, until: T0 + 5, sessionId: 's-cursor' },
          { batchSize: 2 },
        )) {
          requests.push(record.data['i'] as number);
        }
        // r-0 wrote one request at T0 + 1 too: (time, chain) puts it first.
        assert.deepEqual(requests, [104, 4, 6, 8, 10, 12, 14, 16, 18]);
        const limited: number[] = [];
        for await (const record of store.audit.scanRecords({ kinds: ['request'], limit: 3 }, { batchSize: 2 }))
          limited.push(record.seq);
        assert.equal(limited.length, 3);
        // Leaving a scan early closes its cursor; the store keeps serving.
        for await (const record of store.audit.scanRecords({}, { batchSize: 2 })) if (record.seq > 0) break;

        const chain: number[] = [];
        for await (const record of store.audit.scanChain('r-1', 20, { batchSize: 2 })) {
          assert.equal(typeof record.dataText, 'string');
          assert.deepEqual(JSON.parse(record.dataText), (await store.audit.getRecord('r-1', record.seq))?.data);
          chain.push(record.seq);
        }
        assert.deepEqual(chain, [21, 22, 23]);
        const heads = await store.audit.chainHeads();
        assert.deepEqual(
          heads.map((h) => [
            h.chain,
            h.firstSeq,
            h.seq,
            h.records,
            h.hash === expected.find((r) => r.chain === h.chain && r.seq === h.seq)?.hash,
          ]),
          [
            ['r-0', 1, 5, 5, true],
            ['r-1', 1, 23, 23, true],
          ],
        );
      }));

    test('export streams many events: every line once, in order, joined with its outcome', () =>
      withBackend(async (_backend, store) => {
        const total = 403;
        const drafts = [];
        for (let i = 0; i < total; i++) {
          drafts.push(
            {
              kind: 'request' as const,
              time: T0 + i,
              eventId: `ev-${i}`,
              sessionId: `s-${i % 7}`,
              identity: 'ci-deployer',
              data: { ...start(), requestId: `r-${i}` },
            },
            {
              kind: 'outcome' as const,
              time: T0 + i,
              eventId: `ev-${i}`,
              sessionId: `s-${i % 7}`,
              identity: 'ci-deployer',
              data: { status: 200 + (i % 3), bytesOut: i, durationMs: 1 },
            },
          );
        }
        for (let i = 0; i < drafts.length; i += 500) await store.audit.append(drafts.slice(i, i + 500));
        let n = 0;
        for await (const event of exportEvents(store.audit, { pageSize: 40 })) {
          assert.equal(event.eventId, `ev-${n}`);
          assert.equal(event.outcome?.status, 200 + (n % 3));
          n += 1;
        }
        assert.equal(n, total);
        const session: string[] = [];
        for await (const event of streamSessionEvents(store.audit, 's-3', 50)) session.push(event.eventId);
        assert.deepEqual(
          session,
          Array.from({ length: total }, (_, i) => i)
            .filter((i) => i % 7 === 3)
            .map((i) => `ev-${i}`),
        );
      }));

    test('group commit: concurrent begins share durable writes, and the chain stays intact', () =>
      withBackend(async (backend, store) => {
        const rec = recorder(store);
        const writes = store.audit.stats().durableWrites;
        const inserts = backend.insertCommands?.();
        const n = 50;
        const handles = await Promise.all(
          Array.from({ length: n }, (_, i) => rec.begin(start({ requestId: `c${i}` }))),
        );
        const used = store.audit.stats().durableWrites - writes;
        assert.ok(used < n, `${n} concurrent begins used ${used} durable writes`);
        assert.ok(used >= 1);
        if (inserts !== undefined) assert.ok((backend.insertCommands?.() ?? 0) - inserts < n);
        const seqs = (await store.audit.readChain('r-1', 0, 100)).map((r) => r.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: n }, (_, i) => i + 1),
        );
        assert.equal(new Set(handles.map((h) => h.eventId)).size, n);
        await rec.close();
        assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: n, chains: 1 });
      }));

    test('two replicas write two chains; a reopened store continues its chain; everything verifies', () =>
      withBackend(async (backend, store) => {
        const second = await backend.open('r-2');
        await recorder(store).record(start(), { status: 200, bytesOut: 1, durationMs: 1 });
        await createAuditRecorder({
          store: second,
          replicaId: 'r-2',
          clock: () => T0,
          maxBodyBytes: 10,
          bodies: false,
          sessionIdleMs: 1,
        }).record(start(), {
          status: 200,
          bytesOut: 1,
          durationMs: 1,
        });
        await second.close();
        const again = await backend.open('r-2');
        await recorder(again).record(start(), { status: 204, bytesOut: 1, durationMs: 1 });
        const heads = await again.audit.chainHeads();
        assert.deepEqual(
          heads.map((h) => [h.chain, h.firstSeq, h.seq, h.records]),
          [
            ['r-1', 1, 2, 2],
            ['r-2', 1, 4, 4],
          ],
        );
        assert.deepEqual(await verifyAudit(again.audit), { ok: true, records: 6, chains: 2 });
        await again.close();
      }));

    test('signed checkpoints are stored beside and inside the chain; verify checks them against the key', () =>
      withBackend(async (_backend, store) => {
        await recorder(store).record(start(), { status: 200, bytesOut: 1, durationMs: 1 });
        const key = await loadSigningKey();
        const checkpointer = createCheckpointer({ store: store.audit, key, replicaId: 'r-1', clock: () => T0 + 1 });
        const [signed] = await checkpointer.checkpoint();
        assert.deepEqual(signed?.statement, {
          type: 'head',
          chain: 'r-1',
          seq: 2,
          hash: (await store.audit.getRecord('r-1', 2))?.hash,
          time: T0 + 1,
          by: 'r-1',
        });
        assert.deepEqual(await store.audit.checkpoints(), [signed]);
        assert.equal((await store.audit.getRecord('r-1', 3))?.kind, 'checkpoint');
        assert.deepEqual(await verifyAudit(store.audit, { publicKey: key.publicKeyPem }), {
          ok: true,
          records: 3,
          chains: 1,
        });
        const other = await loadSigningKey();
        const result = await verifyAudit(store.audit, { publicKey: other.publicKeyPem });
        assert.equal(result.ok, false);
        assert.match(!result.ok ? result.problem : '', /bad signature for the configured key/);
      }));

    test('retention deletes old sessions after a retention checkpoint; verify still passes', () =>
      withBackend(async (_backend, store) => {
        const clock = { now: T0 };
        const rec = recorder(store, clock);
        await rec.record(start({ time: T0, identity: 'old' }), { status: 200, bytesOut: 1, durationMs: 1 });
        clock.now = T0 + 10 * 86_400_000;
        await rec.record(start({ time: clock.now, identity: 'new' }), { status: 200, bytesOut: 1, durationMs: 1 });
        await rec.close();
        const key = await loadSigningKey();
        const job = createRetentionJob({
          store: store.audit,
          key,
          replicaId: 'r-1',
          clock: () => clock.now,
          retentionMs: 5 * 86_400_000,
        });
        const result = await job.run();
        assert.equal(result.deleted, 2);
        assert.deepEqual(
          (await store.audit.listSessions()).map((s) => s.identity),
          ['new'],
        );
        assert.deepEqual(await verifyAudit(store.audit, { publicKey: key.publicKeyPem }), {
          ok: true,
          records: 3,
          chains: 1,
        });
        const heads = await store.audit.chainHeads();
        assert.deepEqual(
          heads.map((h) => [h.firstSeq, h.seq]),
          [[3, 5]],
        );
      }));

    test('approvals: create, get, list by state and holder in creation order', () =>
      withBackend(async (_backend, store) => {
        const repo = store.approvals;
        await repo.create(approval('a-2', { createdAt: T0 + 2, holder: 'r-2' }));
        await repo.create(approval('a-1', { createdAt: T0 + 1 }));
        await repo.create(approval('a-3', { createdAt: T0 + 3, state: 'denied' }));
        assert.deepEqual(await repo.get('a-1'), approval('a-1', { createdAt: T0 + 1 }));
        assert.equal(await repo.get('missing'), null);
        assert.deepEqual(
          (await repo.list()).map((r) => r.id),
          ['a-1', 'a-2', 'a-3'],
        );
        assert.deepEqual(
          (await repo.list({ state: 'pending' })).map((r) => r.id),
          ['a-1', 'a-2'],
        );
        assert.deepEqual(
          (await repo.list({ state: 'pending', holder: 'r-2' })).map((r) => r.id),
          ['a-2'],
        );
        await assert.rejects(repo.create(approval('a-1')));
        await repo.setSlackMessage('a-1', { channel: 'C1', ts: '123.456' });
        assert.deepEqual((await repo.get('a-1'))?.slack, { channel: 'C1', ts: '123.456' });
        // The workspace and app that posted it are kept: clicks are matched against them.
        await repo.setSlackMessage('a-2', { channel: 'C1', ts: '123.457', team: 'T1', appId: 'A1' });
        assert.deepEqual((await repo.get('a-2'))?.slack, { channel: 'C1', ts: '123.457', team: 'T1', appId: 'A1' });
      }));

    test('approvals: transition is a compare-and-set; a second transition from the old state changes nothing', () =>
      withBackend(async (_backend, store) => {
        const repo = store.approvals;
        await repo.create(approval('a-1'));
        const approved = await repo.transition('a-1', 'pending', 'approved', {
          decidedBy: 'alice',
          decidedAt: T0 + 5,
          grantMs: 900_000,
        });
        assert.equal(approved?.state, 'approved');
        assert.equal(approved?.decidedBy, 'alice');
        assert.equal(approved?.decidedAt, T0 + 5);
        assert.equal(approved?.grantMs, 900_000);
        assert.equal(approved?.decisionReason, undefined);
        assert.equal(await repo.transition('a-1', 'pending', 'denied', { decidedBy: 'bob' }), null);
        assert.equal(await repo.transition('missing', 'pending', 'denied', {}), null);
        const stored = await repo.get('a-1');
        assert.equal(stored?.state, 'approved');
        assert.equal(stored?.decidedBy, 'alice');
      }));

    test('approvals: concurrent approve and deny from two replicas: exactly one wins', () =>
      withBackend(async (backend, store) => {
        const other = await backend.open('r-2');
        try {
          for (let i = 0; i < 10; i += 1) {
            await store.approvals.create(approval(`race-${i}`));
            const [approve, deny] = await Promise.all([
              store.approvals.transition(`race-${i}`, 'pending', 'approved', { decidedBy: 'alice' }),
              other.approvals.transition(`race-${i}`, 'pending', 'denied', { decidedBy: 'bob' }),
            ]);
            assert.equal([approve, deny].filter((r) => r !== null).length, 1, `race ${i}`);
            const winner = approve ?? deny;
            assert.deepEqual(await store.approvals.get(`race-${i}`), winner);
          }
        } finally {
          await other.close();
        }
      }));

    test('approvals: votes are deduplicated per user and only accepted while pending', () =>
      withBackend(async (backend, store) => {
        const repo = store.approvals;
        await repo.create(approval('a-1'));
        const vote = { user: 'U1', label: 'alice', at: T0 + 1, via: 'slack' as const };
        const first = await repo.addVote('a-1', vote);
        assert.deepEqual(first?.votes, [vote]);
        assert.equal(await repo.addVote('a-1', { ...vote, at: T0 + 2 }), null);
        const other = await backend.open('r-2');
        const [x, y] = await Promise.all([
          repo.addVote('a-1', { user: 'U2', label: 'bob', at: T0 + 3, via: 'api' }),
          other.approvals.addVote('a-1', { user: 'U2', label: 'bob', at: T0 + 3, via: 'api' }),
        ]);
        await other.close();
        assert.equal([x, y].filter((r) => r !== null).length, 1);
        assert.deepEqual(
          (await repo.get('a-1'))?.votes.map((v) => v.user),
          ['U1', 'U2'],
        );
        await repo.transition('a-1', 'pending', 'approved', {});
        assert.equal(await repo.addVote('a-1', { user: 'U3', label: 'carol', at: T0 + 4, via: 'cli' }), null);
        assert.equal(await repo.addVote('missing', vote), null);
      }));

    test('approvals: one person, one vote: a vote sharing a person key with an earlier one is refused, also racing', () =>
      withBackend(async (backend, store) => {
        const repo = store.approvals;
        await repo.create(approval('p-1'));
        const slack = {
          user: 'UALICE',
          label: 'alice',
          at: T0 + 1,
          via: 'slack' as const,
          keys: ['email:alice@example.com', 'slack:UALICE'],
        };
        assert.deepEqual((await repo.addVote('p-1', slack))?.votes, [slack]);
        // The same person through the API: another user id, the same verified email.
        assert.equal(
          await repo.addVote('p-1', {
            user: 'oidc:https://idp#alice',
            label: 'alice@example.com',
            at: T0 + 2,
            via: 'api',
            keys: ['email:alice@example.com', 'oidc:https://idp#alice'],
          }),
          null,
        );
        const other = await backend.open('r-2');
        try {
          await repo.create(approval('p-2'));
          const [x, y] = await Promise.all([
            repo.addVote('p-2', {
              user: 'UBOB',
              label: 'bob',
              at: T0 + 3,
              via: 'slack',
              keys: ['slack:UBOB', 'email:bob@example.com'],
            }),
            other.approvals.addVote('p-2', {
              user: 'oidc:https://idp#bob',
              label: 'bob',
              at: T0 + 3,
              via: 'api',
              keys: ['email:bob@example.com', 'oidc:https://idp#bob'],
            }),
          ]);
          assert.equal([x, y].filter((r) => r !== null).length, 1, 'one of the racing votes of one person counts');
        } finally {
          await other.close();
        }
        const carol = await repo.addVote('p-1', {
          user: 'UCAROL',
          label: 'carol',
          at: T0 + 4,
          via: 'slack',
          keys: ['slack:UCAROL'],
        });
        assert.deepEqual(
          carol?.votes.map((v) => v.user),
          ['UALICE', 'UCAROL'],
        );
      }));

    test('approvals: grants are active until they expire, per identity and cluster', () =>
      withBackend(async (_backend, store) => {
        const repo = store.approvals;
        await repo.createGrant(grant('g-1'));
        await repo.createGrant(grant('g-2', { expiresAt: T0 + 10 }));
        await repo.createGrant(grant('g-3', { identity: 'other' }));
        await repo.createGrant(grant('g-4', { cluster: 'staging' }));
        assert.deepEqual((await repo.activeGrants('ci-deployer', 'prod', T0 + 5)).map((g) => g.id).sort(), [
          'g-1',
          'g-2',
        ]);
        assert.deepEqual(await repo.activeGrants('ci-deployer', 'prod', T0 + 10), [grant('g-1')]);
        assert.deepEqual(await repo.activeGrants('ci-deployer', 'prod', T0 + 900_000), []);
        // Listed, revoked once (on any replica), then active nowhere.
        assert.deepEqual(
          (await repo.listGrants({ activeAt: T0 + 5 })).map((g) => g.id),
          ['g-1', 'g-2', 'g-3', 'g-4'],
        );
        const revoked = await repo.revokeGrant('g-1', 'alice', T0 + 6);
        assert.deepEqual([revoked?.id, revoked?.revokedBy, revoked?.revokedAt], ['g-1', 'alice', T0 + 6]);
        assert.equal(await repo.revokeGrant('g-1', 'bob', T0 + 7), null);
        assert.equal(await repo.revokeGrant('g-2', 'bob', T0 + 11), null, 'an expired grant is not revoked');
        assert.equal(await repo.revokeGrant('missing', 'bob', T0 + 7), null);
        assert.deepEqual(
          (await repo.activeGrants('ci-deployer', 'prod', T0 + 8)).map((g) => g.id),
          ['g-2'],
        );
        assert.deepEqual(
          (await repo.listGrants({ activeAt: T0 + 8 })).map((g) => g.id),
          ['g-2', 'g-3', 'g-4'],
        );
        assert.equal((await repo.listGrants()).find((g) => g.id === 'g-1')?.revokedBy, 'alice');
      }));

    test('ping answers while open and refuses once closed', () =>
      withBackend(async (backend) => {
        const store = await backend.open('r-9');
        await store.ping();
        await store.close();
        await assert.rejects(
          store.ping(),
          (error: unknown) => isHoopError(error) && error.code === 'ERR_AUDIT_UNAVAILABLE',
        );
      }));

    test('an unreachable store refuses at start with ERR_AUDIT_UNAVAILABLE', async () => {
      const backend = await makeBackend();
      try {
        await assert.rejects(
          createStore(backend.unreachableUrl, { replicaId: 'r-1', serverSelectionTimeoutMs: 500 }),
          (error: unknown) => {
            assert.ok(isHoopError(error));
            assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
            assert.match(error.message, /^cannot (open|use) the audit store/);
            return true;
          },
        );
      } finally {
        await backend.cleanup();
      }
    });

    test(
      'a store that fails under the recorder refuses begin() with ERR_AUDIT_UNAVAILABLE, and recovers',
      { skip: options.skip?.break ?? false },
      () =>
        withBackend(async (backend, store) => {
          const rec = recorder(store);
          await rec.record(start(), { status: 200, bytesOut: 1, durationMs: 1 });
          const broken = await backend.break();
          await assert.rejects(rec.begin(start()), (error: unknown) => {
            assert.ok(isHoopError(error));
            assert.equal(error.code, 'ERR_AUDIT_UNAVAILABLE');
            assert.equal(error.status, 503);
            return true;
          });
          if (broken.restore === undefined) return;
          await broken.restore();
          const handle = await rec.begin(start());
          handle.complete({ status: 200, bytesOut: 1, durationMs: 1 });
          await rec.close();
          assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 4, chains: 1 });
        }),
    );
  });
}

// ---------- SQLite: always ----------

runStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-store-'));
  const file = join(dir, 'audit.db');
  // A path under a regular file: no directory can be made there, even as root.
  writeFileSync(join(dir, 'not-a-directory'), '');
  const stores: Store[] = [];
  return {
    async open(replicaId, options = {}) {
      const store = await createStore(`sqlite:${file}`, { replicaId, busyTimeoutMs: 500, ...options });
      stores.push(store);
      return store;
    },
    async break() {
      // Another connection holds the write lock longer than the store waits (busyTimeoutMs).
      const locker = new Sqlite(file, { timeout: 100 });
      locker.exec('BEGIN EXCLUSIVE');
      return {
        restore: async () => {
          locker.exec('ROLLBACK');
          locker.close();
        },
      };
    },
    unreachableUrl: `sqlite:${join(dir, 'not-a-directory', 'audit.db')}`,
    async cleanup() {
      for (const store of stores) await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// ---------- MongoDB: a real mongod (MONGODB_URI) or the in-process wire-protocol server ----------

runStoreContract(
  process.env.MONGODB_URI ? 'mongodb (MONGODB_URI)' : 'mongodb (in-process wire-protocol server)',
  async () => {
    const mongo = await openMongoBackend();
    const database = `hoop_test_${randomUUID().slice(0, 8)}`;
    const stores: Store[] = [];
    return {
      async open(replicaId, options = {}) {
        const store = await createStore(mongo.url(database), { replicaId, serverSelectionTimeoutMs: 1500, ...options });
        stores.push(store);
        return store;
      },
      async break() {
        // The in-process server goes away: connection refused from then on.
        await mongo.stop();
        return {};
      },
      unreachableUrl: 'mongodb://127.0.0.1:1/hoopgate',
      ...(mongo.commands === undefined
        ? {}
        : { insertCommands: () => mongo.commands?.insert ?? 0, getMoreCommands: () => mongo.commands?.getMore ?? 0 }),
      async cleanup() {
        for (const store of stores) await store.close().catch(() => undefined);
        if (mongo.real) {
          const { MongoClient } = await import('mongodb');
          const client = new MongoClient(mongo.url(database));
          await client.db().dropDatabase();
          await client.close();
        }
        await mongo.stop();
      },
    };
  },
  process.env.MONGODB_URI ? { skip: { break: 'a real mongod cannot be stopped from the test' } } : {},
);
