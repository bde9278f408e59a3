// A small closed-loop load generator: `concurrency` workers on an undici Pool with as many
// keep-alive connections, each sending the next request as soon as the last one's body is read.
// Bounded by time and count; after a warm-up, requests completing inside the window are timed (µs).
import { Pool } from 'undici';
import { createHistogram, summarizeMicros, type LatencySummary } from './stats.js';

export interface LoadOptions {
  origin: string;
  path: string;
  headers: Record<string, string>;
  ca: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Stop early after this many timed requests. */
  maxRequests: number;
  /** HTTP/2 (ALPN h2): one connection, `concurrency` streams on it, as client-go multiplexes. */
  h2?: boolean;
  /** Called once the warm-up ends (to read CPU counters of the processes under test). */
  onWindowStart?: () => void;
}

export interface LoadResult extends LatencySummary {
  concurrency: number;
  requestsPerSecond: number;
  windowMs: number;
  errors: number;
  /** First non-200 status or error seen, to explain `errors`. */
  firstError?: string;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, {
    ...(options.h2 === true
      ? { allowH2: true, connections: 1, pipelining: options.concurrency, maxConcurrentStreams: options.concurrency }
      : { connections: options.concurrency, pipelining: 1 }),
    connect: { ca: options.ca },
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
  const histogram = createHistogram();
  let errors = 0;
  let firstError: string | undefined;
  let timed = 0;
  const began = performance.now();
  const windowStart = began + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let windowOpened = false;
  let stopAt = windowEnd;

  const worker = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const start = performance.now();
      if (!windowOpened && start >= windowStart) {
        windowOpened = true;
        options.onWindowStart?.();
      }
      let ok = false;
      try {
        const response = await pool.request({ path: options.path, method: 'GET', headers: options.headers });
        await response.body.arrayBuffer();
        ok = response.statusCode === 200;
        if (!ok) firstError ??= `status ${response.statusCode}`;
      } catch (error) {
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      const end = performance.now();
      if (start >= windowStart && end <= windowEnd) {
        if (ok) {
          histogram.record((end - start) * 1000);
          timed++;
          if (timed >= options.maxRequests) stopAt = end;
        } else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const windowMs = Math.min(stopAt, windowEnd) - windowStart;
  await pool.close();
  return {
    concurrency: options.concurrency,
    requestsPerSecond: Math.round((histogram.count * 1000) / windowMs),
    windowMs: Math.round(windowMs),
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    ...summarizeMicros(histogram),
  };
}
