// verify --full reads rows through a fast path (ids and hashes decoded by SQLite, shapes filled in JS,
// one page awaited at a time): changing any column of any row, or a shared shape, must still be caught
// at that record — and re-encoding a value without changing it (a UUID blob as its text) must not be.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { verifyAudit, verifyAuditReport } from '../../packages/gateway/src/audit/verify.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditRecordDraft } from '../../packages/gateway/src/store/types.js';

const UUIDS = ['3f2504e0-4f89-41d3-9a0c-0305e82c3301', '9b2d7c1e-0000-4a4e-8f00-ffffffffffff'];

function drafts(i: number): AuditRecordDraft[] {
  const eventId = UUIDS[i % 2]?.replace(/.$/, String(i % 10)) as string;
  const sessionId =
    i % 3 === 0 ? `k-${'ab'.repeat(15)}${String(i).padStart(2, '0')}` : i % 3 === 1 ? `s-${eventId}` : 'free-text';
  const request = {
    cluster: 'prod',
    method: 'GET',
    path: `/api/v1/namespaces/n${i}/pods`,
    requestId: `req-${i}`,
    principal: { issuer: 'https://idp', subject: `u${i % 2}` },
    decision: { effect: 'allow', reason: 'rule' },
  };
  return [
    {
      kind: 'request',
      time: 1_700_000_000_000 + i,
      eventId: i === 4 ? 'not-a-uuid' : eventId,
      sessionId,
      identity: `id-${i % 2}`,
      data: request,
    },
    { kind: 'outcome', time: 1_700_000_000_001 + i, eventId, sessionId, data: { status: 200, durationMs: i } },
  ];
}

async function withStore(run: (db: Sqlite.Database, file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-verify-columns-'));
  const file = join(dir, 'audit.db');
  const store = await createStore(`sqlite:${file}`, { replicaId: 'r-1', writerThread: false });
  for (let i = 0; i < 6; i++) await store.audit.append(drafts(i));
  await store.close();
  const db = new Sqlite(file);
  try {
    await run(db, file);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function verifyFile(file: string): Promise<Awaited<ReturnType<typeof verifyAudit>>> {
  const store = await createStore(`sqlite:${file}`, { replicaId: 'cli', writerThread: false });
  try {
    return await verifyAudit(store.audit, { pageSize: 4 });
  } finally {
    await store.close();
  }
}

test('the fixture verifies untouched, across pages, and a UUID stored as text instead of bytes verifies the same', () =>
  withStore(async (db, file) => {
    assert.deepEqual(await verifyFile(file), { ok: true, records: 12, chains: 1 });
    db.prepare(
      `UPDATE audit_records SET event_id = lower(substr(hex(event_id),1,8)||'-'||substr(hex(event_id),9,4)||'-'||
         substr(hex(event_id),13,4)||'-'||substr(hex(event_id),17,4)||'-'||substr(hex(event_id),21)) WHERE seq = 3`,
    ).run();
    assert.deepEqual(await verifyFile(file), { ok: true, records: 12, chains: 1 });
  }));

// Each change keeps the row's own hash column, so only re-deriving the hash (or the link) catches it.
const tampering: [column: string, seq: number, sql: string][] = [
  [
    'seq (two rows swapped)',
    5,
    'UPDATE audit_records SET seq = -seq WHERE seq IN (5, 6); UPDATE audit_records SET seq = CASE seq WHEN -5 THEN 6 ELSE 5 END WHERE seq < 0',
  ],
  ['kind', 3, 'UPDATE audit_records SET kind = 2 WHERE seq = 3'],
  ['time', 7, 'UPDATE audit_records SET time = time + 1 WHERE seq = 7'],
  ['event_id (a byte)', 5, "UPDATE audit_records SET event_id = x'00' || substr(event_id, 2) WHERE seq = 5"],
  ['event_id (text)', 9, "UPDATE audit_records SET event_id = 'not-a-uuid2' WHERE seq = 9"],
  [
    'session_id (k- bytes)',
    1,
    "UPDATE audit_records SET session_id = substr(session_id, 1, 16) || x'00' WHERE seq = 1",
  ],
  [
    'session_id (s- bytes)',
    3,
    "UPDATE audit_records SET session_id = x'73' || substr(session_id, 2, 15) || x'01' WHERE seq = 3",
  ],
  [
    'session_id (k- marker to s-)',
    1,
    "UPDATE audit_records SET session_id = x'73' || substr(session_id, 2) WHERE seq = 1",
  ],
  ['session_id (text)', 5, "UPDATE audit_records SET session_id = 'other-text' WHERE seq = 5"],
  ['session_id removed', 2, 'UPDATE audit_records SET session_id = NULL WHERE seq = 2'],
  ['identity', 3, "UPDATE audit_records SET identity = 'id-9' WHERE seq = 3"],
  ['identity added', 2, "UPDATE audit_records SET identity = 'id-0' WHERE seq = 2"],
  ['data (a hole value)', 7, "UPDATE audit_records SET data = replace(data, 'n3', 'n4') WHERE seq = 7"],
  [
    'shape (another shape)',
    2,
    'UPDATE audit_records SET shape = (SELECT shape FROM audit_records WHERE seq = 1) WHERE seq = 2',
  ],
  ['shape text (shared by many rows)', 1, "UPDATE audit_shapes SET text = replace(text, 'prod', 'prox')"],
  ['prev_hash', 4, 'UPDATE audit_records SET prev_hash = zeroblob(32) WHERE seq = 4'],
  ['hash', 6, 'UPDATE audit_records SET hash = zeroblob(32) WHERE seq = 6'],
  [
    'chain (moved to another chain)',
    8,
    "INSERT INTO audit_chains (name) VALUES ('r-2'); UPDATE audit_records SET chain = (SELECT id FROM audit_chains WHERE name = 'r-2') WHERE seq = 8",
  ],
];

for (const [column, seq, sql] of tampering) {
  test(`a changed ${column} is detected at seq ${seq}`, () =>
    withStore(async (db, file) => {
      db.exec(sql);
      const result = await verifyFile(file);
      assert.equal(result.ok, false, `${column}: ${JSON.stringify(result)}`);
      assert.equal(!result.ok && result.chain, 'r-1');
      assert.equal(!result.ok && result.seq, seq, JSON.stringify(result));
    }));
}

test('the SQLite store offers verification its pages, so the per-record path is the fast one', () =>
  withStore(async (_db, file) => {
    const store = await createStore(`sqlite:${file}`, { replicaId: 'cli', writerThread: false });
    try {
      assert.equal(typeof store.audit.scanChainPages, 'function');
      const report = await verifyAuditReport(store.audit, { pageSize: 5 });
      assert.equal(report.ok, true);
      assert.equal(report.records, 12);
    } finally {
      await store.close();
    }
  }));
