// One gateway replica as a bench child: the gateway started from a config, with the ops the cells
// call (memory, GC, heap snapshot, CPU profile, event-loop delay, held count, audit stats, stop),
// with the heap tuning `hoopgate serve` applies.
// Forked directly (no loader) to run the compiled gateway as `hoopgate serve` does; servers.ts runs
// the same harness through tsx for the sources.
import { Session } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { setImmediate } from 'node:timers';
import { runInNewContext } from 'node:vm';
import { writeFileSync } from 'node:fs';
import { serve } from './child-ipc.mjs';

/**
 * @param {{ configPath: string; replicaId: string; logFile: string; compiled?: boolean }} input
 *   `compiled`: the compiled gateway (dist/, what `hoopgate serve` runs) instead of the sources (needs tsx)
 */
export async function gateway(input) {
  const { destination } = await import('pino');
  const from = input.compiled === true ? 'hoopgate' : '../packages/gateway/src';
  const { loadConfig } = await import(`${from}/config/load.js`);
  const { startGateway } = await import(`${from}/gateway.js`);
  // As `hoopgate serve` does before it starts the gateway (lib/heap-tuning.ts).
  const { tuneHeapForServing } = await import(`${from}/lib/heap-tuning.js`);
  tuneHeapForServing();
  const session = new Session();
  session.connect();
  /** @type {(method: string, params?: object) => Promise<any>} */
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params ?? {}, (error, result) => (error === null ? resolve(result) : reject(error))),
    );
  const config = await loadConfig(input.configPath, {});
  const logDestination = destination({ dest: input.logFile, sync: false, mkdir: true });
  const gw = await startGateway({ config, replicaId: input.replicaId, logDestination });
  /** @type {import('node:perf_hooks').IntervalHistogram | undefined} */
  let loopDelay;
  serve(
    { url: gw.url, replicaId: gw.replicaId },
    {
      /** Event-loop delay (ms) from 'loop-delay-start' on: a click's tail spent with the loop blocked shows here. */
      'loop-delay-start': async () => {
        loopDelay = monitorEventLoopDelay({ resolution: 5 });
        loopDelay.enable();
      },
      'loop-delay-stop': async () => {
        loopDelay?.disable();
        /** @param {number} ns */
        const ms = (ns) => Math.round(ns / 1e5) / 10;
        return {
          p50Ms: ms(loopDelay?.percentile(50) ?? 0),
          p99Ms: ms(loopDelay?.percentile(99) ?? 0),
          maxMs: ms(loopDelay?.max ?? 0),
        };
      },
      /** Requests this replica holds for approval right now (the pending-approvals gauge). */
      held: async () =>
        (await gw.metrics.pendingApprovals.get()).values.reduce(
          (/** @type {number} */ sum, /** @type {{ value: number }} */ v) => sum + v.value,
          0,
        ),
      /** Two full GCs (as the held-h2 floor measures after one): what holding costs once the garbage of taking them is gone. */
      gc: async () => {
        setFlagsFromString('--expose-gc');
        const gc = runInNewContext('gc');
        gc();
        gc();
      },
      /** A heap snapshot to `file` (to see what held requests keep alive). */
      'heap-snapshot': async (file) => writeHeapSnapshot(String(file)),
      /** Durable audit writes and records so far (group commit: records per write). */
      'audit-stats': async () => gw.store.audit.stats(),
      /** CPU profile of this process for a window only (startup excluded), like `--cpu-prof`. */
      'profile-start': async () => {
        await post('Profiler.enable');
        await post('Profiler.setSamplingInterval', { interval: 500 });
        await post('Profiler.start');
      },
      'profile-stop': async (file) => {
        const { profile } = await post('Profiler.stop');
        writeFileSync(String(file), JSON.stringify(profile));
        return String(file);
      },
      stop: async () => {
        await gw.close();
        logDestination.flushSync();
        setImmediate(() => process.exit(0));
      },
    },
  );
}

// As a child's entry point (children.ts forks it with the role and its input as arguments).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await gateway(JSON.parse(process.argv[3] ?? '{}'));
}
