// One background job on a fixed interval, driven by the injected clock: it runs at every multiple of
// `everyMs` since the Unix epoch (shifted by `offsetMs`), so replicas agree on when and a restart does
// not push the next run back by a whole interval. Runs never overlap (a run asked for while one is
// under way joins it; a slot that passes during a long run is skipped, not queued), a failed
// scheduled run is logged and retried at the next slot, and stop() waits for a run in progress.
// Checkpoints, retention, the weekly digest and the approval expiry sweep are all such jobs.
import type { Logger } from './logger.js';

/** setTimeout/clearTimeout, injectable; the default reads the globals at call time (node:test mock.timers works). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const globalTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

/** The longest delay setTimeout takes (2^31-1 ms, ~24.8 days); longer waits are armed in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export interface ScheduledJob<T> {
  readonly name: string;
  readonly everyMs: number;
  /** Runs now, or joins the run under way. */
  run(): Promise<T>;
  /** Schedules it (idempotent). */
  start(): void;
  /** Unschedules it and waits for a run in progress (its failure is not rethrown). */
  stop(): Promise<void>;
}

export interface ScheduledJobOptions<T> {
  name: string;
  /** Interval, any positive number of milliseconds (90s, 7m, 36h, 7d). */
  everyMs: number;
  /** Shift of the slots from the epoch: `everyMs: 7d, offsetMs: 4d9h` is Mondays 09:00 UTC. */
  offsetMs?: number;
  clock: () => number;
  run: () => Promise<T>;
  logger: Logger;
  /** Logged (warn) when a scheduled run fails. */
  failure: string;
  timers?: Timers;
}

/** The first slot strictly after `now`: `offset + k * every` for an integer k. */
export function nextSlot(now: number, everyMs: number, offsetMs = 0): number {
  const k = Math.floor((now - offsetMs) / everyMs) + 1;
  return offsetMs + k * everyMs;
}

export function createScheduledJob<T>(job: ScheduledJobOptions<T>): ScheduledJob<T> {
  if (!Number.isFinite(job.everyMs) || job.everyMs <= 0) {
    throw new RangeError(`${job.name}: interval must be a positive number of milliseconds, got ${job.everyMs}`);
  }
  const timers = job.timers ?? globalTimers;
  const offsetMs = job.offsetMs ?? 0;
  let started = false;
  let handle: unknown;
  /** The slot the armed timer is for. */
  let due: number | undefined;
  let running: Promise<T> | undefined;

  function run(): Promise<T> {
    running ??= job.run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function arm(after: number): void {
    due = nextSlot(after, job.everyMs, offsetMs);
    wait();
  }

  function wait(): void {
    if (!started || due === undefined) return;
    const delay = Math.min(Math.max(due - job.clock(), 0), MAX_TIMER_MS);
    handle = timers.setTimeout(tick, delay);
    // A schedule alone must not keep a process alive (the HTTP server does that for `serve`).
    (handle as { unref?: () => void } | undefined)?.unref?.();
  }

  function tick(): void {
    handle = undefined;
    const slot = due;
    if (!started || slot === undefined) return;
    // Long intervals are armed in steps, and the clock may lag the timer: wait for the rest.
    if (job.clock() < slot) return wait();
    void run()
      .catch((error: unknown) =>
        job.logger.warn({ job: job.name, err: error instanceof Error ? error.message : String(error) }, job.failure),
      )
      .finally(() => {
        // Unless stop() (and perhaps start() again) came in between: then the schedule is theirs.
        if (started && handle === undefined && due === slot) arm(Math.max(job.clock(), slot));
      });
  }

  return {
    name: job.name,
    everyMs: job.everyMs,
    run,
    start() {
      if (started) return;
      started = true;
      arm(job.clock());
    },
    async stop() {
      started = false;
      if (handle !== undefined) timers.clearTimeout(handle);
      handle = undefined;
      due = undefined;
      await running?.catch(() => undefined);
    },
  };
}
