// Ticket redemption (issue #16, approvals/ticket.ts) in every store: latestDecided() finds the approval
// an identical retry may use, redeem() hands it out once, even to two replicas racing for it. The same
// suite runs against SQLite and MongoDB (a real mongod when MONGODB_URI is set, otherwise the
// in-process wire-protocol server), like test/integration/store-contract.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { Store } from '../../packages/gateway/src/store/types.js';
import { openMongoBackend } from '../helpers/mongo-server.js';
import { approvalRecord } from '../helpers/hold-request.js';

const T0 = 1_700_000_000_000;

interface Backend {
  open(replicaId: string): Promise<Store>;
  cleanup(): Promise<void>;
}

function approval(id: string, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return approvalRecord(id, T0, {
    state: 'approved',
    fingerprint: 'fp-1',
    ticket: true,
    decidedAt: T0 + 10,
    decidedBy: 'alice',
    ...overrides,
  });
}

function runTicketContract(name: string, makeBackend: () => Promise<Backend>): void {
  describe(`ticket redemption contract: ${name}`, () => {
    async function withStores(fn: (one: Store, two: Store) => Promise<void>): Promise<void> {
      const backend = await makeBackend();
      try {
        const one = await backend.open('r-1');
        const two = await backend.open('r-2');
        await fn(one, two);
      } finally {
        await backend.cleanup();
      }
    }

    test('latestDecided: the newest decided, unredeemed approval of this identity and fingerprint in the window', () =>
      withStores(async (store) => {
        const repo = store.approvals;
        await repo.create(approval('old', { createdAt: T0 - 1_000 }));
        await repo.create(approval('denied', { createdAt: T0 + 1, state: 'denied' }));
        await repo.create(approval('newest', { createdAt: T0 + 2 }));
        await repo.create(approval('pending', { createdAt: T0 + 3, state: 'pending' }));
        await repo.create(approval('cancelled', { createdAt: T0 + 4, state: 'cancelled' }));
        await repo.create(approval('other-fp', { createdAt: T0 + 5, fingerprint: 'fp-2' }));
        await repo.create(approval('other-identity', { createdAt: T0 + 6, identity: 'reader' }));
        assert.equal((await repo.latestDecided('ci-deployer', 'fp-1', T0))?.id, 'newest');
        assert.equal((await repo.redeem('newest', T0 + 20))?.redeemedAt, T0 + 20);
        assert.equal((await repo.latestDecided('ci-deployer', 'fp-1', T0))?.id, 'denied', 'redeemed ones are skipped');
        assert.equal((await repo.latestDecided('ci-deployer', 'fp-1', T0 - 1_000))?.id, 'denied');
        assert.equal((await repo.latestDecided('ci-deployer', 'fp-2', T0))?.id, 'other-fp');
        assert.equal((await repo.latestDecided('reader', 'fp-1', T0))?.id, 'other-identity');
        assert.equal(await repo.latestDecided('ci-deployer', 'fp-1', T0 + 10), null, 'outside the window');
        assert.equal(await repo.latestDecided('nobody', 'fp-1', 0), null);
      }));

    test('redeem is a compare-and-set: once, only from approved, denied or expired; state unchanged', () =>
      withStores(async (store) => {
        const repo = store.approvals;
        await repo.create(approval('a'));
        await repo.create(approval('p', { state: 'pending' }));
        await repo.create(approval('c', { state: 'cancelled' }));
        await repo.create(approval('e', { state: 'expired' }));
        const first = await repo.redeem('a', T0 + 30);
        assert.equal(first?.state, 'approved');
        assert.equal(first?.redeemedAt, T0 + 30);
        assert.equal(first?.decidedBy, 'alice', 'the rest of the record is kept');
        assert.equal(await repo.redeem('a', T0 + 31), null, 'a second redemption changes nothing');
        assert.equal((await repo.get('a'))?.redeemedAt, T0 + 30);
        assert.equal(await repo.redeem('p', T0 + 30), null, 'a pending approval is not redeemable');
        assert.equal(await repo.redeem('c', T0 + 30), null, 'a cancelled approval is not redeemable');
        assert.equal(await repo.redeem('missing', T0 + 30), null);
        assert.equal((await repo.redeem('e', T0 + 30))?.state, 'expired');
        // Redeeming is no decision: a pending approval can still be decided, once.
        assert.equal((await repo.transition('p', 'pending', 'approved', { decidedAt: T0 + 40 }))?.state, 'approved');
        assert.equal((await repo.get('p'))?.redeemedAt, undefined);
      }));

    test('two replicas racing to redeem the same approval: exactly one gets it, every round', () =>
      withStores(async (one, two) => {
        for (let i = 0; i < 20; i += 1) {
          await one.approvals.create(approval(`race-${i}`));
          const results = await Promise.all([
            one.approvals.redeem(`race-${i}`, T0 + 100),
            two.approvals.redeem(`race-${i}`, T0 + 101),
            one.approvals.redeem(`race-${i}`, T0 + 102),
            two.approvals.redeem(`race-${i}`, T0 + 103),
          ]);
          const winners = results.filter((r) => r !== null);
          assert.equal(winners.length, 1, `race ${i}`);
          assert.deepEqual(await two.approvals.get(`race-${i}`), winners[0]);
        }
      }));
  });
}

runTicketContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-ticket-'));
  const file = join(dir, 'audit.db');
  const stores: Store[] = [];
  return {
    async open(replicaId) {
      const store = await createStore(`sqlite:${file}`, { replicaId, busyTimeoutMs: 2_000 });
      stores.push(store);
      return store;
    },
    async cleanup() {
      for (const store of stores) await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runTicketContract(
  process.env.MONGODB_URI ? 'mongodb (MONGODB_URI)' : 'mongodb (in-process wire-protocol server)',
  async () => {
    const mongo = await openMongoBackend();
    const database = `hoop_ticket_${randomUUID().slice(0, 8)}`;
    const stores: Store[] = [];
    return {
      async open(replicaId) {
        const store = await createStore(mongo.url(database), { replicaId, serverSelectionTimeoutMs: 1500 });
        stores.push(store);
        return store;
      },
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
);
