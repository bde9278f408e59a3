// Tamper evidence: each kind of tampering, done with raw SQL on the SQLite file, is caught by
// verifyAudit() naming the first bad record.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import {
  createCheckpointer,
  loadSigningKey,
  signStatement,
  type SigningKey,
} from '../../packages/gateway/src/audit/checkpoint.js';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import { createRetentionJob } from '../../packages/gateway/src/audit/retention.js';
import type { AuditStart } from '../../packages/gateway/src/audit/types.js';
import { verifyAudit } from '../../packages/gateway/src/audit/verify.js';
import { hashRecord } from '../../packages/gateway/src/store/chain.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditRecord, Store } from '../../packages/gateway/src/store/types.js';
import { rewriteRecord, storedRecords, tamperData } from '../helpers/audit-rows.js';

const DAY = 86_400_000;

interface World {
  store: Store;
  file: string;
  key: SigningKey;
  clock: { now: number };
  raw(): Sqlite.Database;
  done(): Promise<void>;
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-verify-'));
  const file = join(dir, 'audit.db');
  const clock = { now: 1_700_000_000_000 };
  const store = await createStore(`sqlite:${file}`, { replicaId: 'r-1', clock: () => clock.now });
  const key = await loadSigningKey();
  const raws: Sqlite.Database[] = [];
  return {
    store,
    file,
    key,
    clock,
    raw() {
      const db = new Sqlite(file);
      raws.push(db);
      return db;
    },
    async done() {
      for (const db of raws) db.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function start(time: number, identity = 'ci', kubectlSession?: string): AuditStart {
  return {
    requestId: `r${time}`,
    time,
    cluster: 'prod',
    identity,
    method: 'DELETE',
    path: '/api/v1/namespaces/prod',
    decision: { effect: 'approve', reason: 'approval-required' },
    ...(kubectlSession === undefined ? {} : { kubectlSession }),
  };
}

/** Three calls, each request + outcome: seq 1..6. */
async function fill(w: World, calls = 3, identity = 'ci'): Promise<void> {
  for (let i = 0; i < calls; i += 1) {
    // One recorder per call, closed (flushed) each time, so seqs go request, outcome, request, …
    const recorder = createAuditRecorder({
      store: w.store,
      replicaId: 'r-1',
      clock: () => w.clock.now,
      maxBodyBytes: 1024,
      bodies: true,
      sessionIdleMs: 60_000,
    });
    w.clock.now += 1000;
    const handle = await recorder.begin(start(w.clock.now, identity));
    handle.complete({ status: 200, bytesOut: 1, durationMs: 1 });
    await recorder.close();
  }
}

async function checkpoint(w: World): Promise<void> {
  const checkpointer = createCheckpointer({
    store: w.store.audit,
    key: w.key,
    replicaId: 'r-1',
    clock: () => w.clock.now,
  });
  await checkpointer.checkpoint();
}

test('an untouched store verifies', async () => {
  const w = await world();
  await fill(w);
  await checkpoint(w);
  assert.deepEqual(await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem }), {
    ok: true,
    records: 7,
    chains: 1,
  });
  await w.done();
});

test('a changed field is detected at its seq', async () => {
  const w = await world();
  await fill(w);
  tamperData(w.raw(), 3, (data) => ({ ...data, decision: { ...(data['decision'] as object), effect: 'allow' } }));
  const result = await verifyAudit(w.store.audit);
  assert.deepEqual(result, {
    ok: false,
    chain: 'r-1',
    seq: 3,
    problem: 'record does not match its hash (changed, or moved from another position)',
  });
  await w.done();
});

test('a changed time or identity column is detected too', async () => {
  const w = await world();
  await fill(w);
  w.raw().prepare("UPDATE audit_records SET identity = 'someone-else' WHERE seq = 5").run();
  const result = await verifyAudit(w.store.audit);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.seq, 5);
  await w.done();
});

test('a deleted record is detected as missing', async () => {
  const w = await world();
  await fill(w);
  w.raw().prepare('DELETE FROM audit_records WHERE seq = 3').run();
  const result = await verifyAudit(w.store.audit);
  assert.deepEqual(result, {
    ok: false,
    chain: 'r-1',
    seq: 3,
    problem: 'record missing: seq 3 is absent (the next record is seq 4)',
  });
  await w.done();
});

