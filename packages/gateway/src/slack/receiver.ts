// A Bolt Receiver mounted on the gateway's Koa app at POST /hoop/slack/events: verifies Slack's
// signature on the raw body, refuses stale and replayed requests, parses slash commands,
// interactivity and events, and answers with whatever the listener passed to ack().
// https://docs.slack.dev/authentication/verifying-requests-from-slack
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Koa from 'koa';
import type { App, Receiver, ReceiverEvent } from '@slack/bolt';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';

export const slackEventsPath = '/hoop/slack/events';

/** Slack refuses nothing older than 5 minutes itself; we refuse both directions. */
const toleranceMs = 5 * 60_000;

export type SignatureCheck = { ok: true } | { ok: false; why: string };

/** v0 signature: hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` with the signing secret, compared in constant time. */
export function verifySlackSignature(input: {
  signingSecret: string;
  body: Buffer | string;
  timestamp: string | undefined;
  signature: string | undefined;
  nowMs: number;
}): SignatureCheck {
  const { signingSecret, body, timestamp, signature, nowMs } = input;
  if (signingSecret === '') return { ok: false, why: 'no signing secret configured (slack.signingSecret)' };
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, why: 'missing or malformed X-Slack-Request-Timestamp' };
  if (Math.abs(nowMs - Number(timestamp) * 1000) > toleranceMs)
    return { ok: false, why: 'X-Slack-Request-Timestamp is more than 5 minutes off' };
  if (signature === undefined || !/^v0=[0-9a-f]{64}$/.test(signature))
    return { ok: false, why: 'missing or malformed X-Slack-Signature' };
  const hmac = createHmac('sha256', signingSecret);
  hmac.update(`v0:${timestamp}:`);
  hmac.update(body);
  const expected = Buffer.from(`v0=${hmac.digest('hex')}`);
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, why: 'signature mismatch' };
  return { ok: true };
}

/** Signatures seen within the tolerance window; a second sighting is a replay. */
export function createReplayCache(windowMs = toleranceMs * 2, maxEntries = 50_000) {
  const seen = new Map<string, number>();
  return {
    /** True when this signature was already seen (refuse); records it otherwise. */
    check(signature: string, nowMs: number): boolean {
      for (const [key, expires] of seen) {
        if (expires > nowMs && seen.size < maxEntries) break;
        seen.delete(key);
      }
      const expires = seen.get(signature);
      if (expires !== undefined && expires > nowMs) return true;
      seen.set(signature, nowMs + windowMs);
      return false;
    },
    get size(): number {
      return seen.size;
    },
  };
}

export interface KoaReceiverOptions {
  signingSecret: string;
  clock?: () => number;
  logger?: Logger;
  /** Slack expects an answer within 3 s. */
  ackTimeoutMs?: number;
  maxBodyBytes?: number;
  /**
   * The store's once-only keys (shared by every replica): a signature already consumed there was
   * accepted by another replica, so the request is a replay. Without it, replays are caught per process.
   */
  consumeOnce?: (key: string, expiresAt: number) => Promise<boolean>;
}

type Parsed = { kind: 'body'; body: Record<string, unknown> } | { kind: 'ssl-check' } | { kind: 'bad'; why: string };

