// `audit verify --since-checkpoint` (issue #17): starts at the newest trusted head checkpoint. Tampering
// before it is found only by --full, after it by both; a checkpoint whose signature fails is skipped
// (an older one, or genesis, is used) and reported.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { loadSigningKey, signStatement } from '../../packages/gateway/src/audit/checkpoint.js';
import { verifyAuditReport } from '../../packages/gateway/src/audit/verify.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { Store } from '../../packages/gateway/src/store/types.js';
import { tamperData } from '../helpers/audit-rows.js';

async function world(): Promise<{ store: Store; file: string; done(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-since-'));
  const file = join(dir, 'audit.db');
  const store = await createStore(`sqlite:${file}`, { replicaId: 'r-1' });
  return { store, file, done: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
}

async function records(store: Store, n: number, from: number): Promise<void> {
  await store.audit.append(
    Array.from({ length: n }, (_, i) => ({
      kind: 'request' as const,
      time: from + i,
      eventId: `e-${from + i}`,
      data: { i: from + i },
    })),
  );
}

/** Signs the current head of r-1 (appending the checkpoint record after it). */
async function checkpoint(
  store: Store,
  key: Awaited<ReturnType<typeof loadSigningKey>>,
  time: number,
): Promise<number> {
  const [head] = await store.audit.chainHeads();
  if (head === undefined) throw new Error('empty chain');
  await store.audit.appendCheckpoint(
    signStatement(key, { type: 'head', chain: 'r-1', seq: head.seq, hash: head.hash, time, by: 'r-1' }),
  );
  return head.seq;
}

function tamper(file: string, seq: number): void {
  const db = new Sqlite(file);
  tamperData(db, seq, (data) => ({ ...data, i: -1 }));
  db.close();
}

test('since-checkpoint starts after the newest trusted checkpoint; tampering before it is found by --full only', async () => {
  const w = await world();
  const key = await loadSigningKey();
  await records(w.store, 10, 1000);
  await checkpoint(w.store, key, 2000); // names seq 10; the checkpoint record is seq 11
  await records(w.store, 5, 3000); // seq 12..16
  const clean = await verifyAuditReport(w.store.audit, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.equal(clean.ok, true);
  assert.equal(clean.records, 6);
  assert.deepEqual(clean.starts, [{ chain: 'r-1', fromSeq: 11, anchor: 'checkpoint', checkpointTime: 2000 }]);
  assert.ok(clean.recordsPerSecond > 0);
  tamper(w.file, 4);
  const since = await verifyAuditReport(w.store.audit, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.equal(since.ok, true, 'the checkpoint vouches for seq 1..10');
  const full = await verifyAuditReport(w.store.audit, { mode: 'full', publicKey: key.publicKeyPem });
  assert.equal(full.ok, false);
  assert.deepEqual(full.failure, {
    chain: 'r-1',
    seq: 4,
    problem: 'record does not match its hash (changed, or moved from another position)',
  });
  await w.done();
});

test('tampering after the checkpoint is found by both modes', async () => {
  const w = await world();
  const key = await loadSigningKey();
  await records(w.store, 10, 1000);
  await checkpoint(w.store, key, 2000);
  await records(w.store, 5, 3000);
  tamper(w.file, 14);
  for (const mode of ['full', 'since-checkpoint'] as const) {
    const report = await verifyAuditReport(w.store.audit, { mode, publicKey: key.publicKeyPem });
    assert.equal(report.ok, false, mode);
    assert.deepEqual(
      report.failure,
      { chain: 'r-1', seq: 14, problem: 'record does not match its hash (changed, or moved from another position)' },
      mode,
    );
  }
  await w.done();
});

test('a checkpoint whose signature fails is skipped for an older one (or genesis), reported, and fails the run', async () => {
  const w = await world();
  const key = await loadSigningKey();
  const forger = await loadSigningKey();
  await records(w.store, 5, 1000); // seq 1..5
  await checkpoint(w.store, key, 2000); // names 5; record 6
  await records(w.store, 5, 3000); // seq 7..11
  await checkpoint(w.store, forger, 4000); // names 11, signed by another key; record 12
  await records(w.store, 2, 5000); // 13..14
  tamper(w.file, 9); // between the good and the forged checkpoint
  const report = await verifyAuditReport(w.store.audit, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.equal(report.ok, false);
  assert.equal(report.skipped.length, 1);
  assert.deepEqual(
    { ...report.skipped[0], problem: report.skipped[0]?.problem.replace(/of \S+ /, 'of T ') },
    {
      chain: 'r-1',
      seq: 11,
      time: 4000,
      problem: 'the head checkpoint of T signed by r-1 has a bad signature for the configured key',
    },
  );
  // It fell back to the checkpoint of seq 5 and found the change at 9.
  assert.deepEqual(report.starts, [{ chain: 'r-1', fromSeq: 6, anchor: 'checkpoint', checkpointTime: 2000 }]);
  assert.deepEqual(report.failure, {
    chain: 'r-1',
    seq: 9,
    problem: 'record does not match its hash (changed, or moved from another position)',
  });

  // With only the forged checkpoint, the fallback is genesis.
  const w2 = await world();
  await records(w2.store, 5, 1000);
  await checkpoint(w2.store, forger, 2000);
  const fallback = await verifyAuditReport(w2.store.audit, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.deepEqual(fallback.starts, [{ chain: 'r-1', fromSeq: 1, anchor: 'genesis' }]);
  assert.equal(fallback.records, 6);
  assert.equal(fallback.ok, false);
  assert.match(
    fallback.failure?.problem ?? '',
    /^checkpoint skipped: the head checkpoint of .* has a bad signature for the configured key$/,
  );
  await w.done();
  await w2.done();
});

test('since-checkpoint reads checkpoints by index, not the whole side table, and still skips a run of bad ones and finds a truncated tail', async () => {
  const w = await world();
  const key = await loadSigningKey();
  const forger = await loadSigningKey();
  for (let i = 0; i < 30; i++) {
    await records(w.store, 2, 10_000 + i * 10);
    await checkpoint(w.store, key, 20_000 + i); // 30 good checkpoints
  }
  for (let i = 0; i < 20; i++) {
    await records(w.store, 1, 50_000 + i * 10);
    await checkpoint(w.store, forger, 60_000 + i); // then 20 forged ones: more than one batch of 16
  }
  const audit = w.store.audit;
  let wholeTable = 0;
  const spied = new Proxy(audit, {
    get: (target, name, receiver) =>
      name === 'checkpoints'
        ? () => ((wholeTable += 1), target.checkpoints())
        : (Reflect.get(target, name, receiver) as unknown),
  });
  const report = await verifyAuditReport(spied, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.equal(wholeTable, 0);
  assert.equal(report.skipped.length, 20);
  assert.deepEqual(report.starts, [{ chain: 'r-1', fromSeq: 90, anchor: 'checkpoint', checkpointTime: 20_029 }]);
  assert.equal(report.records, 41); // seq 90 (the good checkpoint's own record) to 130

  // The newest good checkpoint names seq 89: cut the chain below it, and since-checkpoint says so.
  const db = new Sqlite(w.file);
  db.prepare('DELETE FROM audit_records WHERE seq > 80').run();
  db.close();
  const cut = await verifyAuditReport(spied, { mode: 'since-checkpoint', publicKey: key.publicKeyPem });
  assert.equal(cut.ok, false);
  assert.match(cut.failure?.problem ?? '', /^records missing at the tail: the chain ends at seq 80/);
  assert.equal(wholeTable, 0);
  await w.done();
});
