// Retention: removes sessions older than `retentionMs`. Deleting cuts the front off a hash chain, so a
// signed "retention checkpoint" naming the new first record (its seq and prevHash) is written first;
// verify then starts each chain there and still passes.
import { silentLogger, type Logger } from '../lib/logger.js';
import { createScheduledJob, type ScheduledJob, type Timers } from '../lib/scheduled-job.js';
import type { AuditStore, SignedCheckpoint } from '../store/types.js';
import { signStatement, type SigningKey } from './checkpoint.js';

export interface RetentionResult {
  deleted: number;
  checkpoints: SignedCheckpoint[];
}

export type RetentionJob = ScheduledJob<RetentionResult>;

const DAY = 86_400_000;
/** Daily at 03:17 UTC: off the hour, when checkpoints and most cron jobs run. */
export const RETENTION_EVERY_MS = DAY;
export const RETENTION_OFFSET_MS = (3 * 60 + 17) * 60_000;

export interface RetentionDeps {
  store: AuditStore;
  key: SigningKey;
  replicaId: string;
  clock: () => number;
  retentionMs: number;
  /** Default daily (RETENTION_EVERY_MS) at 03:17 UTC (RETENTION_OFFSET_MS). */
  everyMs?: number;
  offsetMs?: number;
  timers?: Timers;
  logger?: Logger;
}

export function createRetentionJob(deps: RetentionDeps): RetentionJob {
  const logger = deps.logger ?? silentLogger;

  async function run(): Promise<RetentionResult> {
    const cutoff = deps.clock() - deps.retentionMs;
    const result: RetentionResult = { deleted: 0, checkpoints: [] };
    // Every chain, not only this replica's: replicas come and go, their chains stay.
    for (const head of await deps.store.chainHeads()) {
      const first = await deps.store.retentionStart(head.chain, cutoff);
      // Nothing to keep: the chain is emptied and continues (if ever) right after its head.
      const seq = first?.seq ?? head.seq + 1;
      if (seq <= head.firstSeq) continue;
      const checkpoint = signStatement(deps.key, {
        type: 'retention',
        chain: head.chain,
        seq,
        hash: first?.hash ?? '',
        prevHash: first?.prevHash ?? head.hash,
        time: deps.clock(),
        by: deps.replicaId,
      });
      await deps.store.appendCheckpoint(checkpoint);
      const deleted = await deps.store.deleteBefore(head.chain, seq);
      logger.info({ chain: head.chain, before: seq, deleted }, 'audit retention removed old records');
      result.deleted += deleted;
      result.checkpoints.push(checkpoint);
    }
    return result;
  }

  return createScheduledJob({
    name: `audit-retention-${deps.replicaId}`,
    everyMs: deps.everyMs ?? RETENTION_EVERY_MS,
    offsetMs: deps.offsetMs ?? (deps.everyMs === undefined ? RETENTION_OFFSET_MS : 0),
    clock: deps.clock,
    run,
    logger,
    failure: 'audit retention failed; the next run will retry',
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
  });
}
