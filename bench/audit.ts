// Audit write throughput on the embedded store (SQLite, WAL, synchronous=FULL): concurrent requests
// each awaiting a durable begin(), with group commit and without. Run: `node --import tsx bench/audit.ts`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAuditRecorder } from '../packages/gateway/src/audit/recorder.js';
import type { AuditStart } from '../packages/gateway/src/audit/types.js';
import { createStore } from '../packages/gateway/src/store/index.js';

export interface AuditBenchResult {
  eventsPerSecondGroupCommit: number;
  eventsPerSecondNoGroup: number;
  /** Events per durable write with group commit (the batching actually achieved). */
  eventsPerWriteGroupCommit: number;
  concurrency: number;
  durationMs: number;
}

function start(i: number): AuditStart {
  return {
    requestId: `bench-${i}`,
    time: Date.now(),
    cluster: 'prod',
    identity: `agent-${i % 8}`,
    method: 'GET',
    path: '/api/v1/namespaces/default/pods',
    info: {
      verb: 'list',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: 'default',
      name: '',
      isResourceRequest: true,
    },
    kubectlSession: `session-${i % 32}`,
    decision: { effect: 'allow', reason: 'rbac', serviceAccount: 'agents/bench' },
  };
}

async function measure(
  groupCommit: boolean,
  concurrency: number,
  durationMs: number,
): Promise<{ perSecond: number; perWrite: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-audit-'));
  const store = await createStore(`sqlite:${join(dir, 'audit.db')}`, { replicaId: 'bench', groupCommit });
  const recorder = createAuditRecorder({
    store,
    replicaId: 'bench',
    clock: Date.now,
    maxBodyBytes: 65536,
    bodies: true,
    sessionIdleMs: 300_000,
  });
  let events = 0;
  const began = performance.now();
  const deadline = began + durationMs;
  // Each worker is one in-flight request: begin (durable) → complete (queued), like the proxy path.
  const worker = async (id: number): Promise<void> => {
    for (let i = id; performance.now() < deadline; i += concurrency) {
      const handle = await recorder.begin(start(i));
      handle.complete({ status: 200, bytesOut: 1024, durationMs: 1 });
      events += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, id) => worker(id)));
  const elapsed = performance.now() - began;
  await recorder.close();
  const { durableWrites, recordsWritten } = store.audit.stats();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    perSecond: Math.round((events * 1000) / elapsed),
    perWrite: Math.round((recordsWritten / Math.max(1, durableWrites)) * 10) / 10,
  };
}

export async function benchAudit(
  options: { concurrency?: number; durationMs?: number } = {},
): Promise<AuditBenchResult> {
  const concurrency = options.concurrency ?? 64;
  const durationMs = options.durationMs ?? 2000;
  const grouped = await measure(true, concurrency, durationMs);
  const single = await measure(false, concurrency, durationMs);
  return {
    eventsPerSecondGroupCommit: grouped.perSecond,
    eventsPerSecondNoGroup: single.perSecond,
    eventsPerWriteGroupCommit: grouped.perWrite,
    concurrency,
    durationMs,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchAudit(), null, 2));
}
