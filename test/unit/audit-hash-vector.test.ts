// The hash chain's canonical form is pinned: a literal record and its literal hash (issue #17). A change
// to canonicalisation or to what is hashed fails here — and would leave existing stores unverifiable.
// Also: a store file of layout 1 (WITHOUT ROWID, hex hashes, data JSON in insertion order) still
// verifies, takes new records, and still shows tampering.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { verifyAudit, verifyAuditReport } from '../../packages/gateway/src/audit/verify.js';
import { canonicalJson, canonicalRecordText, GENESIS_HASH, hashRecord, hashRecordReference } from '../../packages/gateway/src/store/chain.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import { auditIndexes, auditRecordsV1 } from '../../packages/gateway/src/store/sqlite/schema.js';
import type { AuditRecord } from '../../packages/gateway/src/store/types.js';

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
    info: { verb: 'get', apiGroup: '', apiVersion: 'v1', resource: 'configmaps', subresource: '', namespace: 'staging', name: 'app-config', isResourceRequest: true },
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
  const reference = { v: 1, chain: rest.chain, seq: rest.seq, kind: rest.kind, time: rest.time, eventId: rest.eventId, sessionId: rest.sessionId, identity: rest.identity, data, prevHash: rest.prevHash };
  assert.equal(canonicalRecordText(rest, canonicalJson(data)), canonicalJson(reference));
  const bare: Omit<AuditRecord, 'hash'> = { chain: 'c', seq: 1, kind: 'checkpoint', time: 0, data: {}, prevHash: GENESIS_HASH };
  assert.equal(hashRecord(bare), hashRecordReference(bare));
  assert.notEqual(hashRecord({ ...vector, seq: 43 }), vectorHash);
});

test('a layout-1 store (WITHOUT ROWID, hex hashes, non-canonical data text) verifies, grows, and shows tampering', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-layout1-'));
  const file = join(dir, 'audit.db');
  try {
    // Written as the code before issue #17 wrote it.
    const old = new Sqlite(file);
    old.exec(auditRecordsV1 + auditIndexes);
    const insert = old.prepare('INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let prevHash = GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq++) {
      const record = { ...vector, chain: 'old', seq, time: vector.time + seq, prevHash };
      const hash = hashRecord(record);
      insert.run('old', seq, record.kind, record.time, record.eventId, record.sessionId, record.identity, JSON.stringify(record.data), prevHash, hash);
      prevHash = hash;
    }
    old.close();

    const store = await createStore(`sqlite:${file}`, { replicaId: 'old' });
    assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 3, chains: 1 });
    const [appended] = await store.audit.append([{ kind: 'outcome', time: vector.time + 9, eventId: vector.eventId, data: { status: 200 } }]);
    assert.equal(appended?.seq, 4);
    assert.equal(appended?.prevHash, prevHash);
    const report = await verifyAuditReport(store.audit);
    assert.equal(report.ok, true);
    assert.equal(report.records, 4);
    const raw = new Sqlite(file);
    assert.equal((raw.prepare("SELECT sql FROM sqlite_schema WHERE name = 'audit_records'").get() as { sql: string }).sql.includes('WITHOUT ROWID'), true);
    raw.prepare("UPDATE audit_records SET data = json_set(data, '$.method', 'DELETE') WHERE seq = 2").run();
    raw.close();
    const tampered = await verifyAudit(store.audit);
    assert.deepEqual(tampered, { ok: false, chain: 'old', seq: 2, problem: 'record does not match its hash (changed, or moved from another position)' });
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a new store file is layout 2: a rowid table whose hashes are 32-byte BLOBs and whose data is the hashed text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-layout2-'));
  const file = join(dir, 'audit.db');
  try {
    const store = await createStore(`sqlite:${file}`, { replicaId: 'new' });
    const [record] = await store.audit.append([{ kind: 'request', time: 1, eventId: 'e', data: { z: 1, a: { y: 2, b: 3 } } }]);
    await store.close();
    const raw = new Sqlite(file, { readonly: true });
    const row = raw.prepare('SELECT id, data, hash, prev_hash FROM audit_records').get() as { id: number; data: string; hash: Buffer; prev_hash: Buffer };
    raw.close();
    assert.equal(row.id, 1);
    assert.equal(row.data, '{"a":{"b":3,"y":2},"z":1}');
    assert.equal(row.hash.length, 32);
    assert.equal(row.hash.toString('hex'), record?.hash);
    assert.equal(row.prev_hash.toString('hex'), GENESIS_HASH);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