test('reordered records are detected at the first moved seq', async () => {
  const w = await world();
  await fill(w);
  const db = w.raw();
  db.transaction(() => {
    db.prepare('UPDATE audit_records SET seq = -1 WHERE seq = 3').run();
    db.prepare('UPDATE audit_records SET seq = 3 WHERE seq = 4').run();
    db.prepare('UPDATE audit_records SET seq = 4 WHERE seq = -1').run();
  })();
  const result = await verifyAudit(w.store.audit);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.seq, 3);
  assert.match(!result.ok ? result.problem : '', /changed, or moved/);
  await w.done();
});

test('a chain rewritten with fresh hashes still differs from the signed checkpoint', async () => {
  const w = await world();
  await fill(w);
  await checkpoint(w); // names seq 6; the checkpoint record is seq 7
  const db = w.raw();
  const rows = storedRecords(db);
  let prevHash = '';
  db.transaction(() => {
    for (const row of rows) {
      const { dataText, hash: _old, ...rest } = row;
      const record: Omit<AuditRecord, 'hash'> = {
        ...rest,
        data: JSON.parse(dataText) as Record<string, unknown>,
        prevHash: row.seq === 1 ? row.prevHash : prevHash,
      };
      if (record.seq === 4) record.data = { ...record.data, status: 204 };
      const hash = hashRecord(record);
      rewriteRecord(db, record.chain, record.seq, record.data, record.prevHash, hash);
      prevHash = hash;
    }
  })();
  const result = await verifyAudit(w.store.audit);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.seq, 6);
  assert.match(
    !result.ok ? result.problem : '',
    /^record differs from the checkpoint of .* \(the chain was rewritten\)$/,
  );
  await w.done();
});

test('a truncated tail is detected against the last checkpoint', async () => {
  const w = await world();
  await fill(w);
  await checkpoint(w); // names seq 6; its record is seq 7
  w.raw().prepare('DELETE FROM audit_records WHERE seq >= 5').run();
  const result = await verifyAudit(w.store.audit);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.seq, 5);
  assert.match(
    !result.ok ? result.problem : '',
    /^records missing at the tail: the chain ends at seq 4 but the checkpoint of .* names seq 6$/,
  );
  await w.done();
});

test('a deleted prefix without a retention checkpoint is detected at seq 1', async () => {
  const w = await world();
  await fill(w);
  w.raw().prepare('DELETE FROM audit_records WHERE seq <= 2').run();
  const result = await verifyAudit(w.store.audit);
  assert.deepEqual(result, {
    ok: false,
    chain: 'r-1',
    seq: 1,
    problem: 'records missing: the chain starts at seq 3, expected 1 (no retention checkpoint covers the gap)',
  });
  await w.done();
});

test('checkpoint signatures: an altered statement, and one not made by the configured key, fail', async () => {
  const w = await world();
  await fill(w);
  await checkpoint(w);
  const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const wrongKey = await verifyAudit(w.store.audit, { publicKey: other });
  assert.equal(wrongKey.ok, false);
  assert.match(
    !wrongKey.ok ? wrongKey.problem : '',
    /^the head checkpoint of .* signed by r-1 has a bad signature for the configured key$/,
  );

  const db = w.raw();
  db.prepare("UPDATE audit_checkpoints SET checkpoint = json_set(checkpoint, '$.statement.seq', 2)").run();
  const altered = await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem });
  assert.equal(altered.ok, false);
  assert.equal(!altered.ok && altered.seq, 2);
  assert.match(!altered.ok ? altered.problem : '', /bad signature/);
  await w.done();
});

