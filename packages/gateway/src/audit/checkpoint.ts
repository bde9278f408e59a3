// Signed checkpoints: Ed25519 statements of every chain head, stored beside the chain and appended to
// it, and optionally witnessed outside the store (Slack), so a truncated tail or a rewritten chain
// no longer matches what was signed.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { createScheduledJob, type Timers } from '../lib/scheduled-job.js';
import { parseEd25519PrivateKey } from '../lib/signing-key.js';
import { canonicalJson } from '../store/chain.js';
import type { AuditStore, CheckpointStatement, SignedCheckpoint } from '../store/types.js';

export interface SigningKey {
  privateKey: KeyObject;
  /** SPKI PEM. */
  publicKeyPem: string;
  /** No signingKeyFile: a key made at start, so checkpoints prove integrity but not who signed. */
  generated: boolean;
}

/** Reads an Ed25519 private key (PKCS#8 PEM), or generates one when no file is configured. */
export async function loadSigningKey(file?: string): Promise<SigningKey> {
  if (file === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), generated: true };
  }
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new HoopError(
      'ERR_CONFIG',
      `audit.checkpoint.signingKeyFile: cannot read ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const parsed = parseEd25519PrivateKey(pem);
  if ('problem' in parsed)
    throw new HoopError('ERR_CONFIG', `audit.checkpoint.signingKeyFile: ${file} ${parsed.problem}`);
  const privateKey = parsed.key;
  return {
    privateKey,
    publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
    generated: false,
  };
}

/** The public key of a signing key file (private PEM) or a public PEM, for verifiers. */
export async function loadVerifyKey(file: string): Promise<KeyObject> {
  const pem = await readFile(file, 'utf8');
  return pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
}

export function signStatement(key: SigningKey, statement: CheckpointStatement): SignedCheckpoint {
  const signature = sign(null, Buffer.from(canonicalJson(statement)), key.privateKey).toString('base64');
  return { statement, signature, publicKey: key.publicKeyPem, keyGenerated: key.generated };
}

/** With `publicKey`, the checkpoint must be signed by that key; without it, by the key it carries. */
export function verifyCheckpointSignature(checkpoint: SignedCheckpoint, publicKey?: KeyObject | string): boolean {
  try {
    const key = publicKey ?? checkpoint.publicKey;
    return verify(
      null,
      Buffer.from(canonicalJson(checkpoint.statement)),
      typeof key === 'string' ? createPublicKey(key) : key,
      Buffer.from(checkpoint.signature, 'base64'),
    );
  } catch {
    return false;
  }
}

export interface Checkpointer {
  /** Signs and stores the heads that moved since the last run; returns what was signed. */
  checkpoint(): Promise<SignedCheckpoint[]>;
  /** The schedule start() sets up; undefined without everyMs. */
  readonly schedule: { name: string; everyMs: number } | undefined;
  start(): void;
  /** Stops the schedule and writes a last checkpoint. */
  stop(): Promise<void>;
}

export interface CheckpointerDeps {
  store: AuditStore;
  key: SigningKey;
  replicaId: string;
  clock: () => number;
  /** Absent: no schedule (checkpoint() and the final one at stop() still work). Any interval. */
  everyMs?: number;
  timers?: Timers;
  /** Posts a checkpoint outside the store (the Slack module); failures are logged, never fatal. */
  witness?: (checkpoint: SignedCheckpoint) => Promise<void>;
  logger?: Logger;
}

export function createCheckpointer(deps: CheckpointerDeps): Checkpointer {
  const logger = deps.logger ?? silentLogger;
  /** chain → seq last signed by this replica (own chain: the seq of the checkpoint record itself). */
  const signed = new Map<string, number>();

  async function run(): Promise<SignedCheckpoint[]> {
    const own = deps.store.chain;
    // Own chain last: the checkpoint records written for other chains then count as signed too.
    const heads = (await deps.store.chainHeads()).sort((a, b) => Number(a.chain === own) - Number(b.chain === own));
    const done: SignedCheckpoint[] = [];
    let lastOwnRecord: number | undefined;
    for (const head of heads) {
      if (signed.get(head.chain) === head.seq) continue;
      const statement: CheckpointStatement = {
        type: 'head',
        chain: head.chain,
        seq: head.seq,
        hash: head.hash,
        time: deps.clock(),
        by: deps.replicaId,
      };
      const checkpoint = signStatement(deps.key, statement);
      const record = await deps.store.appendCheckpoint(checkpoint);
      lastOwnRecord = record.seq;
      signed.set(head.chain, head.seq);
      done.push(checkpoint);
      if (deps.witness !== undefined) {
        await deps
          .witness(checkpoint)
          .catch((error: unknown) => logger.warn({ err: error, chain: head.chain }, 'checkpoint witness failed'));
      }
    }
    // The checkpoint records themselves need no checkpoint of their own until something else is written.
    if (lastOwnRecord !== undefined) signed.set(own, lastOwnRecord);
    return done;
  }

  const job = createScheduledJob({
    name: `audit-checkpoint-${deps.replicaId}`,
    everyMs: deps.everyMs ?? 3_600_000,
    clock: deps.clock,
    run,
    logger,
    failure: 'audit checkpoint failed; the next run will retry',
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
  });

  return {
    checkpoint: job.run,
    schedule: deps.everyMs === undefined ? undefined : { name: job.name, everyMs: job.everyMs },
    // Scheduled only with an interval; checkpoint() and the final one at stop() work either way.
    start: () => (deps.everyMs === undefined ? undefined : job.start()),
    async stop() {
      await job.stop();
      await job.run();
    },
  };
}
