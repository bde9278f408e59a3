// An in-memory ApprovalRepository with the same compare-and-set semantics as the real stores, for
// tests of the approval state machine. Records are copied in and out so callers cannot mutate state.
import {
  slackRef,
  type ApprovalGrant,
  type ApprovalRecord,
  type ApprovalRepository,
  type ApprovalState,
  type ApprovalVote,
} from '../../packages/gateway/src/approvals/types.js';

export interface MemoryApprovalRepository extends ApprovalRepository {
  /** Every grant created, for assertions. */
  readonly grants: readonly ApprovalGrant[];
  /** Count of calls per method, to assert polling behaviour. */
  readonly calls: Record<string, number>;
}

function copy<T>(value: T): T {
  return structuredClone(value);
}

export function createMemoryApprovalRepository(): MemoryApprovalRepository {
  const records = new Map<string, ApprovalRecord>();
  const grants: ApprovalGrant[] = [];
  const calls: Record<string, number> = {};
  const count = (name: string): void => {
    calls[name] = (calls[name] ?? 0) + 1;
  };

  return {
    grants,
    calls,
    async create(record) {
      count('create');
      if (records.has(record.id)) throw new Error(`approval ${record.id} already exists`);
      records.set(record.id, copy(record));
    },
    async get(id) {
      count('get');
      const found = records.get(id);
      return found === undefined ? null : copy(found);
    },
    async list(filter) {
      count('list');
      return [...records.values()]
        .filter((r) => filter?.state === undefined || r.state === filter.state)
        .filter((r) => filter?.holder === undefined || r.holder === filter.holder)
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(copy);
    },
    async addVote(id, vote: ApprovalVote) {
      count('addVote');
      const found = records.get(id);
      if (found === undefined || found.state !== 'pending') return null;
      if (found.votes.some((v) => v.user === vote.user || (v.keys ?? []).some((k) => (vote.keys ?? []).includes(k))))
        return null;
      const next = { ...found, votes: [...found.votes, copy(vote)] };
      records.set(id, next);
      return copy(next);
    },
    async transition(id, from: ApprovalState, to: ApprovalState, patch) {
      count('transition');
      const found = records.get(id);
      if (found === undefined || found.state !== from) return null;
      const next: ApprovalRecord = { ...found, ...copy(patch), state: to };
      records.set(id, next);
      return copy(next);
    },
    async latestDecided(identity, fingerprint, since) {
      count('latestDecided');
      const found = [...records.values()]
        .filter(
          (r) =>
            ['approved', 'denied', 'expired'].includes(r.state) &&
            r.identity === identity &&
            r.fingerprint === fingerprint &&
            r.createdAt >= since &&
            r.redeemedAt === undefined,
        )
        .sort((a, b) => b.createdAt - a.createdAt)[0];
      return found === undefined ? null : copy(found);
    },
    async redeem(id, at) {
      count('redeem');
      const found = records.get(id);
      if (
        found === undefined ||
        !['approved', 'denied', 'expired'].includes(found.state) ||
        found.redeemedAt !== undefined
      )
        return null;
      const next = { ...found, redeemedAt: at };
      records.set(id, next);
      return copy(next);
    },
    async setSlackMessage(id, slack) {
      count('setSlackMessage');
      const found = records.get(id);
      if (found !== undefined) records.set(id, { ...found, slack: slackRef(slack) });
    },
    async createGrant(grant) {
      count('createGrant');
      grants.push(copy(grant));
    },
    async activeGrants(identity, cluster, now) {
      count('activeGrants');
      return grants
        .filter(
          (g) => g.identity === identity && g.cluster === cluster && g.expiresAt > now && g.revokedAt === undefined,
        )
        .map(copy);
    },
    async listGrants(filter = {}) {
      const at = filter.activeAt;
      return grants.filter((g) => at === undefined || (g.expiresAt > at && g.revokedAt === undefined)).map(copy);
    },
    async revokeGrant(id, by, now) {
      const found = grants.find((g) => g.id === id);
      if (found === undefined || found.expiresAt <= now || found.revokedAt !== undefined) return null;
      found.revokedAt = now;
      found.revokedBy = by;
      return copy(found);
    },
  };
}
