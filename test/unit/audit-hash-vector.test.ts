// The hash chain's canonical form is pinned: a literal record and its literal hash (issue #17). A change
// to canonicalisation or to what is hashed fails here — and would leave existing stores unverifiable.
// Also: a store file of layout 1 (WITHOUT ROWID, hex hashes, data JSON in insertion order) or 2 is
// moved to layout 3 when opened, with the same hashes: it verifies, takes new records, shows tampering.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { verifyAudit, verifyAuditReport } from '../../packages/gateway/src/audit/verify.js';
import {
  canonicalJson,
  canonicalRecordText,
  GENESIS_HASH,
  hashRecord,
  hashRecordReference,
} from '../../packages/gateway/src/store/chain.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import { auditIndexes, auditRecordsV1 } from '../../packages/gateway/src/store/sqlite/migrate.js';
import type { AuditRecord } from '../../packages/gateway/src/store/types.js';
import { tamperData } from '../helpers/audit-rows.js';

const vector: Omit<AuditRecord, 'hash'> = {
  chain: 'replica-1',
  seq: 42,
  kind: 'request',
  time: 1700000000123,
  eventId: '6f1c2d3e-0000-4000-8000-000000000042',
  sessionId: 'k-0123456789abcdef0123456789abcdef',
  identity: 'ci-deployer',
  data: {
    requestId: 'req-42',
    cluster: 'prod',
    method: 'GET',
    path: '/api/v1/namespaces/staging/configmaps/app-config',
    decision: { effect: 'allow', reason: 'rbac-allowed', serviceAccount: 'agents/ci-deployer' },
    info: {
      verb: 'get',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'configmaps',
      subresource: '',
      namespace: 'staging',
      name: 'app-config',
      isResourceRequest: true,
    },
    principal: { issuer: 'https://idp.example.com', subject: 'bot', groups: ['ci', 'ünïcode ✓'] },
    note: 'line\nbreak "quoted" \\ back',
    n: 1.5,
    neg: -0,
    nothing: null,
  },
  prevHash: 'a'.repeat(64),
};
const vectorHash = 'b65e31b1ffd4f4eb154126d48b42e5be52c88388198367e59f4e576522192a28';

test('hash test vector: a literal record hashes to its literal SHA-256 (format version 1)', () => {
  assert.equal(hashRecordReference(vector), vectorHash);
  assert.equal(hashRecord(vector), vectorHash);
  // The fast form used by verify (keys pre-ordered, data spliced in as text) is byte-identical.
  const { data, ...rest } = vector;
  const reference = {
    v: 1,
    chain: rest.chain,
    seq: rest.seq,
    kind: rest.kind,
    time: rest.time,
    eventId: rest.eventId,
    sessionId: rest.sessionId,
    identity: rest.identity,
    data,
    prevHash: rest.prevHash,
  };
  assert.equal(canonicalRecordText(rest, canonicalJson(data)), canonicalJson(reference));
  const bare: Omit<AuditRecord, 'hash'> = {
    chain: 'c',
    seq: 1,
    kind: 'checkpoint',
    time: 0,
    data: {},
    prevHash: GENESIS_HASH,
  };
  assert.equal(hashRecord(bare), hashRecordReference(bare));
  assert.notEqual(hashRecord({ ...vector, seq: 43 }), vectorHash);
});

const layout2 = `CREATE TABLE audit_records (id INTEGER PRIMARY KEY, chain TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  time INTEGER NOT NULL, event_id TEXT, session_id TEXT, identity TEXT, data TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
CREATE UNIQUE INDEX audit_records_chain_seq ON audit_records (chain, seq);`;

