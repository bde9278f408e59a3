// Copies of the gateway's own records (issue #17 audit-scale cell): the request/outcome pairs a real
// gateway wrote serve as templates, and the store API appends copies of them with fresh ids and spread
// times. Used for the bytes-per-event figures (steady-state file growth) and for stores larger than
// the gateway can fill in a bench run (`--copies`, e.g. the 1M-record bound).
import { randomUUID } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createCheckpointer, loadSigningKey } from '../packages/gateway/src/audit/checkpoint.js';
import { createStore } from '../packages/gateway/src/store/index.js';
import type { AuditRecord, AuditRecordDraft } from '../packages/gateway/src/store/types.js';

/** Request + outcome templates of one kind of call, as the gateway wrote them. */
export interface Template {
  request: AuditRecord;
  outcome: AuditRecord;
}

export async function readTemplates(storeUrl: string): Promise<{ allowed: Template[]; refused: Template[] }> {
  const store = await createStore(storeUrl, { replicaId: 'bench-reader' });
  try {
    const records = await store.audit.listRecords({ kinds: ['request', 'outcome'], limit: 100_000 });
    const outcomes = new Map(records.filter((r) => r.kind === 'outcome').map((r) => [r.eventId, r]));
    const pairs = records
      .filter((r) => r.kind === 'request')
      .map((request) => ({ request, outcome: outcomes.get(request.eventId) as AuditRecord }));
    return {
      allowed: pairs.filter((p) => p.outcome !== undefined && p.outcome.data['status'] === 200),
      refused: pairs.filter((p) => p.outcome !== undefined && p.outcome.data['status'] === 401),
    };
  } finally {
    await store.close();
  }
}

/** Two drafts (request, outcome) copied from a template with fresh ids at `time`. */
export function copyOf(template: Template, time: number, session: string): AuditRecordDraft[] {
  const eventId = randomUUID();
  const request: AuditRecordDraft = {
    kind: 'request',
    time,
    eventId,
    sessionId: template.request.identity === 'anonymous' ? `s-${randomUUID()}` : session,
    ...(template.request.identity === undefined ? {} : { identity: template.request.identity }),
    data: { ...template.request.data, requestId: randomUUID() },
  };
  const outcome: AuditRecordDraft = {
    kind: 'outcome',
    time: time + 3,
    eventId,
    ...(request.sessionId === undefined ? {} : { sessionId: request.sessionId }),
    ...(request.identity === undefined ? {} : { identity: request.identity }),
    data: { ...template.outcome.data, durationMs: 2 + (time % 7), upstreamMs: 1 + (time % 5) },
  };
  return [request, outcome];
}

/**
 * Appends `pairs` request/outcome pairs (a `refusedShare` of them refusals) through the store API in
 * batches, ending `endTime`; a signed head checkpoint every `checkpointEvery` pairs, like the hourly job.
 */
export async function appendCopies(
  storeUrl: string,
  templates: { allowed: Template[]; refused: Template[] },
  options: {
    pairs: number;
    refusedShare: number;
    endTime: number;
    checkpointEvery?: number;
    replicaId: string;
    keyFile?: string;
  },
): Promise<void> {
  const store = await createStore(storeUrl, { replicaId: options.replicaId });
  const key = await loadSigningKey(options.keyFile);
  const checkpointer = createCheckpointer({ store: store.audit, key, replicaId: options.replicaId, clock: Date.now });
  try {
    const batch = 500;
    const stepMs = 10;
    let time = options.endTime - options.pairs * stepMs;
    let session = `s-${randomUUID()}`;
    for (let done = 0; done < options.pairs;) {
      const n = Math.min(batch, options.pairs - done);
      const drafts: AuditRecordDraft[] = [];
      for (let k = 0; k < n; k++) {
        const index = done + k;
        if (index % 20 === 0) session = `s-${randomUUID()}`;
        const refusal = (index * 7919) % 1000 < options.refusedShare * 1000;
        const pool = refusal ? templates.refused : templates.allowed;
        const template = pool[index % pool.length] as Template;
        drafts.push(...copyOf(template, time, session));
        time += stepMs;
      }
      await store.audit.append(drafts);
      done += n;
      if (
        options.checkpointEvery !== undefined &&
        Math.floor(done / options.checkpointEvery) !== Math.floor((done - n) / options.checkpointEvery)
      ) {
        await checkpointer.checkpoint();
      }
    }
    if (options.checkpointEvery !== undefined) await checkpointer.checkpoint();
  } finally {
    await store.close();
  }
}

export function sizeOf(file: string): number {
  return statSync(file).size;
}

/** Bytes per pair in steady state: file growth from `base` to `base + n` pairs, divided by n. */
export async function bytesPerPair(
  work: string,
  name: string,
  templates: { allowed: Template[]; refused: Template[] },
  refusedShare: number,
): Promise<number> {
  const file = join(work, `${name}.db`);
  const url = `sqlite:${file}`;
  const base = 10_000;
  const n = 20_000;
  await appendCopies(url, templates, {
    pairs: base,
    refusedShare,
    endTime: Date.now() - 3_600_000,
    replicaId: 'bench-bytes',
  });
  const before = sizeOf(file);
  await appendCopies(url, templates, { pairs: n, refusedShare, endTime: Date.now(), replicaId: 'bench-bytes' });
  const after = sizeOf(file);
  rmSync(file, { force: true });
  return Math.round((after - before) / n);
}
