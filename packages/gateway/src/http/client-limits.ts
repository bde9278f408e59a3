// Per-client limits (issue #12): concurrent requests and request rate per client address, checked
// before anything else (before authentication, before a body is read), and per authenticated
// identity (issuer + subject), checked as soon as the token is verified. Beyond a limit the answer is a
// 429 Status with Retry-After. The tables are bounded: at most `maxTrackedClients` entries each, the
// least recently seen forgotten first, so many (or spoofed) addresses cost a constant.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type Koa from 'koa';
import type { Principal } from '../authn/principal.js';
import { RefusedCallerError } from '../authn/refused-caller.js';
import type { LimitsConfig, RateLimitConfig } from '../config/types.js';
import { statusFromError } from '../kube/status.js';
import { HoopError } from '../lib/errors.js';
import { sendStatus } from './status.js';

interface Entry {
  inFlight: number;
  tokens: number;
  at: number;
}

export type Acquired =
  { ok: true; release: () => void } | { ok: false; retryAfterSeconds: number; why: 'concurrent' | 'rate' };

/** A bounded table of token buckets and in-flight counters, one per key (pure: the clock is given). */
export function createLimiter(limit: RateLimitConfig, maxKeys: number, clock: () => number) {
  const entries = new Map<string, Entry>();
  return {
    acquire(key: string): Acquired {
      const now = clock();
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = { inFlight: 0, tokens: limit.burst, at: now };
        if (entries.size >= maxKeys) {
          const oldest = entries.keys().next();
          if (oldest.done !== true) entries.delete(oldest.value);
        }
      } else {
        entries.delete(key); // re-inserted below: the map's order is least recently seen first
        entry.tokens = Math.min(limit.burst, entry.tokens + ((now - entry.at) / 1000) * limit.requestsPerSecond);
        entry.at = now;
      }
      entries.set(key, entry);
      if (entry.inFlight >= limit.maxConcurrent) return { ok: false, retryAfterSeconds: 1, why: 'concurrent' };
      if (entry.tokens < 1)
        return {
          ok: false,
          retryAfterSeconds: Math.max(1, Math.ceil((1 - entry.tokens) / limit.requestsPerSecond)),
          why: 'rate',
        };
      entry.tokens -= 1;
      entry.inFlight += 1;
      const held = entry;
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          held.inFlight -= 1;
        },
      };
    },
    size: () => entries.size,
  };
}

function tooManyMessage(who: string, key: 'perAddress' | 'perIdentity', refused: Extract<Acquired, { ok: false }>) {
  const what =
    refused.why === 'concurrent'
      ? `too many concurrent requests from ${who} (limits.${key}.maxConcurrent)`
      : `too many requests from ${who} (limits.${key}.requestsPerSecond)`;
  return `${what}; retry in ${refused.retryAfterSeconds}s`;
}

function tooMany(who: string, key: 'perAddress', refused: Extract<Acquired, { ok: false }>): HoopError {
  return new HoopError('ERR_TOO_MANY_REQUESTS', tooManyMessage(who, key, refused), {
    details: { retryAfterSeconds: refused.retryAfterSeconds },
  });
}

export function createClientLimits(config: LimitsConfig, clock: () => number = Date.now) {
  const addresses = createLimiter(config.perAddress, config.maxTrackedClients, clock);
  const identities = createLimiter(config.perIdentity, config.maxTrackedClients, clock);
  /**
   * The releases of each request being served, by the request object (its IncomingMessage or HTTP/2
   * request): identity slots are taken deep inside admission, which names the request it verifies for.
   * Not an AsyncLocalStorage: that turns on promise hooks for every await of the process (~7 % of the
   * CPU of an allowed request).
   */
  const scopes = new WeakMap<object, (() => void)[]>();

  /** Runs `serve` under the address limit; throws the 429 HoopError when over it. */
  async function guard<T>(
    scope: object,
    address: string | undefined,
    serve: () => Promise<T>,
    onEnd: (release: () => void) => void,
  ): Promise<T> {
    const acquired = addresses.acquire(address ?? 'unknown');
    if (!acquired.ok) throw tooMany('this address', 'perAddress', acquired);
    const releases: (() => void)[] = [acquired.release];
    scopes.set(scope, releases);
    onEnd(() => {
      scopes.delete(scope);
      releases.splice(0).forEach((release) => release());
    });
    return serve();
  }

  return {
    /** Koa middleware: the per-address limit, and the scope in which the identity limit is released. */
    middleware: (async (ctx, next) => {
      try {
        // Held until the response ends, not until the middleware returns: Koa streams a watch's body
        // after the chain has returned.
        await guard(
          ctx.req,
          ctx.req.socket.remoteAddress,
          async () => next(),
          (release) => ctx.res.once('close', release),
        );
      } catch (error) {
        if (error instanceof HoopError && error.code === 'ERR_TOO_MANY_REQUESTS' && !ctx.headerSent)
          return sendStatus(ctx, error);
        throw error;
      }
    }) as Koa.Middleware,

    /** Wraps the upgrade handler: the slots are held until the socket closes. */
    upgrade(handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => void) {
      return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
        guard(
          req,
          req.socket.remoteAddress,
          async () => handler(req, socket, head),
          (release) => socket.once('close', release),
        ).catch((error: unknown) => {
          // Only the limit throws here: the handler reports its own failures on the socket.
          const refusal =
            error instanceof HoopError
              ? error
              : new HoopError('ERR_TOO_MANY_REQUESTS', 'upgrade refused', { details: { retryAfterSeconds: 1 } });
          const body = JSON.stringify(statusFromError(refusal));
          const retryAfter = Number(refusal.details?.['retryAfterSeconds'] ?? 1);
          socket.end(
            `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: ${retryAfter}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
          );
        });
      };
    },

    /**
     * Wraps a token verifier: once the caller is known, the per-identity limit applies, its slot held
     * until the request named by `scope` (the one the middleware or upgrade guard admitted) ends.
     */
    verifier<V extends { verify(token: string): Promise<Principal> }>(verifier: V): V & ScopedVerifier {
      const verify = async (token: string, scope?: object): Promise<Principal> => {
        const principal = await verifier.verify(token);
        const acquired = identities.acquire(`${principal.issuer}#${principal.subject}`);
        // The caller is known by now: the refusal carries it, so its record names who was refused.
        if (!acquired.ok)
          throw new RefusedCallerError(
            principal,
            'ERR_TOO_MANY_REQUESTS',
            tooManyMessage(`subject "${principal.subject}"`, 'perIdentity', acquired),
            { retryAfterSeconds: acquired.retryAfterSeconds },
          );
        const releases = scope === undefined ? undefined : scopes.get(scope);
        // Outside a request the guard admitted the slot only counts toward the rate.
        if (releases === undefined) acquired.release();
        else releases.push(acquired.release);
        return principal;
      };
      return { ...verifier, verify };
    },

    stats: () => ({ addresses: addresses.size(), identities: identities.size() }),
  };
}

export type ClientLimits = ReturnType<typeof createClientLimits>;

/** A verifier that takes the request a token is verified for (client-limits holds its identity slot until it ends). */
export interface ScopedVerifier {
  verify(token: string, scope?: object): Promise<Principal>;
}
