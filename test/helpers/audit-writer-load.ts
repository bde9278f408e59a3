// A child process for test/integration/audit-writer-thread.test.ts: opens the embedded store at
// argv[2] (writer thread on), keeps 32 appends in flight and prints `durable <eventId>` once each is
// resolved (durable), until it is killed. Writes go straight to fd 1 (no buffering in the process).
import { writeSync } from 'node:fs';
import { createStore } from '../../packages/gateway/src/store/index.js';

const store = await createStore(`sqlite:${process.argv[2] ?? ''}`, { replicaId: 'crash' });
let next = 0;
writeSync(1, 'started\n');
async function client(): Promise<void> {
  for (;;) {
    const eventId = `event-${next++}`;
    await store.audit.append([
      { kind: 'request', time: Date.now(), eventId, data: { path: `/api/v1/pods/${eventId}`, pad: 'x'.repeat(512) } },
    ]);
    writeSync(1, `durable ${eventId}\n`);
    // Its outcome, not awaited: merged into the next batch.
    void store.audit
      .append([{ kind: 'outcome', time: Date.now(), eventId, data: { status: 200 } }])
      .catch(() => undefined);
  }
}
await Promise.all(Array.from({ length: 32 }, client));
