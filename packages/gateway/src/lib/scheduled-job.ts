// One background job on a node-cron schedule: runs never overlap (a run asked for while one is
// under way joins it), a failed scheduled run is logged and retried at the next tick, and stop()
// waits for a run in progress. Checkpoints, retention and the weekly digest are all such jobs.
import cron from 'node-cron';
import type { Logger } from './logger.js';

export interface ScheduledJob<T> {
  /** Runs now, or joins the run under way. */
  run(): Promise<T>;
  /** Schedules it (idempotent). */
  start(): void;
  /** Unschedules it and waits for a run in progress (its failure is not rethrown). */
  stop(): Promise<void>;
}

export function createScheduledJob<T>(job: { name: string; schedule: string; run: () => Promise<T>; logger: Logger; failure: string }): ScheduledJob<T> {
  let task: ReturnType<typeof cron.schedule> | undefined;
  let running: Promise<T> | undefined;

  function run(): Promise<T> {
    running ??= job.run().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    run,
    start() {
      task ??= cron.schedule(
        job.schedule,
        async () => {
          try {
            await run();
          } catch (error) {
            job.logger.warn({ err: error instanceof Error ? error.message : String(error) }, job.failure);
          }
        },
        { noOverlap: true, name: job.name },
      );
    },
    async stop() {
      if (task !== undefined) {
        await task.stop();
        await task.destroy();
        task = undefined;
      }
      await running?.catch(() => undefined);
    },
  };
}
