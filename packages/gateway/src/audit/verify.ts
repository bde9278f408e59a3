// Verifies the audit chains: every record's hash, every link to its predecessor, no gaps, chain starts
// justified by signed retention checkpoints, and chain contents matching the signed head checkpoints
// (which catches a truncated tail and a chain rewritten with fresh hashes).
//
// `full` walks every chain from its start (genesis or the retention checkpoint). `since-checkpoint`
// (issue #17) starts each chain at its newest head checkpoint whose signature verifies and whose hash
// matches the stored record there, and walks forward: what came before was verified when that
// checkpoint was signed. A checkpoint that fails either test is skipped (an older one, or the chain
// start, is used instead) and reported — and, as in `full`, makes the verification fail.
// Both stream each chain (store.scanChain), so memory does not grow with the store.
import type { KeyObject } from 'node:crypto';
import { canonicalJson, canonicalRecordText, GENESIS_HASH, sha256Hex } from '../store/chain.js';
import type { AuditStore, ChainHead, CheckpointStatement, SignedCheckpoint, StoredRecord } from '../store/types.js';
import { verifyCheckpointSignature } from './checkpoint.js';
import { chainPages, sinceCheckpoints } from './verify-read.js';

export type VerifyResult =
  { ok: true; records: number; chains: number } | { ok: false; chain: string; seq: number; problem: string };

export type VerifyMode = 'full' | 'since-checkpoint';

export interface VerifyOptions {
  /** The checkpoint signers' public key (PEM or KeyObject); without it each checkpoint's own key is used. */
  publicKey?: KeyObject | string;
  /** Records per store round trip. */
  pageSize?: number;
  /** Default `full`. */
  mode?: VerifyMode;
  clock?: () => number;
}

export interface ChainStart {
  chain: string;
  /** The first seq verified in this run. */
  fromSeq: number;
  /** What the first record was linked to. */
  anchor: 'genesis' | 'retention' | 'checkpoint';
  /** The head checkpoint started from (since-checkpoint). */
  checkpointTime?: number;
}

export interface SkippedCheckpoint {
  chain: string;
  seq: number;
  time: number;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  mode: VerifyMode;
  /** Records whose hash and link were checked in this run. */
  records: number;
  chains: number;
  elapsedMs: number;
  recordsPerSecond: number;
  starts: ChainStart[];
  skipped: SkippedCheckpoint[];
  /** The first bad record (or checkpoint), when not ok. */
  failure?: { chain: string; seq: number; problem: string };
}

const iso = (time: number): string => new Date(time).toISOString();

