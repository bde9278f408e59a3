// The SQLite audit writer thread: its own better-sqlite3 connection (WAL, synchronous=FULL) and the
// chain's CPU work (normalising, canonical JSON, SHA-256, prev hash). Appends that arrive while a
// transaction commits wait in the port and go out together as the next transaction: one fsync for
// every request then in flight. Started by writer.ts; speaks writer-protocol.ts.
// The thread does not run an event loop (issue #13): it sleeps in Atomics.wait on the shared wake
// counter, which writer.ts bumps after each message, and takes its messages with receiveMessageOnPort.
// Waking a thread blocked on a futex cost ~35 % less CPU per round trip than waking its event loop
// through the port (bench/lat-floors.ts thread), and saves a loop turn (setImmediate) per commit.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import { chainDrafts } from '../chain.js';
import type { AuditRecordDraft } from '../types.js';
import { prepareRecordWrites, type RecordWrites } from './audit.js';
import type { FromWriter, ToWriter, WriterThreadConfig } from './writer-protocol.js';

interface Queued {
  id: number;
  drafts: AuditRecordDraft[];
  /** Parsed from JSON without an escaped surrogate: already what normaliseData would return. */
  normalised: boolean;
}

/** JSON.stringify escapes lone surrogates (\\udXXX); a text without any such escape has none. */
const surrogateEscape = /\\u[dD][89a-fA-F]/;

const config = workerData as WriterThreadConfig;
const port = parentPort;
const send = (message: FromWriter): void => port?.postMessage(message);
const wake = new Int32Array(config.wake);
/** How long the thread sleeps in Atomics.wait before it lets its event loop run V8's tasks. */
const IDLE_TURN_MS = 1000;
const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function open(): { db: Sqlite.Database; writes: RecordWrites; probe: () => void } {
  const db = new Sqlite(config.path, { timeout: config.busyTimeoutMs, fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  // Appends touch only the tail pages of the tables and indexes: a small page cache (2 MB, not the
  // default 16 MB) keeps a busy writer from growing the process by the data it has just written.
  db.pragma('cache_size = -2048');
  const writes = prepareRecordWrites(db);
  writes.loadHead(config.chain);
  // Takes and releases the write lock: fails while another connection holds it past the busy timeout.
  const probe = db.transaction(() => undefined);
  return { db, writes, probe: () => probe.immediate() };
}

function serve(): void {
  let opened: ReturnType<typeof open>;
  try {
    opened = open();
  } catch (error) {
    send({ type: 'fatal', message: message(error) });
    return;
  }
  const { db, writes, probe } = opened;
  const queue: Queued[] = [];
  let head: { seq: number; hash: string } | undefined;
  let closing = false;

  function commit(batch: Queued[]): void {
    const ids = batch.map((item) => item.id);
    try {
      head ??= writes.loadHead(config.chain);
      const normalised = batch.every((item) => item.normalised);
      const {
        slices,
        texts,
        head: next,
      } = chainDrafts(
        config.chain,
        head,
        batch.map((item) => item.drafts),
        { normalised },
      );
      const records = slices.flat();
      writes.writeBatch(records, texts);
      head = next;
      const first = records[0];
      send({
        type: 'committed',
        ids,
        counts: slices.map((slice) => slice.length),
        firstSeq: first?.seq ?? 0,
        prevHash: first?.prevHash ?? '',
        hashes: records.map((record) => record.hash).join(''),
      });
    } catch (error) {
      // Nothing of the batch is assumed written (the transaction rolled back): re-read the head.
      head = undefined;
      send({ type: 'failed', ids, message: message(error) });
    }
  }

  function take(incoming: ToWriter): void {
    if (incoming.type === 'append') {
      const lists = JSON.parse(incoming.drafts) as AuditRecordDraft[][];
      const normalised = !surrogateEscape.test(incoming.drafts);
      incoming.ids.forEach((id, index) => queue.push({ id, drafts: lists[index] ?? [], normalised }));
    } else if (incoming.type === 'ping') {
      try {
        probe();
        send({ type: 'pong', id: incoming.id });
      } catch (error) {
        send({ type: 'pong', id: incoming.id, error: message(error) });
      }
    } else if (incoming.type === 'exit') {
      process.exit(70);
    } else {
      closing = true;
    }
  }

  // Every message that arrived while the thread slept or committed is taken before the next commit,
  // so appends that came in during a commit go out together as the next transaction (group commit).
  // The counter is read before the port is drained: a message posted after the read bumps it, and
  // Atomics.wait then returns at once instead of sleeping past it. After IDLE_TURN_MS without a
  // message the thread gives its event loop one turn, so V8's own tasks (the memory reducer, idle
  // collections) still run; a message posted meanwhile is taken when the loop resumes.
  function run(): void {
    for (;;) {
      const seen = Atomics.load(wake, 0);
      for (
        let next = receiveMessageOnPort(port as MessagePort);
        next !== undefined;
        next = receiveMessageOnPort(port as MessagePort)
      )
        take(next.message as ToWriter);
      if (queue.length > 0) {
        commit(config.groupCommit ? queue.splice(0) : queue.splice(0, 1));
        continue;
      }
      if (closing) {
        db.close();
        send({ type: 'closed' });
        port?.close();
        return;
      }
      if (Atomics.wait(wake, 0, seen, IDLE_TURN_MS) === 'timed-out') {
        setImmediate(run);
        return;
      }
    }
  }
  run();
}

serve();
