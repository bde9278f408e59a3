// ApprovalRepository on SQLite: every state change is one conditional UPDATE … RETURNING, so a
// decision is taken once even when several connections (replicas on one file) race for it.
import type { Database, Statement } from 'better-sqlite3';
import {
  redeemableStates,
  slackRef,
  type ApprovalGrant,
  type ApprovalRecord,
  type ApprovalRepository,
} from '../../approvals/types.js';

const patchFields = ['decidedBy', 'decidedAt', 'decisionReason', 'grantMs'] as const;

function parseRecord(row: { doc: string; state: string } | undefined): ApprovalRecord | null {
  if (row === undefined) return null;
  const record = JSON.parse(row.doc) as ApprovalRecord;
  return { ...record, state: row.state as ApprovalRecord['state'] };
}

export function createSqliteApprovalRepository(db: Database): ApprovalRepository {
  const insert = db.prepare('INSERT INTO approvals (id, state, holder, created_at, doc) VALUES (?, ?, ?, ?, ?)');
  const getStmt = db.prepare('SELECT state, doc FROM approvals WHERE id = ?') as Statement<
    [string],
    { state: string; doc: string }
  >;
  const addVoteStmt = db.prepare(
    `UPDATE approvals SET doc = json_insert(doc, '$.votes[#]', json(@vote))
     WHERE id = @id AND state = 'pending'
       AND NOT EXISTS (SELECT 1 FROM json_each(approvals.doc, '$.votes') WHERE json_extract(value, '$.user') = @user)
       AND NOT EXISTS (
         SELECT 1 FROM json_each(approvals.doc, '$.votes') AS v, json_each(v.value, '$.keys') AS k
         WHERE k.value IN (SELECT value FROM json_each(@keys)))
     RETURNING state, doc`,
  ) as Statement<[{ id: string; vote: string; user: string; keys: string }], { state: string; doc: string }>;
  const slackStmt = db.prepare("UPDATE approvals SET doc = json_set(doc, '$.slack', json(?)) WHERE id = ?");
  const insertGrant = db.prepare(
    'INSERT INTO approval_grants (id, identity, cluster, created_at, expires_at, doc) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const grantsStmt = db.prepare(
    'SELECT doc FROM approval_grants WHERE identity = ? AND cluster = ? AND expires_at > ? ORDER BY created_at',
  ) as Statement<[string, string, number], { doc: string }>;
  const listGrantsStmt = db.prepare('SELECT doc FROM approval_grants ORDER BY created_at, id') as Statement<
    [],
    { doc: string }
  >;
  const listActiveStmt = db.prepare(
    'SELECT doc FROM approval_grants WHERE expires_at > ? ORDER BY created_at, id',
  ) as Statement<[number], { doc: string }>;
  // A revoked grant's expires_at becomes the revocation time, so every "active" query excludes it.
  const revokeStmt = db.prepare(
    `UPDATE approval_grants SET expires_at = @now, doc = json_set(doc, '$.revokedAt', @now, '$.revokedBy', @by)
     WHERE id = @id AND expires_at > @now AND json_extract(doc, '$.revokedAt') IS NULL RETURNING doc`,
  ) as Statement<[{ id: string; by: string; now: number }], { doc: string }>;
  // Tickets (approvals/ticket.ts): the (state, created_at) index bounds the scan to the TTL window.
  const decidedIn = `state IN (${redeemableStates.map((state) => `'${state}'`).join(', ')})`;
  const latestDecidedStmt = db.prepare(
    `SELECT state, doc FROM approvals WHERE ${decidedIn} AND created_at >= @since
       AND json_extract(doc, '$.fingerprint') = @fingerprint AND json_extract(doc, '$.identity') = @identity
       AND json_extract(doc, '$.redeemedAt') IS NULL
     ORDER BY created_at DESC, id DESC LIMIT 1`,
  ) as Statement<[{ identity: string; fingerprint: string; since: number }], { state: string; doc: string }>;
  const redeemStmt = db.prepare(
    `UPDATE approvals SET doc = json_set(doc, '$.redeemedAt', @at)
     WHERE id = @id AND ${decidedIn} AND json_extract(doc, '$.redeemedAt') IS NULL RETURNING state, doc`,
  ) as Statement<[{ id: string; at: number }], { state: string; doc: string }>;
  const transitionStmts = new Map<string, Statement<[Record<string, unknown>], { state: string; doc: string }>>();

  return {
    async create(record) {
      insert.run(record.id, record.state, record.holder, record.createdAt, JSON.stringify(record));
    },
    async get(id) {
      return parseRecord(getStmt.get(id));
    },
    async list(filter = {}) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.state !== undefined) {
        where.push('state = ?');
        params.push(filter.state);
      }
      if (filter.holder !== undefined) {
        where.push('holder = ?');
        params.push(filter.holder);
      }
      const sql = `SELECT state, doc FROM approvals${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
      return (db.prepare(sql).all(...params) as Array<{ state: string; doc: string }>).map(
        (row) => parseRecord(row) as ApprovalRecord,
      );
    },
    async addVote(id, vote) {
      return parseRecord(
        addVoteStmt.get({ id, vote: JSON.stringify(vote), user: vote.user, keys: JSON.stringify(vote.keys ?? []) }),
      );
    },
    async transition(id, from, to, patch) {
      const fields = patchFields.filter((field) => patch[field] !== undefined);
      const key = fields.join(',');
      let stmt = transitionStmts.get(key);
      if (stmt === undefined) {
        const sets = ["'$.state', @to", ...fields.map((field) => `'$.${field}', @${field}`)].join(', ');
        stmt = db.prepare(
          `UPDATE approvals SET state = @to, doc = json_set(doc, ${sets}) WHERE id = @id AND state = @from RETURNING state, doc`,
        );
        transitionStmts.set(key, stmt);
      }
      const params: Record<string, unknown> = { id, from, to };
      for (const field of fields) params[field] = patch[field];
      return parseRecord(stmt.get(params));
    },
    async latestDecided(identity, fingerprint, since) {
      return parseRecord(latestDecidedStmt.get({ identity, fingerprint, since }));
    },
    async redeem(id, at) {
      return parseRecord(redeemStmt.get({ id, at }));
    },
    async setSlackMessage(id, slack) {
      slackStmt.run(JSON.stringify(slackRef(slack)), id);
    },
    async createGrant(grant: ApprovalGrant) {
      insertGrant.run(grant.id, grant.identity, grant.cluster, grant.createdAt, grant.expiresAt, JSON.stringify(grant));
    },
    async activeGrants(identity, cluster, now) {
      return grantsStmt.all(identity, cluster, now).map((row) => JSON.parse(row.doc) as ApprovalGrant);
    },
    async listGrants(filter = {}) {
      const rows = filter.activeAt === undefined ? listGrantsStmt.all() : listActiveStmt.all(filter.activeAt);
      return rows.map((row) => JSON.parse(row.doc) as ApprovalGrant);
    },
    async revokeGrant(id, by, now) {
      const row = revokeStmt.get({ id, by, now });
      return row === undefined ? null : (JSON.parse(row.doc) as ApprovalGrant);
    },
  };
}
