// Lifecycles of the parts of one gateway replica: each is started in the order the composition root
// lists them and stopped in the reverse order; when a start fails, the parts already started are
// stopped (newest first) before the failure is rethrown, so a failed boot leaves nothing running.
import { HoopError } from './errors.js';
import type { Logger } from './logger.js';

export interface Component<T> {
  /** Says which part failed, in logs. */
  name: string;
  /** Builds or starts the part; what it returns is handed to the next parts. */
  start(): Promise<T> | T;
  /** Undoes start(); called once, in reverse order of start. A failure is logged, and the others still stop. */
  stop?(value: T): Promise<void> | void;
}

export interface Lifecycle {
  /** Starts one part now, after the ones before it, and remembers how to stop it. */
  start<T>(component: Component<T>): Promise<T>;
  /** Runs a whole boot: if it throws, every part it started is stopped before the error is rethrown. */
  boot<T>(build: () => Promise<T>): Promise<T>;
  /**
   * Stops every started part, newest first, each even when one before it failed; then rejects with the
   * first failure, if any (idempotent: later calls share the first).
   */
  stop(): Promise<void>;
  /** The names of the running parts, in start order. */
  readonly running: readonly string[];
}

export function createLifecycle(deps: { logger: Logger }): Lifecycle {
  const started: { name: string; stop: () => Promise<void> | void }[] = [];
  let stopped: Promise<void> | undefined;

  async function stopAll(): Promise<void> {
    const failures: unknown[] = [];
    for (let part = started.pop(); part !== undefined; part = started.pop()) {
      try {
        await part.stop();
      } catch (error) {
        failures.push(error);
        deps.logger.error({ err: String(error), part: part.name }, 'stop failed; stopping the other parts');
      }
    }
    if (failures.length > 0) throw failures[0];
  }

  const lifecycle: Lifecycle = {
    async start(component) {
      if (stopped !== undefined)
        throw new HoopError('ERR_SHUTTING_DOWN', `cannot start ${component.name}: the gateway is stopping`);
      const value = await component.start();
      const stop = component.stop;
      started.push({ name: component.name, stop: stop === undefined ? () => undefined : () => stop(value) });
      return value;
    },
    async boot(build) {
      try {
        return await build();
      } catch (error) {
        // The boot's own failure is the one to report; a stop failure is only logged.
        await lifecycle.stop().catch(() => undefined);
        throw error;
      }
    },
    stop() {
      stopped ??= stopAll();
      return stopped;
    },
    get running() {
      return started.map((part) => part.name);
    },
  };
  return lifecycle;
}