function parseSlackBody(raw: string, contentType: string): Parsed {
  try {
    if (contentType.startsWith('application/json')) {
      const body: unknown = JSON.parse(raw);
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        return { kind: 'bad', why: 'json body is not an object' };
      return { kind: 'body', body: body as Record<string, unknown> };
    }
    if (contentType.startsWith('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams(raw);
      if (form.get('ssl_check') === '1') return { kind: 'ssl-check' };
      const payload = form.get('payload');
      if (payload !== null) {
        // Interactivity: one form field holding the JSON payload.
        const body: unknown = JSON.parse(payload);
        if (typeof body !== 'object' || body === null || Array.isArray(body))
          return { kind: 'bad', why: 'payload is not an object' };
        return { kind: 'body', body: body as Record<string, unknown> };
      }
      return { kind: 'body', body: Object.fromEntries(form) };
    }
    return { kind: 'bad', why: `unsupported content type "${contentType}"` };
  } catch {
    return { kind: 'bad', why: 'body does not parse' };
  }
}

async function readRaw(req: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function header(ctx: Koa.Context, name: string): string | undefined {
  const value = ctx.get(name);
  return value === '' ? undefined : value;
}

/** The Bolt side: init() receives the App; handle() dispatches one verified request. */
export class KoaReceiver implements Receiver {
  private app: App | undefined;
  private readonly replay = createReplayCache();
  private readonly clock: () => number;
  private readonly logger: Logger;
  private readonly ackTimeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(private readonly options: KoaReceiverOptions) {
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 2_800;
    this.maxBodyBytes = options.maxBodyBytes ?? 256 * 1024;
  }

  init(app: App): void {
    this.app = app;
  }

  // The gateway's HTTP server is the one listening; nothing to start or stop here.
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async handle(ctx: Koa.Context): Promise<void> {
    const refuse = (status: number, why: string): void => {
      this.logger.warn({ status, why, path: ctx.path }, 'slack request refused');
      ctx.status = status;
      ctx.type = 'text/plain';
      ctx.body = `hoopgate: ${why}\n`;
    };
    const raw = await readRaw(ctx.req, this.maxBodyBytes);
    if (raw === undefined) return refuse(413, `slack request body exceeds ${this.maxBodyBytes} bytes`);
    const now = this.clock();
    const signature = header(ctx, 'x-slack-signature');
    const check = verifySlackSignature({
      signingSecret: this.options.signingSecret,
      body: raw,
      timestamp: header(ctx, 'x-slack-request-timestamp'),
      signature,
      nowMs: now,
    });
    if (!check.ok) return refuse(401, `slack request not authentic: ${check.why}`);
    // Only a verified signature enters the cache, so forgeries cannot evict or poison it.
    if (signature !== undefined && this.replay.check(signature, now))
      return refuse(401, 'slack request not authentic: replayed request');
    if (signature !== undefined && this.options.consumeOnce !== undefined) {
      const fresh = await this.options
        .consumeOnce(`slack-signature:${signature}`, now + toleranceMs * 2)
        .catch((error: unknown) => {
          this.logger.error(
            { err: error instanceof Error ? error.message : String(error) },
            'slack: replay check failed',
          );
          return undefined;
        });
      // Fail closed: a request that cannot be checked against replays is not acted on (Slack retries).
      if (fresh === undefined)
        return refuse(503, 'cannot check the slack request against replays: the store is unavailable; try again');
      if (!fresh) return refuse(401, 'slack request not authentic: replayed request (seen by another replica)');
    }

    const parsed = parseSlackBody(raw.toString('utf8'), (ctx.get('content-type') || '').toLowerCase());
    if (parsed.kind === 'bad') return refuse(400, `bad slack request: ${parsed.why}`);
    if (parsed.kind === 'ssl-check') {
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    const body = parsed.body;
    if (body['type'] === 'url_verification') {
      ctx.status = 200;
      ctx.body = { challenge: typeof body['challenge'] === 'string' ? body['challenge'] : '' };
      return;
    }
    if (this.app === undefined) return refuse(503, 'slack app is not initialised');

    const result = await this.dispatch(body, header(ctx, 'x-slack-retry-num'), header(ctx, 'x-slack-retry-reason'));
    switch (result.kind) {
      case 'ack':
        ctx.status = 200;
        if (result.response === undefined || result.response === '') ctx.body = '';
        else if (typeof result.response === 'string') {
          ctx.type = 'text/plain';
          ctx.body = result.response;
        } else ctx.body = result.response;
        return;
      case 'unhandled':
        return refuse(404, 'no handler for this slack request');
      case 'error':
        return refuse(500, 'the slack request failed; see the gateway log');
      case 'timeout':
        return refuse(503, 'the slack request was not acknowledged in time');
    }
  }

  private async dispatch(
    body: Record<string, unknown>,
    retryNum: string | undefined,
    retryReason: string | undefined,
  ): Promise<{ kind: 'ack'; response: unknown } | { kind: 'unhandled' } | { kind: 'error' } | { kind: 'timeout' }> {
    const app = this.app;
    if (app === undefined) return { kind: 'error' };
    let acked = false;
    let resolveAck!: (response: unknown) => void;
    const ackPromise = new Promise<unknown>((resolve) => {
      resolveAck = resolve;
    });
    const event: ReceiverEvent = {
      body,
      ack: async (response?: unknown) => {
        if (acked) throw new HoopError('ERR_INTERNAL', 'slack ack() called twice');
        acked = true;
        resolveAck(response);
      },
    };
    if (retryNum !== undefined) event.retryNum = Number(retryNum);
    if (retryReason !== undefined) event.retryReason = retryReason;

    let timer: NodeJS.Timeout | undefined;
    const processing = app.processEvent(event).then(
      () => ({ kind: 'done' as const }),
      (error: unknown) => {
        this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'slack listener failed');
        return { kind: 'failed' as const };
      },
    );
    const timeout = new Promise<{ kind: 'timeout' }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), this.ackTimeoutMs);
    });
    try {
      const first = await Promise.race([
        ackPromise.then((response) => ({ kind: 'ack' as const, response })),
        processing,
        timeout,
      ]);
      if (first.kind === 'ack' || first.kind === 'timeout') return first;
      // Finished (or failed) without a racing ack: a synchronous ack still counts.
      if (acked) return { kind: 'ack', response: await ackPromise };
      return first.kind === 'done' ? { kind: 'unhandled' } : { kind: 'error' };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Koa middleware answering POST {path}; anything else falls through. */
export function createSlackRoute(options: { receiver: KoaReceiver; path?: string }): Koa.Middleware {
  const path = options.path ?? slackEventsPath;
  return async (ctx, next) => {
    if (ctx.path !== path) return next();
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      ctx.set('Allow', 'POST');
      ctx.body = 'hoopgate: slack events are POSTed\n';
      return;
    }
    await options.receiver.handle(ctx);
  };
}
