// The log's write path off the request's hot path (issue #13): lines are queued and written in
// batches — when `batchBytes` are queued, else `delayMs` (20 ms) after the first queued line, so a
// gateway serving one request at a time makes one write call per many requests, not one each — and
// the queue is bounded: when the destination is slower than the gateway writes, lines are dropped and
// counted, never buffered without limit. A normal stop flushes (lifecycle), and so does the process's
// 'exit' event; a process killed outright (SIGKILL, OOM) loses at most the last `delayMs` of lines.

/** What the buffer writes to: pino's sonic-boom, a Writable, or a test's `{ write }`. */
export interface LogTarget {
  write(chunk: string): boolean | void;
  flushSync?(): void;
  once?(event: 'drain', listener: () => void): unknown;
}

export interface LogBufferOptions {
  /** Bytes (UTF-16 code units, close enough) queued before lines are dropped; default 8 MiB. */
  maxBufferedBytes?: number;
  /** Called with the number of lines dropped (hoopgate_log_lines_dropped_total). */
  onDrop?: (lines: number) => void;
  /** How long the first queued line waits for others before the batch is written; default 20 ms. */
  delayMs?: number;
  /** Queued bytes that are written at once, without waiting for the delay; default 64 KiB. */
  batchBytes?: number;
  /** How a batch is scheduled; default a timer of `delayMs` that does not keep the process alive. */
  schedule?: (flush: () => void) => void;
}

export interface LogBuffer {
  /** pino's destination: queues one line. */
  write(line: string): boolean;
  /** Writes everything queued now, then asks the target to flush itself (sync where it can). */
  flush(callback?: (error?: Error) => void): void;
  stats(): { bufferedBytes: number; dropped: number };
}

const defaultMaxBytes = 8 * 1024 * 1024;
const defaultDelayMs = 20;
const defaultBatchBytes = 64 * 1024;
/** Buffers with queued lines, flushed when the process exits without a stop (one listener for all). */
const pendingAtExit = new Set<() => void>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const flush of pendingAtExit) flush();
  });
}

export function createLogBuffer(target: LogTarget, options: LogBufferOptions = {}): LogBuffer {
  const maxBytes = options.maxBufferedBytes ?? defaultMaxBytes;
  const delayMs = options.delayMs ?? defaultDelayMs;
  const batchBytes = options.batchBytes ?? defaultBatchBytes;
  const schedule = options.schedule ?? ((flush: () => void) => void setTimeout(flush, delayMs).unref());
  let queue: string[] = [];
  let bytes = 0;
  let scheduled = false;
  /** The target said it is full (write returned false) and has not drained yet. */
  let blocked = false;
  let dropped = 0;
  /** Lines dropped since the queue was last emptied; the notice is written once per such episode. */
  let droppingSince = 0;

  function writeQueued(): void {
    if (queue.length === 0) return;
    const batch = queue.length === 1 ? (queue[0] as string) : queue.join('');
    queue = [];
    bytes = 0;
    droppingSince = 0;
    pendingAtExit.delete(flushAtExit);
    const accepted = target.write(batch);
    if (accepted === false && typeof target.once === 'function') {
      blocked = true;
      target.once('drain', () => {
        blocked = false;
        if (queue.length > 0) arm();
      });
    }
  }

  function arm(): void {
    if (scheduled || blocked) return;
    scheduled = true;
    schedule(() => {
      scheduled = false;
      if (!blocked) writeQueued();
    });
  }

  function flushAtExit(): void {
    writeQueued();
    try {
      target.flushSync?.();
    } catch {
      // sonic-boom refuses before its file is open; nothing more can be done while exiting
    }
  }

  function notice(): string {
    const at = new Date().toISOString();
    return `${JSON.stringify({ level: 'warn', time: at, service: 'hoopgate', msg: `log: dropping lines: more than ${maxBytes} bytes are waiting for the log destination; counted in hoopgate_log_lines_dropped_total` })}\n`;
  }

  return {
    write(line) {
      if (bytes + line.length > maxBytes) {
        dropped += 1;
        options.onDrop?.(1);
        // One notice per episode, allowed past the bound: the reader learns lines are missing here.
        if (droppingSince++ === 0) queue.push(notice());
        return true;
      }
      queue.push(line);
      bytes += line.length;
      if (queue.length === 1) {
        hookExit();
        pendingAtExit.add(flushAtExit);
      }
      // A full batch goes out now (the armed timer then finds less or nothing to write).
      if (bytes >= batchBytes && !blocked) writeQueued();
      else arm();
      return true;
    },
    flush(callback) {
      try {
        flushAtExit();
        callback?.();
      } catch (error) {
        callback?.(error instanceof Error ? error : new Error(String(error)));
      }
    },
    stats: () => ({ bufferedBytes: bytes, dropped }),
  };
}
