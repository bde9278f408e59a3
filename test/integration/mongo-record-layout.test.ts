// The MongoDB record layout (issue #17): layout 2 keeps a record's data as a shape stored once plus the
// per-call values, hashes and ids as BinData; layout-1 documents written by earlier versions (data as
// a document, hex hashes, text ids) are still read, queried and verified beside them. Runs against a
// real mongod when MONGODB_URI is set, else the in-process wire-protocol server.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Binary, MongoClient, type Db } from 'mongodb';
import { verifyAudit } from '../../packages/gateway/src/audit/verify.js';
import { chainDrafts, GENESIS_HASH } from '../../packages/gateway/src/store/chain.js';
import { createStore, type Store } from '../../packages/gateway/src/store/index.js';
import type { AuditRecordDraft } from '../../packages/gateway/src/store/types.js';
import { openMongoBackend } from '../helpers/mongo-server.js';

type Backend = Awaited<ReturnType<typeof openMongoBackend>>;

/** One allowed GET as the pipeline records it: request + outcome. */
function call(time: number, sessionId: string, effect = 'allow'): AuditRecordDraft[] {
  const eventId = randomUUID();
  return [
    {
      kind: 'request',
      time,
      eventId,
      sessionId,
      identity: 'ci-deployer',
      data: {
        cluster: 'demo',
        decision: { effect, reason: 'rbac-allowed', serviceAccount: 'agents/ci-deployer' },
        info: { verb: 'get', resource: 'configmaps', namespace: 'staging', name: 'app-config' },
        method: 'GET',
        path: '/api/v1/namespaces/staging/configmaps/app-config',
        principal: { issuer: 'https://idp.example', subject: 'ci-deployer', groups: ['ci-deployers'] },
        requestId: randomUUID(),
      },
    },
    {
      kind: 'outcome',
      time: time + 3,
      eventId,
      sessionId,
      identity: 'ci-deployer',
      data: { status: 200, durationMs: 4 },
    },
  ];
}

const session = (): string => `k-${randomUUID().replaceAll('-', '')}`;

