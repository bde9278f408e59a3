// The HTTP/2 floor of the held cell (issue #13): what node's own HTTP/2 server costs per parked
// stream, with no gateway in it — `bare` keeps (req, res) of each stream in an array; `koa` parks each
// request in a Koa app of three middleware awaiting a promise. The server runs in a child process
// (its RSS and V8 heap, after a full GC, are what is measured); the client opens the streams as the
// held cell does (200 per TLS connection, an 800-byte bearer token each).
//   node --conditions=source --import tsx bench/held-h2-floor.ts [count]      (default 10,000)
// A held call over HTTP/2 cannot cost less than `bare`; a held call inside Koa, less than `koa`.
import { fork } from 'node:child_process';
import { connect, createSecureServer, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { generateTlsMaterial } from '../packages/sim/src/tls.js';

interface Memory {
  rss: number;
  heap: number;
  parked: number;
}

function measure(parked: number): Memory {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heap: heapUsed, parked };
}

function server(mode: string, tls: { key: string; cert: string }): void {
  const parked: unknown[] = [];
  let handler: Parameters<typeof createSecureServer>[1];
  if (mode === 'bare') handler = (req, res) => void parked.push([req, res]);
  else {
    const app = new Koa();
    app.use(async (_ctx, next) => {
      try {
        await next();
      } catch {
        // parked only
      }
    });
    app.use(async (_ctx, next) => next());
    app.use(async (ctx) => {
      await new Promise((resolve) => parked.push(resolve));
      ctx.body = 'answered';
    });
    const callback = app.callback();
    handler = (req, res) => void callback(req, res);
  }
  const h2 = createSecureServer({ ...tls, allowHTTP1: true, settings: { maxConcurrentStreams: 250 } }, handler);
  h2.listen(0, '127.0.0.1', () =>
    process.send?.({ port: (h2.address() as AddressInfo).port, ...measure(parked.length) }),
  );
  process.on('message', () => process.send?.(measure(parked.length)));
}

async function client(mode: string, count: number, tls: { key: string; cert: string; ca: string }): Promise<string> {
  const child = fork(fileURLToPath(import.meta.url), ['server', mode, JSON.stringify(tls)], {
    execArgv: ['--expose-gc', '--conditions=source', '--import', 'tsx'],
  });
  const next = () => new Promise<Memory & { port?: number }>((resolve) => child.once('message', resolve as never));
  const base = await next();
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < count; i++) {
    const index = Math.floor(i / 200);
    const session = (sessions[index] ??= connect(`https://127.0.0.1:${base.port}`, { ca: tls.ca }).on(
      'error',
      () => undefined,
    ));
    const stream = session.request({ ':path': `/held/${i}`, authorization: `Bearer ${'a'.repeat(800)}` });
    stream.on('error', () => undefined);
    stream.resume();
  }
  let after = base;
  for (let tries = 0; tries < 120 && after.parked < count; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.send('measure');
    after = await next();
  }
  for (const session of sessions) session.destroy();
  child.kill();
  const kb = (bytes: number) => bytes / 1024 / count;
  return `| ${mode} | ${after.parked} | ${Math.round(base.rss / 1048576)} → ${Math.round(after.rss / 1048576)} MB (${kb(after.rss - base.rss).toFixed(1)} KB per stream) | ${kb(after.heap - base.heap).toFixed(1)} KB per stream |`;
}

const [role, mode, json] = process.argv.slice(2);
if (role === 'server') server(mode ?? 'bare', JSON.parse(json ?? '{}') as { key: string; cert: string });
else {
  const count = Number(role ?? 10_000) || 10_000;
  const tls = generateTlsMaterial({ hosts: ['127.0.0.1'] });
  const rows = [await client('bare', count, tls), await client('koa', count, tls)];
  process.stdout.write(
    `| node HTTP/2 server, parked streams (${count}, 200 per TLS connection) | streams | server RSS | V8 heap after GC |\n|---|---|---|---|\n${rows.join('\n')}\n`,
  );
  process.exit(0);
}
