// Slack posts per identity through a token bucket (issue #12 item 5): one agent cannot flood the
// approvals channel. Over the limit the request is still held and decidable (`/hoop pending`, the
// approvals API, `hoopgate approvals`), its message is not posted, and one summary per identity says
// how many were held back — at most one summary per refill interval.
import type { ApprovalNotifier } from './service.js';
import type { ApprovalRecord } from './types.js';

export interface PostLimit {
  /** Posts one identity may make at once. */
  burst: number;
  /** One more post per this many milliseconds. */
  refillMs: number;
}

export const defaultPostLimit: PostLimit = { burst: 5, refillMs: 12_000 };

export interface LimitedNotifier extends ApprovalNotifier {
  /** Posts a plain notice to the channel (the summary); absent: summaries are only logged. */
  notice?(text: string): Promise<void>;
}

export function createPostLimiter(
  inner: LimitedNotifier,
  options: { limit?: PostLimit; clock?: () => number; onSuppressed?: (record: ApprovalRecord) => void } = {},
): ApprovalNotifier {
  const { burst, refillMs } = options.limit ?? defaultPostLimit;
  const clock = options.clock ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number; held: string[]; summaryAt: number }>();

  function take(identity: string): { ok: true } | { ok: false; bucket: { held: string[]; summaryAt: number } } {
    const now = clock();
    const bucket = buckets.get(identity) ?? { tokens: burst, at: now, held: [], summaryAt: Number.NEGATIVE_INFINITY };
    bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) / refillMs);
    bucket.at = now;
    buckets.set(identity, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, bucket };
  }

  return {
    async posted(record) {
      const taken = take(record.identity);
      if (taken.ok) return inner.posted(record);
      options.onSuppressed?.(record);
      const { bucket } = taken;
      bucket.held.push(record.id);
      const now = clock();
      if (inner.notice !== undefined && now - bucket.summaryAt >= refillMs) {
        bucket.summaryAt = now;
        const ids = bucket.held.splice(0);
        await inner.notice(
          `${ids.length} more held request(s) of identity "${record.identity}" were not posted one by one (Slack posting limit: ${burst} at once, then one every ${Math.round(refillMs / 1000)}s per identity): ` +
            `${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', …' : ''}. See them with /hoop pending; decide with hoopgate approvals or the approvals API.`,
        );
      }
      return undefined;
    },
    finalize: (record) => inner.finalize(record),
    ...(inner.threadReply === undefined ? {} : { threadReply: inner.threadReply.bind(inner) }),
  };
}
