// The child side of the bench's IPC (children.ts forks the child and calls its ops): `serve(info,
// handlers)` announces the child ready and answers the parent's calls over the fork channel. Plain
// JavaScript, so that a child running the compiled gateway needs no TypeScript loader: tsx's loader
// thread alone adds ~34 MB to a process's RSS, which is not the gateway's (`hoopgate serve` runs dist/).

import { setImmediate } from 'node:timers';

/** @param {unknown} message */
export function send(message) {
  process.send?.(message);
}

/** A process's own view of its memory (heap vs RSS), in MB, for reports. */
export async function memory() {
  const m = process.memoryUsage();
  /** @param {number} v */
  const mb = (v) => Math.round(v / 1024 / 1024);
  return {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
    arrayBuffersMb: mb(m.arrayBuffers),
  };
}

/**
 * @param {unknown} info what the parent receives as the child's `info`
 * @param {Record<string, (args: unknown) => Promise<unknown>>} ownHandlers
 */
export function serve(info, ownHandlers) {
  /** @type {Record<string, (args: unknown) => Promise<unknown>>} */
  const handlers = {
    memory,
    stop: async () => {
      setImmediate(() => process.exit(0));
    },
    ...ownHandlers,
  };
  process.on('message', (/** @type {any} */ message) => {
    if (message?.type !== 'call') return;
    const handler = handlers[message.op];
    if (handler === undefined) {
      send({ type: 'reply', id: message.id, ok: false, error: `unknown op ${message.op}` });
      return;
    }
    handler(message.args).then(
      (result) => send({ type: 'reply', id: message.id, ok: true, result }),
      (/** @type {unknown} */ error) =>
        send({
          type: 'reply',
          id: message.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  // The parent going away ends the child: nothing is left running after a crashed bench.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', info });
}