describe('MongoDB record layout', () => {
  let backend: Backend;
  let client: MongoClient;
  let db: Db;
  let database: string;
  const stores: Store[] = [];

  before(async () => {
    backend = await openMongoBackend();
  });
  after(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await backend.stop();
  });

  async function fresh(replicaId = 'r-1'): Promise<Store> {
    database = `hoop_layout_${randomUUID().slice(0, 8)}`;
    await client?.close().catch(() => undefined);
    client = new MongoClient(backend.url(database));
    db = client.db();
    const store = await createStore(backend.url(database), { replicaId, serverSelectionTimeoutMs: 1500 });
    stores.push(store);
    return store;
  }

  test('layout 2 keeps no data document: hashes and ids are BinData, each shape is stored once', async () => {
    const store = await fresh();
    const s = session();
    for (let i = 0; i < 10; i++) await store.audit.append(call(1_000 + i * 10, s));
    const docs = await db.collection('audit_records').find({}).sort({ seq: 1 }).toArray();
    assert.equal(docs.length, 20);
    for (const doc of docs) {
      assert.equal(doc['data'], undefined, 'no data document in layout 2');
      assert.ok(doc['hash'] instanceof Binary && doc['hash'].length() === 32);
      assert.ok(doc['prevHash'] instanceof Binary && doc['prevHash'].length() === 32);
      assert.ok(doc['eventId'] instanceof Binary && doc['eventId'].length() === 16);
      assert.ok(doc['sessionId'] instanceof Binary && doc['sessionId'].length() === 17);
      assert.ok(doc['sh'] instanceof Binary, `${String(doc['kind'])} has a shape`);
    }
    // One request shape and one outcome shape for ten calls; the varying members are values.
    assert.equal(await db.collection('audit_shapes').countDocuments({}), 2);
    assert.ok(String(docs[0]?.['v']).includes('/api/v1/namespaces/staging/configmaps/app-config'));
    assert.equal(docs[0]?.['ef'], 'allow');
    assert.equal(docs[0]?.['cl'], 'demo');
    // Read back exactly as written, and verified.
    const [request] = await store.audit.listRecords({ sessionId: s, kinds: ['request'], limit: 1 });
    assert.equal(request?.data['path'], '/api/v1/namespaces/staging/configmaps/app-config');
    assert.deepEqual(request?.data['decision'], {
      effect: 'allow',
      reason: 'rbac-allowed',
      serviceAccount: 'agents/ci-deployer',
    });
    assert.equal(request?.sessionId, s);
    assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 20, chains: 1 });
  });

  test('a changed shape or a changed value fails verification', async () => {
    const store = await fresh();
    for (let i = 0; i < 3; i++) await store.audit.append(call(1_000 + i * 10, session()));
    assert.equal((await verifyAudit(store.audit)).ok, true);
    const shapes = db.collection<{ _id: Binary; text: string }>('audit_shapes');
    const shape = (await shapes.find({}).toArray()).find((doc) => doc.text.includes('rbac-allowed'));
    assert.ok(shape !== undefined);
    await shapes.updateOne({ _id: shape._id }, { $set: { text: shape.text.replace('"allow"', '"deny"') } });
    // A fresh reader (no cached shape) sees the changed shape.
    const reader = await createStore(backend.url(database), { replicaId: 'reader', serverSelectionTimeoutMs: 1500 });
    stores.push(reader);
    const changedShape = await verifyAudit(reader.audit);
    assert.equal(changedShape.ok, false);
    await shapes.updateOne({ _id: shape._id }, { $set: { text: shape.text } });
    const records = db.collection('audit_records');
    await records.updateOne({ seq: 3 }, { $set: { v: '"x"' } });
    const reader2 = await createStore(backend.url(database), { replicaId: 'reader2', serverSelectionTimeoutMs: 1500 });
    stores.push(reader2);
    const changedValue = await verifyAudit(reader2.audit);
    assert.deepEqual(changedValue.ok ? 'ok' : changedValue.seq, 3);
  });

  test('layout-1 documents of earlier versions are read, queried and verified beside layout-2 ones', async () => {
    // What earlier versions wrote: `{_id: "chain:seq", ...record}` with data as a document.
    database = `hoop_layout_${randomUUID().slice(0, 8)}`;
    await client?.close().catch(() => undefined);
    client = new MongoClient(backend.url(database));
    db = client.db();
    const oldSession = session();
    const oldCalls = [...call(1_000, oldSession), ...call(1_010, oldSession, 'approve')];
    const { slices } = chainDrafts('r-1', { seq: 0, hash: GENESIS_HASH }, [oldCalls]);
    const layout1 = (slices[0] ?? []).map((record) => ({ _id: `${record.chain}:${record.seq}`, ...record }));
    await db.collection('audit_records').insertMany(layout1 as never[]);
    const store = await createStore(backend.url(database), { replicaId: 'r-1', serverSelectionTimeoutMs: 1500 });
    stores.push(store);
    const newSession = session();
    await store.audit.append(call(2_000, newSession));
    await store.audit.append(call(2_010, newSession, 'deny'));

    assert.deepEqual(await verifyAudit(store.audit), { ok: true, records: 8, chains: 1 });
    const old = await store.audit.getRecord('r-1', 1);
    assert.deepEqual(old?.data, oldCalls[0]?.data);
    assert.equal(old?.sessionId, oldSession);
    // Queries by id match both forms.
    assert.equal((await store.audit.listRecords({ sessionId: oldSession })).length, 4);
    assert.equal((await store.audit.listRecords({ sessionId: newSession })).length, 4);
    const both = [oldCalls[0]?.eventId as string, (await store.audit.getRecord('r-1', 5))?.eventId as string];
    assert.equal((await store.audit.listRecords({ eventIds: both, kinds: ['request'] })).length, 2);
    // Session summaries count decisions from either layout.
    const sessions = await store.audit.listSessions();
    const byId = new Map(sessions.map((summary) => [summary.sessionId, summary]));
    assert.deepEqual(byId.get(oldSession)?.decisions, { allow: 1, deny: 0, approve: 1 });
    assert.deepEqual(byId.get(newSession)?.decisions, { allow: 1, deny: 1, approve: 0 });
    assert.equal(byId.get(newSession)?.cluster, 'demo');
    assert.equal(byId.get(oldSession)?.cluster, 'demo');
  });
});
