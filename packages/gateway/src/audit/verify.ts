// Verifies the audit chains: every record's hash, every link to its predecessor, no gaps, chain starts
// justified by signed retention checkpoints, and chain contents matching the signed head checkpoints
// (which catches a truncated tail and a chain rewritten with fresh hashes).
import type { KeyObject } from 'node:crypto';
import { canonicalJson, GENESIS_HASH, hashRecord } from '../store/chain.js';
import type { AuditRecord, AuditStore, SignedCheckpoint } from '../store/types.js';
import { verifyCheckpointSignature } from './checkpoint.js';

export type VerifyResult = { ok: true; records: number; chains: number } | { ok: false; chain: string; seq: number; problem: string };

export interface VerifyOptions {
  /** The checkpoint signers' public key (PEM or KeyObject); without it each checkpoint's own key is used. */
  publicKey?: KeyObject | string;
  pageSize?: number;
}

const iso = (time: number): string => new Date(time).toISOString();

function statementSeq(checkpoint: SignedCheckpoint): number {
  return checkpoint.statement.seq;
}

export async function verifyAudit(store: AuditStore, options: VerifyOptions = {}): Promise<VerifyResult> {
  const pageSize = options.pageSize ?? 1000;
  const heads = await store.chainHeads();

  // Checkpoints live beside the chain and inside it; both copies are checked (an altered copy fails).
  const all = new Map<string, SignedCheckpoint>();
  const add = (checkpoint: SignedCheckpoint): void => {
    all.set(`${checkpoint.signature} ${canonicalJson(checkpoint.statement)}`, checkpoint);
  };
  for (const checkpoint of await store.checkpoints()) add(checkpoint);
  for (const record of await store.listRecords({ kinds: ['checkpoint'] })) add(record.data as unknown as SignedCheckpoint);
  const checkpoints = [...all.values()].sort((a, b) => a.statement.time - b.statement.time);
  for (const checkpoint of checkpoints) {
    if (!verifyCheckpointSignature(checkpoint, options.publicKey)) {
      const s = checkpoint.statement;
      return {
        ok: false,
        chain: s.chain,
        seq: s.seq,
        problem: `the ${s.type} checkpoint of ${iso(s.time)} signed by ${s.by} has a bad signature${options.publicKey === undefined ? '' : ' for the configured key'}`,
      };
    }
  }

  const chains = [...new Set([...heads.map((h) => h.chain), ...checkpoints.map((c) => c.statement.chain)])].sort();
  let total = 0;
  for (const chain of chains) {
    const mine = checkpoints.filter((c) => c.statement.chain === chain);
    const retention = mine.filter((c) => c.statement.type === 'retention').sort((a, b) => statementSeq(b) - statementSeq(a))[0]?.statement;
    const start = retention?.seq ?? 1;
    const startPrev = retention?.prevHash ?? GENESIS_HASH;
    /** seq → hashes the record there must have, per signed statement. */
    const expected = new Map<number, SignedCheckpoint[]>();
    for (const checkpoint of mine) {
      const s = checkpoint.statement;
      if (s.seq < start || s.hash === '') continue;
      expected.set(s.seq, [...(expected.get(s.seq) ?? []), checkpoint]);
    }

    let previous: AuditRecord | undefined;
    let after = 0;
    for (;;) {
      const page = await store.readChain(chain, after, pageSize);
      for (const record of page) {
        if (previous === undefined) {
          if (record.seq > start) {
            return {
              ok: false,
              chain,
              seq: start,
              problem: `records missing: the chain starts at seq ${record.seq}, expected ${start}${retention === undefined ? ' (no retention checkpoint covers the gap)' : ''}`,
            };
          }
          // Records before `start` are leftovers of an interrupted retention run: their links are not checked.
          const firstPrev = record.seq === 1 ? GENESIS_HASH : record.seq === start ? startPrev : undefined;
          if (firstPrev !== undefined && record.prevHash !== firstPrev) {
            return { ok: false, chain, seq: record.seq, problem: 'prevHash of the first record does not match the chain start' };
          }
        } else {
          if (record.seq !== previous.seq + 1) {
            return {
              ok: false,
              chain,
              seq: previous.seq + 1,
              problem: `record missing: seq ${previous.seq + 1} is absent (the next record is seq ${record.seq})`,
            };
          }
        }
        const { hash, ...unhashed } = record;
        if (record.chain !== chain || hashRecord(unhashed) !== hash) {
          return { ok: false, chain, seq: record.seq, problem: 'record does not match its hash (changed, or moved from another position)' };
        }
        if (previous !== undefined && record.prevHash !== previous.hash) {
          return { ok: false, chain, seq: record.seq, problem: 'prevHash does not match the previous record (reordered or replaced)' };
        }
        if (retention !== undefined && record.seq === start && record.prevHash !== startPrev) {
          return { ok: false, chain, seq: record.seq, problem: 'prevHash does not match the retention checkpoint' };
        }
        for (const checkpoint of expected.get(record.seq) ?? []) {
          if (checkpoint.statement.hash !== record.hash) {
            return {
              ok: false,
              chain,
              seq: record.seq,
              problem: `record differs from the checkpoint of ${iso(checkpoint.statement.time)} (the chain was rewritten)`,
            };
          }
        }
        previous = record;
        total += 1;
      }
      if (page.length < pageSize) break;
      after = page[page.length - 1]?.seq ?? after;
    }

    const last = previous?.seq ?? start - 1;
    const furthest = mine
      .filter((c) => c.statement.type === 'head' && c.statement.seq >= start)
      .sort((a, b) => statementSeq(b) - statementSeq(a))[0]?.statement;
    if (furthest !== undefined && furthest.seq > last) {
      return {
        ok: false,
        chain,
        seq: last + 1,
        problem: `records missing at the tail: the chain ends at seq ${last} but the checkpoint of ${iso(furthest.time)} names seq ${furthest.seq}`,
      };
    }
  }
  return { ok: true, records: total, chains: chains.length };
}