for (const layout of [1, 2] as const)
  test(`a layout-${layout} store (${layout === 1 ? 'WITHOUT ROWID, hex hashes, non-canonical data text' : 'one canonical JSON text per row'}) moves to layout 3, verifies, grows, and shows tampering`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `hoop-layout${layout}-`));
    const file = join(dir, 'audit.db');
    try {
      // Written as the code before issue #17's layout 3 wrote it.
      const old = new Sqlite(file);
      old.exec((layout === 1 ? auditRecordsV1 : layout2) + auditIndexes);
      const insert = old.prepare(
        'INSERT INTO audit_records (chain, seq, kind, time, event_id, session_id, identity, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      let prevHash = GENESIS_HASH;
      for (let seq = 1; seq <= 3; seq++) {
        const record = { ...vector, chain: 'old', seq, time: vector.time + seq, prevHash };
        const hash = hashRecord(record);
        const [data, prev, own] =
          layout === 1
            ? [JSON.stringify(record.data), prevHash, hash]
            : [canonicalJson(record.data), Buffer.from(prevHash, 'hex'), Buffer.from(hash, 'hex')];
        insert.run(
          'old',
          seq,
          record.kind,
          record.time,
          record.eventId,
          record.sessionId,
          record.identity,
          data,
          prev,
          own,
        );
        prevHash = hash;
      }
      old.close();

      const store = await createStore(`sqlite:${file}`, { replicaId: 'old' });
      assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 3, chains: 1 });
      const [appended] = await store.audit.append([
        {
          kind: 'outcome',
          time: vector.time + 9,
          ...(vector.eventId === undefined ? {} : { eventId: vector.eventId }),
          data: { status: 200 },
        },
      ]);
      assert.equal(appended?.seq, 4);
      assert.equal(appended?.prevHash, prevHash);
      const report = await verifyAuditReport(store.audit);
      assert.equal(report.ok, true);
      assert.equal(report.records, 4);
      const raw = new Sqlite(file);
      const sql = (raw.prepare("SELECT sql FROM sqlite_schema WHERE name = 'audit_records'").get() as { sql: string })
        .sql;
      assert.equal(sql.includes('WITHOUT ROWID'), false);
      assert.match(sql, /\bshape INTEGER\b/);
      assert.equal(
        raw.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'audit_records_legacy'").pluck().get(),
        0,
      );
      tamperData(raw, 2, (data) => ({ ...data, method: 'DELETE' }));
      raw.close();
      const tampered = await verifyAudit(store.audit);
      assert.deepEqual(tampered, {
        ok: false,
        chain: 'old',
        seq: 2,
        problem: 'record does not match its hash (changed, or moved from another position)',
      });
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

test("a new store file is layout 3: chain ids, 16-byte ids and 32-byte hashes; data split into a shared shape and the row's own values", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-layout3-'));
  const file = join(dir, 'audit.db');
  try {
    const store = await createStore(`sqlite:${file}`, { replicaId: 'new' });
    const eventId = '0b7c3f3e-5d1a-4f4e-9a57-100000000001';
    const principal = { issuer: 'https://idp', subject: 'bot', groups: ['g'] };
    const call = (requestId: string) => ({
      cluster: 'c',
      method: 'GET',
      path: '/api/v1/pods',
      principal,
      decision: { effect: 'allow', reason: 'r' },
      requestId,
    });
    const appended = await store.audit.append([
      {
        kind: 'request',
        time: 1,
        eventId,
        sessionId: 'k-0123456789abcdef0123456789abcdef',
        identity: 'bot',
        data: call('req-1'),
      },
      { kind: 'request', time: 2, eventId: 'e', sessionId: 's-cursor', identity: 'bot', data: call('req-2') },
      { kind: 'frames', time: 3, eventId: 'e', data: { z: 1, a: { y: 2, b: 3 } } },
      // Refusals before authentication: whatever the stranger sends stays in the row, never in the shapes.
      ...['/a', '/b/c', '/d?x=1'].map((path, i) => ({
        kind: 'request' as const,
        time: 4 + i,
        identity: 'anonymous',
        data: {
          cluster: 'c',
          method: 'GET',
          path,
          userAgent: `ua-${i}`,
          decision: { effect: 'deny', reason: 'ERR_UNAUTHENTICATED' },
        },
      })),
    ]);
    assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 6, chains: 1 });
    assert.deepEqual((await store.audit.listRecords({ eventIds: [eventId] }))[0]?.data, call('req-1'));
    assert.deepEqual(
      (await store.audit.listRecords({ sessionId: 'k-0123456789abcdef0123456789abcdef' })).map((r) => r.seq),
      [1],
    );
    await store.close();
    const raw = new Sqlite(file, { readonly: true });
    const rows = raw
      .prepare(
        'SELECT id, chain, kind, event_id, session_id, shape, data, hash, prev_hash FROM audit_records ORDER BY id',
      )
      .all() as Array<{
      id: number;
      chain: number;
      kind: number;
      event_id: Buffer | string;
      session_id: Buffer | string | null;
      shape: number | null;
      data: string;
      hash: Buffer;
      prev_hash: Buffer;
    }>;
    const shapes = raw.prepare('SELECT count(*) FROM audit_shapes').pluck().get();
    raw.close();
    const [first, second, frames] = rows;
    assert.equal(first?.chain, 1);
    assert.equal(first?.kind, 1);
    assert.equal((first?.event_id as Buffer).length, 16);
    assert.equal((first?.session_id as Buffer).length, 17);
    assert.equal(second?.session_id, 's-cursor');
    assert.equal(first?.data, '"/api/v1/pods"\u0001"req-1"');
    assert.equal(second?.shape, first?.shape);
    assert.equal(frames?.shape, null);
    assert.equal(frames?.data, '{"a":{"b":3,"y":2},"z":1}');
    assert.equal(shapes, 2);
    assert.equal(rows[3]?.shape, rows[5]?.shape);
    assert.equal(first?.hash.toString('hex'), appended[0]?.hash);
    assert.equal(first?.prev_hash.toString('hex'), GENESIS_HASH);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