test('retention removes old sessions behind a signed retention checkpoint, and verify still passes', async () => {
  const w = await world();
  await fill(w, 3, 'old'); // seq 1-6, sessions of 'old'
  await checkpoint(w); // seq 7
  w.clock.now += 10 * DAY;
  await fill(w, 2, 'new'); // seq 8-11
  const before = await w.store.audit.listSessions();
  // One recorder per call in fill(): one session per call.
  assert.deepEqual(
    before.map((s) => s.identity),
    ['new', 'new', 'old', 'old', 'old'],
  );
  const job = createRetentionJob({
    store: w.store.audit,
    key: w.key,
    replicaId: 'r-1',
    clock: () => w.clock.now,
    retentionMs: 5 * DAY,
  });
  const result = await job.run();
  assert.equal(result.deleted, 7);
  assert.equal(result.checkpoints[0]?.statement.type, 'retention');
  assert.equal(result.checkpoints[0]?.statement.seq, 8);
  const after = await w.store.audit.listSessions();
  assert.deepEqual(
    after.map((s) => s.identity),
    ['new', 'new'],
  );
  assert.deepEqual(await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem }), {
    ok: true,
    records: 5,
    chains: 1,
  });
  // A second run has nothing to do.
  assert.equal((await job.run()).deleted, 0);

  // Deleting more than the retention checkpoint allows is still caught.
  w.raw().prepare('DELETE FROM audit_records WHERE seq = 8').run();
  const broken = await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem });
  assert.equal(broken.ok, false);
  assert.equal(!broken.ok && broken.seq, 8);
  await w.done();
});

test('retention keeps a session that is still active at the cutoff, with its older records', async () => {
  const w = await world();
  const recorder = createAuditRecorder({
    store: w.store,
    replicaId: 'r-1',
    clock: () => w.clock.now,
    maxBodyBytes: 1024,
    bodies: true,
    sessionIdleMs: 60_000,
  });
  await recorder.record(start(w.clock.now, 'gone'), { status: 200, bytesOut: 1, durationMs: 1 }); // seq 1-2
  await recorder.record(start(w.clock.now + 1, 'long', 'ks-long'), { status: 200, bytesOut: 1, durationMs: 1 }); // seq 3-4
  w.clock.now += 10 * DAY;
  await recorder.record(start(w.clock.now, 'long', 'ks-long'), { status: 200, bytesOut: 1, durationMs: 1 }); // seq 5-6
  await recorder.close();
  const job = createRetentionJob({
    store: w.store.audit,
    key: w.key,
    replicaId: 'r-1',
    clock: () => w.clock.now,
    retentionMs: 5 * DAY,
  });
  assert.equal((await job.run()).deleted, 2);
  const sessions = await w.store.audit.listSessions();
  assert.deepEqual(
    sessions.map((s) => [s.identity, s.calls]),
    [['long', 2]],
  );
  assert.equal((await verifyAudit(w.store.audit)).ok, true);
  await w.done();
});

test('a forged retention checkpoint (another key) does not excuse a deleted prefix', async () => {
  const w = await world();
  await fill(w);
  const forger = await loadSigningKey();
  const first = await w.store.audit.getRecord('r-1', 3);
  await w.store.audit.appendCheckpoint(
    signStatement(forger, {
      type: 'retention',
      chain: 'r-1',
      seq: 3,
      hash: first?.hash ?? '',
      prevHash: first?.prevHash ?? '',
      time: w.clock.now,
      by: 'r-1',
    }),
  );
  await w.store.audit.deleteBefore('r-1', 3);
  const result = await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem });
  assert.equal(result.ok, false);
  assert.match(
    !result.ok ? result.problem : '',
    /^the retention checkpoint .* has a bad signature for the configured key$/,
  );
  await w.done();
});

test('the checkpointer signs only heads that moved, and witnesses each checkpoint', async () => {
  const w = await world();
  await fill(w, 1);
  const witnessed: string[] = [];
  const checkpointer = createCheckpointer({
    store: w.store.audit,
    key: w.key,
    replicaId: 'r-1',
    clock: () => w.clock.now,
    witness: async (c) => {
      witnessed.push(`${c.statement.chain}@${c.statement.seq}`);
    },
  });
  assert.equal((await checkpointer.checkpoint()).length, 1);
  assert.equal((await checkpointer.checkpoint()).length, 0);
  await fill(w, 1);
  await checkpointer.stop(); // writes a last checkpoint
  assert.deepEqual(witnessed, ['r-1@2', 'r-1@5']);
  assert.equal((await verifyAudit(w.store.audit, { publicKey: w.key.publicKeyPem })).ok, true);
  await w.done();
});