class Broken extends Error {
  constructor(
    readonly chain: string,
    readonly seq: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/** The record's hash: from its stored canonical text when that matches, else re-canonicalised (older stores). */
export function storedRecordHash(record: StoredRecord): string {
  const fast = sha256Hex(canonicalRecordText(record, record.dataText));
  if (fast === record.hash) return fast;
  let data: unknown;
  try {
    data = JSON.parse(record.dataText);
  } catch {
    return fast; // not JSON at all (a row whose shape or values were changed): it cannot match
  }
  return sha256Hex(canonicalRecordText(record, canonicalJson(data)));
}

function checkpointKey(checkpoint: SignedCheckpoint): string {
  return `${checkpoint.signature} ${canonicalJson(checkpoint.statement)}`;
}

function badSignature(s: CheckpointStatement, keyed: boolean): string {
  return `the ${s.type} checkpoint of ${iso(s.time)} signed by ${s.by} has a bad signature${keyed ? ' for the configured key' : ''}`;
}

/**
 * since-checkpoint: the newest head checkpoint of `chain` at or after `start` whose signature verifies
 * and whose hash matches the stored record; the others on the way are reported as skipped.
 */
async function newestTrustedCheckpoint(
  store: AuditStore,
  chain: string,
  mine: readonly SignedCheckpoint[],
  head: ChainHead | undefined,
  start: number,
  check: { signed: (checkpoint: SignedCheckpoint) => boolean; keyed: boolean; skipped: SkippedCheckpoint[] },
): Promise<CheckpointStatement | undefined> {
  const candidates = mine
    .filter((c) => c.statement.type === 'head' && c.statement.hash !== '' && c.statement.seq >= start)
    .sort((a, b) => b.statement.seq - a.statement.seq || b.statement.time - a.statement.time);
  for (const candidate of candidates) {
    const s = candidate.statement;
    if (!check.signed(candidate)) {
      check.skipped.push({ chain, seq: s.seq, time: s.time, problem: badSignature(s, check.keyed) });
      continue;
    }
    if (head === undefined || s.seq > head.seq) {
      throw new Broken(
        chain,
        (head?.seq ?? start - 1) + 1,
        `records missing at the tail: the chain ends at seq ${head?.seq ?? start - 1} but the checkpoint of ${iso(s.time)} names seq ${s.seq}`,
      );
    }
    const record = await store.getRecord(chain, s.seq);
    if (record === null) {
      check.skipped.push({
        chain,
        seq: s.seq,
        time: s.time,
        problem: `the checkpoint of ${iso(s.time)} names seq ${s.seq}, which is not in the store`,
      });
      continue;
    }
    if (record.hash !== s.hash) {
      check.skipped.push({
        chain,
        seq: s.seq,
        time: s.time,
        problem: `record differs from the checkpoint of ${iso(s.time)} (the chain was rewritten)`,
      });
      continue;
    }
    return s;
  }
  return undefined;
}

/** seq → the signed statements naming it (only those the walk reaches; with `signed`, only those that verify). */
function expectedCheckpoints(
  mine: readonly SignedCheckpoint[],
  start: number,
  signed?: (checkpoint: SignedCheckpoint) => boolean,
): Map<number, SignedCheckpoint[]> {
  const expected = new Map<number, SignedCheckpoint[]>();
  for (const checkpoint of mine) {
    const s = checkpoint.statement;
    if (s.seq < start || s.hash === '') continue;
    if (signed !== undefined && !signed(checkpoint)) continue; // already reported as skipped
    expected.set(s.seq, [...(expected.get(s.seq) ?? []), checkpoint]);
  }
  return expected;
}

/** A checkpoint kept only inside a chain (its side copy gone) still binds the chain it names. */
async function checkLateCheckpoints(
  store: AuditStore,
  late: readonly SignedCheckpoint[],
  startSeq: ReadonlyMap<string, number>,
  lastSeq: ReadonlyMap<string, number>,
): Promise<void> {
  for (const checkpoint of late) {
    const s = checkpoint.statement;
    if (s.type !== 'head' || s.hash === '' || s.seq < (startSeq.get(s.chain) ?? 1)) continue;
    const last = lastSeq.get(s.chain) ?? 0;
    if (s.seq > last)
      throw new Broken(
        s.chain,
        last + 1,
        `records missing at the tail: the chain ends at seq ${last} but the checkpoint of ${iso(s.time)} names seq ${s.seq}`,
      );
    const record = await store.getRecord(s.chain, s.seq);
    if (record === null)
      throw new Broken(
        s.chain,
        s.seq,
        `record missing: seq ${s.seq} named by the checkpoint of ${iso(s.time)} is absent`,
      );
    if (record.hash !== s.hash)
      throw new Broken(
        s.chain,
        s.seq,
        `record differs from the checkpoint of ${iso(s.time)} (the chain was rewritten)`,
      );
  }
}

/** What the walk of one chain checks each record against. */
interface ChainWalk {
  chain: string;
  start: number;
  startPrev: string;
  anchor: ChainStart['anchor'];
  trustedSeq: number;
  retention: CheckpointStatement | undefined;
  /** seq → the signed statements naming it. */
  expected: ReadonlyMap<number, SignedCheckpoint[]>;
  /** The side table of checkpoints, by checkpointKey. */
  side: ReadonlyMap<string, SignedCheckpoint>;
  signed: (checkpoint: SignedCheckpoint) => boolean;
  keyed: boolean;
  /** In-chain checkpoint copies absent from the side table, collected for checkLateCheckpoints. */
  late: SignedCheckpoint[];
}

/** One record of a chain walk: its place, its hash, its link, the checkpoints naming it, a checkpoint it carries. */
function checkRecord(record: StoredRecord, previous: { seq: number; hash: string } | undefined, walk: ChainWalk): void {
  const { chain, start, startPrev, anchor, trustedSeq, retention, expected, side, signed, keyed, late } = walk;
  if (previous === undefined) {
    if (record.seq > start) {
      throw new Broken(
        chain,
        start,
        `records missing: the chain starts at seq ${record.seq}, expected ${start}${retention === undefined ? ' (no retention checkpoint covers the gap)' : ''}`,
      );
    }
    // Records before `start` are leftovers of an interrupted retention run: their links are not checked.
    const firstPrev = record.seq === 1 ? GENESIS_HASH : record.seq === start ? startPrev : undefined;
    if (firstPrev !== undefined && record.prevHash !== firstPrev)
      throw new Broken(chain, record.seq, 'prevHash of the first record does not match the chain start');
  } else if (record.seq !== previous.seq + 1) {
    throw new Broken(
      chain,
      previous.seq + 1,
      `record missing: seq ${previous.seq + 1} is absent (the next record is seq ${record.seq})`,
    );
  }
  if (record.chain !== chain || storedRecordHash(record) !== record.hash) {
    throw new Broken(chain, record.seq, 'record does not match its hash (changed, or moved from another position)');
  }
  if (previous !== undefined && record.prevHash !== previous.hash) {
    throw new Broken(
      chain,
      record.seq,
      anchor === 'checkpoint' && previous.seq === trustedSeq
        ? 'prevHash does not match the checkpoint started from'
        : 'prevHash does not match the previous record (reordered or replaced)',
    );
  }
  if (anchor === 'retention' && record.seq === start && record.prevHash !== startPrev) {
    throw new Broken(chain, record.seq, 'prevHash does not match the retention checkpoint');
  }
  for (const checkpoint of expected.get(record.seq) ?? []) {
    if (checkpoint.statement.hash !== record.hash) {
      throw new Broken(
        chain,
        record.seq,
        `record differs from the checkpoint of ${iso(checkpoint.statement.time)} (the chain was rewritten)`,
      );
    }
  }
  if (record.kind === 'checkpoint') {
    const copy = JSON.parse(record.dataText) as SignedCheckpoint;
    if (!side.has(checkpointKey(copy))) {
      if (!signed(copy))
        throw new Broken(copy.statement.chain, copy.statement.seq, badSignature(copy.statement, keyed));
      late.push(copy);
    }
  }
}

/** The furthest head checkpoint the walk reached (and trusts) must not name a seq past the chain's end. */
function checkTail(
  chain: string,
  mine: readonly SignedCheckpoint[],
  start: number,
  last: number,
  trusted: (checkpoint: SignedCheckpoint) => boolean,
): void {
  const furthest = mine
    .filter((c) => c.statement.type === 'head' && c.statement.seq >= start && trusted(c))
    .sort((a, b) => b.statement.seq - a.statement.seq)[0]?.statement;
  if (furthest !== undefined && furthest.seq > last) {
    throw new Broken(
      chain,
      last + 1,
      `records missing at the tail: the chain ends at seq ${last} but the checkpoint of ${iso(furthest.time)} names seq ${furthest.seq}`,
    );
  }
}

/** Checks every record of a chain after `walk.trustedSeq`, a page at a time; one mutable link, no object per record. */
async function walkChain(
  store: AuditStore,
  walk: ChainWalk,
  pageSize: number,
): Promise<{ records: number; last: number | undefined }> {
  const previous = { seq: walk.trustedSeq, hash: walk.startPrev };
  let linked = walk.trustedSeq > 0; // false before the first record of a walk from the chain start
  let records = 0;
  for await (const page of chainPages(store, walk.chain, walk.trustedSeq, pageSize)) {
    for (const record of page) {
      checkRecord(record, linked ? previous : undefined, walk);
      previous.seq = record.seq;
      previous.hash = record.hash;
      linked = true;
    }
    records += page.length;
  }
  return { records, last: linked ? previous.seq : undefined };
}

/** Backwards-compatible summary of a full verification. */
export async function verifyAudit(store: AuditStore, options: VerifyOptions = {}): Promise<VerifyResult> {
  const report = await verifyAuditReport(store, options);
  if (report.failure !== undefined) return { ok: false, ...report.failure };
  return { ok: true, records: report.records, chains: report.chains };
}

export async function verifyAuditReport(store: AuditStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const clock = options.clock ?? (() => performance.now());
  const began = clock();
  const mode = options.mode ?? 'full';
  const pageSize = options.pageSize ?? 1000;
  const keyed = options.publicKey !== undefined;
  const signed = (checkpoint: SignedCheckpoint): boolean => verifyCheckpointSignature(checkpoint, options.publicKey);
  const [starts, skipped]: [ChainStart[], SkippedCheckpoint[]] = [[], []];
  let [total, chainCount] = [0, 0];

  const finish = (failure?: { chain: string; seq: number; problem: string }): VerifyReport => {
    const elapsedMs = Math.max(0, clock() - began);
    const firstSkip = skipped[0];
    const failed =
      failure ??
      (firstSkip === undefined
        ? undefined
        : { chain: firstSkip.chain, seq: firstSkip.seq, problem: `checkpoint skipped: ${firstSkip.problem}` });
    return {
      ok: failed === undefined,
      mode,
      records: total,
      chains: chainCount,
      elapsedMs: Math.round(elapsedMs),
      recordsPerSecond: elapsedMs > 0 ? Math.round((total * 1000) / elapsedMs) : total,
      starts,
      skipped,
      ...(failed === undefined ? {} : { failure: failed }),
    };
  };

  try {
    const heads = new Map<string, ChainHead>((await store.chainHeads()).map((head) => [head.chain, head]));
    // The side table of checkpoints; copies met inside the chains are checked against it as the walk passes them.
    const side = new Map<string, SignedCheckpoint>();
    const loaded = mode === 'full' ? store.checkpoints() : sinceCheckpoints(store, heads, signed);
    for (const checkpoint of await loaded) side.set(checkpointKey(checkpoint), checkpoint);
    const sideList = [...side.values()].sort((a, b) => a.statement.time - b.statement.time);
    if (mode === 'full') {
      for (const checkpoint of sideList)
        if (!signed(checkpoint))
          throw new Broken(
            checkpoint.statement.chain,
            checkpoint.statement.seq,
            badSignature(checkpoint.statement, keyed),
          );
    }
    /** In-chain checkpoint copies absent from the side table: checked against their chains at the end. */
    const late: SignedCheckpoint[] = [];
    const [lastSeq, startSeq] = [new Map<string, number>(), new Map<string, number>()];

    const chains = [...new Set([...heads.keys(), ...sideList.map((c) => c.statement.chain)])].sort();
    chainCount = chains.length;
    for (const chain of chains) {
      const mine = sideList.filter((c) => c.statement.chain === chain);
      const retention = mine
        .filter((c) => c.statement.type === 'retention')
        .sort((a, b) => b.statement.seq - a.statement.seq)[0]?.statement;
      let start = retention?.seq ?? 1;
      let startPrev = retention?.prevHash ?? GENESIS_HASH;
      let anchor: ChainStart['anchor'] = retention === undefined ? 'genesis' : 'retention';
      let checkpointTime: number | undefined;
      let trustedSeq = 0;

      if (mode === 'since-checkpoint') {
        const trusted = await newestTrustedCheckpoint(store, chain, mine, heads.get(chain), start, {
          signed,
          keyed,
          skipped,
        });
        if (trusted !== undefined) {
          trustedSeq = trusted.seq;
          start = trusted.seq + 1;
          startPrev = trusted.hash;
          anchor = 'checkpoint';
          checkpointTime = trusted.time;
        }
      }

      const expected = expectedCheckpoints(mine, start, mode === 'since-checkpoint' ? signed : undefined);
      starts.push({ chain, fromSeq: start, anchor, ...(checkpointTime === undefined ? {} : { checkpointTime }) });
      startSeq.set(chain, retention?.seq ?? 1);

      const walked = await walkChain(
        store,
        { chain, start, startPrev, anchor, trustedSeq, retention, expected, side, signed, keyed, late },
        pageSize,
      );
      total += walked.records;
      const last = walked.last ?? start - 1;
      lastSeq.set(chain, last);
      checkTail(chain, mine, start, last, (c) => mode === 'full' || signed(c));
    }

    await checkLateCheckpoints(store, late, startSeq, lastSeq);
  } catch (error) {
    if (error instanceof Broken) return finish({ chain: error.chain, seq: error.seq, problem: error.problem });
    throw error;
  }
  return finish();
}
