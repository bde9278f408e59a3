// The durable audit write path under load, before vs after issue #13: N requests, `concurrency` at a
// time, each awaiting a durable begin() (its intent) then completing (its outcome, not awaited), as the
// proxy does — against the embedded store (file, WAL, synchronous=FULL) written on the event loop
// (`event-loop`, the old path) and on the writer thread (`thread`). Reports records/s, the CPU the
// main thread spent per request (Linux: /proc/self/task/<pid>/stat) against the whole process's,
// event-loop utilisation, and p50/p99 of the intent's latency.
// Run: `node --conditions=source --import tsx bench/audit-writer.ts [requests] [concurrency]`.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createAuditRecorder } from '../packages/gateway/src/audit/recorder.js';
import type { AuditStart } from '../packages/gateway/src/audit/types.js';
import { verifyAudit } from '../packages/gateway/src/audit/verify.js';
import { createStore } from '../packages/gateway/src/store/index.js';

export interface AuditWriterCell {
  mode: 'event-loop' | 'thread';
  requests: number;
  concurrency: number;
  recordsPerSecond: number;
  requestsPerSecond: number;
  /** CPU (user + system) of the main thread per request, µs. */
  mainCpuUsPerRequest: number;
  /** CPU of the whole process (every thread) per request, µs. */
  processCpuUsPerRequest: number;
  /** Share of wall time the event loop was busy. */
  eventLoopUtilisation: number;
  intentP50Ms: number;
  intentP99Ms: number;
  recordsPerTransaction: number;
}

const ticksToUs = 1_000_000 / 100; // USER_HZ is 100 on Linux

/** utime + stime of the main thread, µs (the main thread's task id is the process id). */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * ticksToUs;
}

function start(i: number): AuditStart {
  return {
    requestId: `bench-${i}`,
    time: Date.now(),
    cluster: 'prod',
    identity: `agent-${i % 8}`,
    principal: { issuer: 'https://idp.test', subject: `agent-${i % 8}`, groups: ['agents'] },
    method: 'GET',
    path: `/api/v1/namespaces/default/pods/web-${i}`,
    info: {
      verb: 'get',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: 'default',
      name: `web-${i}`,
      isResourceRequest: true,
    },
    kubectlSession: `session-${i % 32}`,
    decision: { effect: 'allow', reason: 'rbac', serviceAccount: 'agents/bench' },
  };
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function measureAuditWriter(
  mode: AuditWriterCell['mode'],
  requests: number,
  concurrency: number,
): Promise<AuditWriterCell> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-writer-'));
  const store = await createStore(`sqlite:${join(dir, 'audit.db')}`, {
    replicaId: 'bench',
    writerThread: mode === 'thread',
  });
  const recorder = createAuditRecorder({
    store,
    replicaId: 'bench',
    clock: Date.now,
    maxBodyBytes: 65536,
    bodies: true,
    sessionIdleMs: 300_000,
  });
  // Warm-up (JIT, statement caches), not measured.
  for (let i = 0; i < 200; i++)
    (await recorder.begin(start(-i))).complete({ status: 200, bytesOut: 10, durationMs: 1 });
  await store.audit.append([]);
  const latencies: number[] = [];
  let next = 0;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuUs();
  const stats0 = store.audit.stats();
  const began = performance.now();
  const client = async (): Promise<void> => {
    for (let i = next++; i < requests; i = next++) {
      const t0 = performance.now();
      const handle = await recorder.begin(start(i));
      latencies.push(performance.now() - t0);
      handle.complete({ status: 200, bytesOut: 1024, durationMs: performance.now() - t0 });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  await recorder.close(); // every outcome durable too
  const elapsed = performance.now() - began;
  const cpu = process.cpuUsage(cpu0);
  const main = mainThreadCpuUs() - main0;
  const elu = performance.eventLoopUtilization(elu0);
  const stats = store.audit.stats();
  const verified = await verifyAudit(store.audit);
  if (!verified.ok || verified.records !== 400 + 2 * requests)
    throw new Error(`the chain does not hold every record: ${JSON.stringify(verified)}`);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const records = stats.recordsWritten - stats0.recordsWritten;
  return {
    mode,
    requests,
    concurrency,
    recordsPerSecond: Math.round((records * 1000) / elapsed),
    requestsPerSecond: Math.round((requests * 1000) / elapsed),
    mainCpuUsPerRequest: round(main / requests),
    processCpuUsPerRequest: round((cpu.user + cpu.system) / requests),
    eventLoopUtilisation: round(elu.utilization, 3),
    intentP50Ms: round(percentile(latencies, 50), 2),
    intentP99Ms: round(percentile(latencies, 99), 2),
    recordsPerTransaction: round(records / Math.max(1, stats.durableWrites - stats0.durableWrites)),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const requests = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 32);
  const cells = [
    await measureAuditWriter('event-loop', requests, concurrency),
    await measureAuditWriter('thread', requests, concurrency),
  ];
  console.table(cells);
  console.log(JSON.stringify(cells));
}
