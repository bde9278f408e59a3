// What verify reads beyond the walk's own checks: a chain's records a page at a time, and the signed
// checkpoints verify --since-checkpoint needs (by index, when the store offers it).
import type { AuditStore, ChainHead, SignedCheckpoint, StoredRecord } from '../store/types.js';

/** A chain's records a page at a time: the store's own pages when it offers them. */
export async function* chainPages(
  store: AuditStore,
  chain: string,
  afterSeq: number,
  batchSize: number,
): AsyncGenerator<readonly StoredRecord[]> {
  if (store.scanChainPages !== undefined) {
    yield* store.scanChainPages(chain, afterSeq, { batchSize });
    return;
  }
  let page: StoredRecord[] = [];
  for await (const record of store.scanChain(chain, afterSeq, { batchSize })) {
    page.push(record);
    if (page.length >= batchSize) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

/**
 * since-checkpoint's checkpoints, read by index when the store can (else all of them): per chain the
 * newest retention checkpoint, the head checkpoints newest first down to the first whose signature
 * verifies and whose record matches (the one the walk starts from), and every checkpoint at or after
 * it — all that the walk, its tail check and its skipped list use, whatever the number signed before.
 * In-chain copies of older checkpoints met in the walk are then checked as "late" ones (signature and
 * record), as copies missing from the side table always are.
 */
export async function sinceCheckpoints(
  store: AuditStore,
  heads: ReadonlyMap<string, ChainHead>,
  signed: (checkpoint: SignedCheckpoint) => boolean,
): Promise<SignedCheckpoint[]> {
  if (store.checkpointsOf === undefined || store.checkpointChains === undefined) return store.checkpoints();
  const chains = new Set([...heads.keys(), ...(await store.checkpointChains())]);
  const found: SignedCheckpoint[] = [];
  for (const chain of chains) {
    const [retention] = await store.checkpointsOf(chain, { type: 'retention', limit: 1 });
    if (retention !== undefined) found.push(retention);
    const start = retention?.statement.seq ?? 1;
    let from = start;
    // Newest first, a batch at a time (doubled, and re-read from the top, in the rare run of many bad ones).
    search: for (let batch = 16; ; batch *= 2) {
      const candidates = await store.checkpointsOf(chain, { type: 'head', minSeq: start, limit: batch });
      for (const candidate of candidates) {
        const s = candidate.statement;
        if (s.hash === '' || !signed(candidate)) continue;
        const record = s.seq > (heads.get(chain)?.seq ?? 0) ? null : await store.getRecord(chain, s.seq);
        if (record !== null && record.hash === s.hash) {
          from = s.seq;
          break search;
        }
      }
      if (candidates.length < batch) break; // every head checkpoint looked at: none is trusted
    }
    found.push(...(await store.checkpointsOf(chain, { minSeq: from })).filter((c) => c.statement.type === 'head'));
  }
  return found;
}
