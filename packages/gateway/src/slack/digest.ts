// The weekly least-privilege digest (issue #8): a scheduled job posts, per identity, its calls,
// refusals, approvals and over-grant to the Slack channel; the same summaries answer `/hoop privileges`.
import { exportEvents } from '../audit/events.js';
import {
  buildLeastPrivilegeReport,
  describePermission,
  type GrantedLookup,
  type IdentityReport,
} from '../audit/least-privilege.js';
import { formatDuration } from '../config/values.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { createScheduledJob, nextSlot, type ScheduledJob, type Timers } from '../lib/scheduled-job.js';
import type { AuditStore } from '../store/types.js';
import { buildPrivilegesBlocks, type PrivilegesSummary } from './blocks.js';
import type { PrivilegesView } from './commands.js';

export const DIGEST_WINDOW_MS = 7 * 24 * 3600_000;
/** Weekly, Mondays at 09:00 UTC: the epoch (1970-01-01) was a Thursday, so the slots are shifted by 4 days 9 hours. */
export const DIGEST_EVERY_MS = DIGEST_WINDOW_MS;
export const DIGEST_OFFSET_MS = (4 * 24 + 9) * 3600_000;

export function toPrivilegesSummary(report: IdentityReport): PrivilegesSummary {
  const p = report.privileges;
  const og = report.overGrant;
  return {
    identity: p.identity,
    serviceAccount: p.serviceAccount,
    calls: report.totals.calls,
    refused: report.totals.refused,
    approved: report.totals.approved,
    ...('method' in og
      ? {
          overGrant: p.overGrant.length,
          overGrantSample: p.overGrant.slice(0, 3).map((o) => describePermission(o, 'cluster-wide')),
        }
      : {}),
    ...('error' in og ? { overGrantError: og.error } : {}),
    ...('skipped' in og ? { overGrantError: 'no cluster connection to ask' } : {}),
    since: Date.parse(p.since),
    until: Date.parse(p.until),
  };
}

export interface PrivilegesSourceDeps {
  store: AuditStore;
  identities: readonly { name: string; serviceAccount: string }[];
  /** Only this cluster's calls are read (the one `granted` asks). */
  cluster: string;
  granted?: GrantedLookup;
  clock?: () => number;
  windowMs?: number;
}

export interface PrivilegesSource {
  view(identity?: string): Promise<PrivilegesView>;
}

export function createPrivilegesSource(deps: PrivilegesSourceDeps): PrivilegesSource {
  const clock = deps.clock ?? Date.now;
  const windowMs = deps.windowMs ?? DIGEST_WINDOW_MS;
  return {
    async view(identity) {
      const identities = deps.identities.filter((i) => identity === undefined || i.name === identity);
      const until = clock();
      const since = until - windowMs;
      const reports = await buildLeastPrivilegeReport({
        identities: identities.map((i) => ({ name: i.name, serviceAccount: i.serviceAccount })),
        events: identities.length > 0 ? exportEvents(deps.store, { since, until }) : [],
        since,
        until,
        cluster: deps.cluster,
        ...(deps.granted === undefined ? {} : { granted: deps.granted }),
      });
      return { sinceText: formatDuration(windowMs), summaries: reports.map(toPrivilegesSummary) };
    },
  };
}

export interface PrivilegesDigestDeps {
  source: PrivilegesSource;
  client: {
    chat: {
      postMessage(args: {
        channel: string;
        text: string;
        blocks: unknown[];
        unfurl_links: boolean;
        unfurl_media: boolean;
      }): Promise<unknown>;
    };
  };
  channel: string;
  clock?: () => number;
  /** Default weekly (DIGEST_EVERY_MS), Mondays 09:00 UTC (DIGEST_OFFSET_MS). */
  everyMs?: number;
  offsetMs?: number;
  timers?: Timers;
  logger?: Logger;
  name?: string;
  /**
   * The store's once-only keys (shared by the replicas): the replica that claims a week's slot posts
   * its digest, the others skip it. Without it every replica posts.
   */
  claim?: (key: string, expiresAt: number) => Promise<boolean>;
}

/** run() builds and posts one digest now. */
export type PrivilegesDigest = ScheduledJob<void>;

export function createPrivilegesDigest(deps: PrivilegesDigestDeps): PrivilegesDigest {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? Date.now;
  const everyMs = deps.everyMs ?? DIGEST_EVERY_MS;
  const offsetMs = deps.offsetMs ?? (deps.everyMs === undefined ? DIGEST_OFFSET_MS : 0);

  async function post(): Promise<void> {
    if (deps.claim !== undefined) {
      // The slot this run belongs to (the latest one not after now): one digest per slot and channel.
      const slot = nextSlot(clock(), everyMs, offsetMs) - everyMs;
      if (!(await deps.claim(`digest:${deps.channel}:${slot}`, slot + everyMs))) {
        logger.info({ slot: new Date(slot).toISOString() }, 'least-privilege digest: posted by another replica');
        return;
      }
    }
    const view = await deps.source.view();
    const title = `Least-privilege digest, last ${view.sinceText}`;
    const over = view.summaries.reduce((n, s) => n + (s.overGrant ?? 0), 0);
    const text = `${title}: ${view.summaries.length} identities, ${over} over-granted permission(s)`;
    await deps.client.chat.postMessage({
      channel: deps.channel,
      text,
      blocks: buildPrivilegesBlocks(title, view.summaries, view.sinceText),
      unfurl_links: false,
      unfurl_media: false,
    });
    logger.info({ identities: view.summaries.length, overGrant: over }, 'least-privilege digest posted');
  }

  return createScheduledJob({
    name: deps.name ?? 'least-privilege-digest',
    everyMs,
    offsetMs,
    clock,
    run: post,
    logger,
    failure: 'least-privilege digest failed; the next week will try again',
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
  });
}

export interface GatewayPrivileges {
  source: PrivilegesSource;
  /** Schedules the weekly digest to `channel` (stopped by close()). */
  startDigest(client: PrivilegesDigestDeps['client'], channel: string): PrivilegesDigest;
  /** Stops the digests; the over-grant lookup belongs to whoever built it. */
  close(): Promise<void>;
}

/**
 * The gateway's wiring in one call: summaries of one cluster's calls, and the digest job. The
 * over-grant lookup (src/probes/) is built by the composition root and handed in, so this Slack
 * adapter holds no cluster connection.
 */
export function createGatewayPrivileges(deps: {
  identities: readonly { name: string; serviceAccount: string }[];
  /** The cluster whose calls are summarised (the one `granted` asks). */
  cluster: string;
  granted?: GrantedLookup;
  store: AuditStore;
  clock?: () => number;
  logger?: Logger;
  /** One digest per week across replicas (PrivilegesDigestDeps.claim). */
  claim?: PrivilegesDigestDeps['claim'];
}): GatewayPrivileges {
  const source = createPrivilegesSource({
    store: deps.store,
    identities: deps.identities,
    cluster: deps.cluster,
    ...(deps.granted === undefined ? {} : { granted: deps.granted }),
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
  });
  const digests: PrivilegesDigest[] = [];
  return {
    source,
    startDigest(client, channel) {
      const digest = createPrivilegesDigest({
        source,
        client,
        channel,
        ...(deps.logger === undefined ? {} : { logger: deps.logger }),
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        ...(deps.claim === undefined ? {} : { claim: deps.claim }),
      });
      digest.start();
      digests.push(digest);
      return digest;
    },
    async close() {
      for (const digest of digests) await digest.stop();
    },
  };
}
