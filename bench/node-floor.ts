// The Node floor of the fast cell (issue #13): the least a TLS gateway written in Node 20 must do, to
// tell what is inherent to Node and TLS from what is hoopgate's own. HTTPS in (HTTP/1.1 and h2 by ALPN,
// as the gateway serves them), keep-alive HTTPS out through an undici Pool, status and headers copied,
// a small body read whole and sent with its length (the gateway's small-answer path), a larger one
// streamed. No auth, policy, masking, audit or logging. The `durable` variant adds the two things the
// gateway cannot skip: the bearer token looked up in a cache (by SHA-256 digest, as verified tokens are)
// and one durable SQLite insert per request (WAL, synchronous=FULL, group commit on a worker thread)
// that must commit before the request is forwarded.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { Pool, type Dispatcher } from 'undici';

export interface NodeFloorOptions {
  certFile: string;
  keyFile: string;
  upstreamUrl: string;
  upstreamCaFile: string;
  /** `plain`: forward only; `durable`: token from a cache and a durable insert before forwarding. */
  variant: 'plain' | 'durable';
  /** durable: the bearer tokens accepted (the cache, as if each had been verified once). */
  tokens?: string[];
  /** durable: the credential sent upstream instead of the client's (the minted ServiceAccount token). */
  upstreamToken?: string;
  /** durable: the SQLite file. */
  dbFile?: string;
}

export interface NodeFloor {
  url: string;
  close(): Promise<void>;
}

/** Hop-by-hop and HTTP/2-forbidden headers, never copied either way. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'http2-settings',
]);
/** Bodies up to this size with a known length are read whole and sent as one buffer. */
const wholeBodyBytes = 64 * 1024;

/** Copies a header map without hop-by-hop headers and HTTP/2 pseudo-headers (`:path`…). */
export function copyHeaders(
  headers: Record<string, string | string[] | undefined>,
  join: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || hopByHop.has(name)) continue;
    out[name] = join && Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

// The writer thread, plain CommonJS (no tsx in the worker): commits each batch it is sent as one
// transaction and answers with the batch's id once it is durable.
const writerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS intent (id INTEGER PRIMARY KEY, record TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO intent (record) VALUES (?)');
const commit = db.transaction((records) => { for (const record of records) insert.run(record); });
parentPort.on('message', ({ id, records }) => { commit(records); parentPort.postMessage(id); });
`;

/** Group commit: records queued while a batch is being committed go together in the next one. */
function createDurableLog(file: string): { append(record: string): Promise<void>; close(): Promise<number> } {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(writerCode, { eval: true, workerData: { file, sqlite } });
  let queued: { records: string[]; waiters: (() => void)[] } = { records: [], waiters: [] };
  let inFlight: (() => void)[] | undefined;
  let nextId = 0;
  const flush = (): void => {
    if (inFlight !== undefined || queued.records.length === 0) return;
    const batch = queued;
    queued = { records: [], waiters: [] };
    inFlight = batch.waiters;
    worker.postMessage({ id: nextId++, records: batch.records });
  };
  worker.on('message', () => {
    const done = inFlight ?? [];
    inFlight = undefined;
    for (const resolve of done) resolve();
    flush();
  });
  worker.on('error', (error) => {
    process.stderr.write(`node floor: the writer thread failed: ${error.message}\n`);
    process.exit(1);
  });
  return {
    append(record) {
      return new Promise<void>((resolve) => {
        queued.records.push(record);
        queued.waiters.push(resolve);
        flush();
      });
    },
    close: () => worker.terminate(),
  };
}

export async function startNodeFloor(options: NodeFloorOptions): Promise<NodeFloor> {
  const pool = new Pool(options.upstreamUrl, {
    connect: { ca: readFileSync(options.upstreamCaFile, 'utf8') },
    keepAliveTimeout: 30_000,
  });
  const durable = options.variant === 'durable';
  const digest = (token: string) => createHash('sha256').update(token).digest('base64url');
  const identities = new Map((options.tokens ?? []).map((token, i) => [digest(token), `agent-${i}`]));
  if (durable && (options.dbFile === undefined || options.upstreamToken === undefined || identities.size === 0))
    throw new Error('node floor: the durable variant needs dbFile, upstreamToken and tokens');
  const log = durable ? createDurableLog(options.dbFile ?? '') : undefined;

  async function forward(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): Promise<void> {
    const headers = copyHeaders(req.headers, true) as Record<string, string>;
    const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
    const path = req.url ?? '/';
    if (log !== undefined) {
      const authorization = req.headers.authorization ?? '';
      const identity = authorization.startsWith('Bearer ') ? identities.get(digest(authorization.slice(7))) : undefined;
      if (identity === undefined) {
        res.writeHead(401, { 'content-type': 'text/plain' });
        res.end('node floor: unknown bearer token\n');
        return;
      }
      headers['authorization'] = `Bearer ${options.upstreamToken}`;
      await log.append(JSON.stringify({ time: Date.now(), identity, method, path }));
    }
    const chunks: Buffer[] = [];
    if (method !== 'GET' && method !== 'HEAD') for await (const chunk of req) chunks.push(chunk as Buffer);
    const upstream = await pool.request({
      path,
      method,
      headers,
      body: chunks.length === 0 ? null : Buffer.concat(chunks),
    });
    const out = copyHeaders(upstream.headers, false);
    const length = Number(upstream.headers['content-length']);
    if (Number.isInteger(length) && length <= wholeBodyBytes) {
      const body = Buffer.from(await upstream.body.arrayBuffer());
      res.writeHead(upstream.statusCode, out);
      res.end(body);
      return;
    }
    res.writeHead(upstream.statusCode, out);
    await pipeline(upstream.body, res as NodeJS.WritableStream);
  }

  const server = createSecureServer(
    {
      cert: readFileSync(options.certFile),
      key: readFileSync(options.keyFile),
      allowHTTP1: true,
      settings: { maxConcurrentStreams: 250, enablePush: false },
    },
    (req, res) => {
      forward(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`node floor: the upstream did not answer: ${(error as Error).message}\n`);
      });
    },
  );
  // As the gateway's listener: Nagle off for HTTP/1.1 (node's http.Server default), keep-alive kept.
  Object.assign(server, { keepAliveTimeout: 120_000, headersTimeout: 130_000 });
  server.on('secureConnection', (socket: { setNoDelay(noDelay?: boolean): unknown }) => socket.setNoDelay(true));
  server.on('session', (session) => session.on('error', () => session.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
      await pool.close();
      await log?.close();
    },
  };
}
