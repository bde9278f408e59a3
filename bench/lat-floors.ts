// The floors under the gateway's 1-concurrent added latency (issue #13), each measured alone:
//   sqlite   one small INSERT committed as its own WAL transaction with synchronous=FULL (the fsync
//            a write-before-forward intent cannot avoid), p50/p99 over `n` commits, on `--dir`'s disk;
//   thread   a worker-thread round trip: postMessage → reply, and Atomics.notify → Atomics.waitAsync;
//   proxy    a bare node:https server forwarding to an undici Pool (keep-alive TLS both sides) vs
//            direct, c=1, added p50/p99 — what any Node proxy of this shape pays before doing anything.
// Usage: node --import tsx bench/lat-floors.ts [sqlite|thread|proxy ...] [--dir /tmp] [--n 2000]
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import { Pool } from 'undici';
import { cpuSecondsOf } from './children.js';
import { runLoad } from './load.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const index = argv.indexOf(name);
  return index >= 0 ? (argv[index + 1] ?? fallback) : fallback;
};
const which = argv.filter((a) => ['sqlite', 'thread', 'proxy'].includes(a));
const wanted = (name: string): boolean => which.length === 0 || which.includes(name);
const n = Number(option('--n', '2000'));

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  return { p50: Number(at(50).toFixed(3)), p99: Number(at(99).toFixed(3)) };
}

/**
 * `bare`: one ~600 B row per transaction in a table without indexes. `audit`: two rows per transaction
 * (an intent and the previous call's outcome, as the recorder writes them) into a table with the five
 * indexes of audit_records (store/sqlite/schema.ts): what the writer thread commits per call at c=1.
 */
function sqliteFloor(shape: 'bare' | 'audit'): void {
  const dir = mkdtempSync(join(option('--dir', tmpdir()), 'lat-floor-'));
  const db = new Sqlite(join(dir, 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE r (seq INTEGER PRIMARY KEY, chain INT, time INT, event TEXT, session TEXT, who TEXT, data TEXT)',
  );
  if (shape === 'audit')
    db.exec(`CREATE UNIQUE INDEX r_chain_seq ON r (chain, seq); CREATE INDEX r_time ON r (time, chain, seq);
      CREATE INDEX r_session ON r (session, time); CREATE INDEX r_event ON r (event); CREATE INDEX r_who ON r (who, time)`);
  const insert = db.prepare('INSERT INTO r (chain, time, event, session, who, data) VALUES (1, ?, ?, ?, ?, ?)');
  const rows = shape === 'audit' ? 2 : 1;
  const commit = db.transaction(() => {
    for (let row = 0; row < rows; row++) insert.run(Date.now(), randomUUID(), 'session-1', 'reader', 'x'.repeat(600));
  });
  const samples: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    commit.immediate();
    samples.push(performance.now() - start);
  }
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000 / n;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const what = shape === 'audit' ? 'two ~600 B rows, five indexes' : 'one ~600 B row, no index';
  console.log(`sqlite: ${what}, one WAL transaction each, synchronous=FULL, ${n} commits (ms)`, {
    ...percentiles(samples),
    cpuMsPerCommit: Number(cpuMs.toFixed(3)),
  });
}

/** Atomics.waitAsync (Node 16+; not in this TypeScript lib). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(array: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

async function threadFloor(): Promise<void> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const flag = new Int32Array(workerData);
    parentPort.on('message', (m) => {
      if (m === 'atomics') {
        (function loop() {
          const r = Atomics.waitAsync(flag, 0, 0);
          const go = () => { Atomics.store(flag, 0, 0); Atomics.store(flag, 1, 1); Atomics.notify(flag, 1); loop(); };
          if (r.async) r.value.then(go); else go();
        })();
        return;
      }
      parentPort.postMessage(m);
    });`;
  const shared = new SharedArrayBuffer(8);
  const flag = new Int32Array(shared);
  const worker = new Worker(code, { eval: true, workerData: shared });
  const post: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      worker.once('message', () => resolve());
      worker.postMessage(i);
    });
    post.push(performance.now() - start);
  }
  worker.postMessage('atomics');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const atomics: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    Atomics.store(flag, 1, 0);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const r = waitAsync(flag, 1, 0);
    if (r.async) await r.value;
    atomics.push(performance.now() - start);
  }
  await worker.terminate();
  // What the SQLite writer thread does (writer-thread.ts): it sleeps in Atomics.wait on a counter the
  // event loop bumps after posting, drains its port with receiveMessageOnPort, answers by postMessage.
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const sleeper = new Worker(
    `const { parentPort, receiveMessageOnPort, workerData } = require('node:worker_threads');
     const wake = new Int32Array(workerData);
     for (;;) {
       const seen = Atomics.load(wake, 0);
       for (let m = receiveMessageOnPort(parentPort); m !== undefined; m = receiveMessageOnPort(parentPort)) parentPort.postMessage(m.message);
       Atomics.wait(wake, 0, seen);
     }`,
    { eval: true, workerData: counter.buffer },
  );
  const gap = Number(option('--gap', '1'));
  const roundTrips = async (send: (i: number) => void, target: Worker) => {
    const samples: number[] = [];
    const cpu = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
      const start = performance.now();
      const answered = new Promise<void>((resolve) => target.once('message', () => resolve()));
      send(i);
      await answered;
      samples.push(performance.now() - start);
    }
    const used = process.cpuUsage(cpu);
    return { ...percentiles(samples), processCpuMs: Number(((used.user + used.system) / 1000 / n).toFixed(3)) };
  };
  const echo = new Worker(
    `const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`,
    { eval: true },
  );
  const viaLoop = await roundTrips((i) => echo.postMessage(i), echo);
  const viaFutex = await roundTrips((i) => {
    sleeper.postMessage(i);
    Atomics.add(counter, 0, 1);
    Atomics.notify(counter, 0);
  }, sleeper);
  await echo.terminate();
  await sleeper.terminate();
  console.log(
    `thread: ${gap} ms idle before each round trip; worker in its event loop, postMessage both ways (ms)`,
    viaLoop,
  );
  console.log(
    `thread: ${gap} ms idle before each round trip; worker in Atomics.wait + receiveMessageOnPort (ms)`,
    viaFutex,
  );
  console.log(`thread: postMessage round trip, ${n} (ms)`, percentiles(post));
  console.log(`thread: Atomics.notify → waitAsync round trip, ${n} (ms)`, percentiles(atomics));
}

/** A child process: `upstream` or `proxy` role, so no two of loadgen, proxy and upstream share a loop. */
async function proxyChild(role: string, dir: string, upstreamUrl?: string): Promise<void> {
  const key = readFileSync(join(dir, 'key.pem'));
  const cert = readFileSync(join(dir, 'cert.pem'));
  const body = Buffer.from(JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'x'.repeat(900) } }));
  const pool =
    upstreamUrl === undefined
      ? undefined
      : new Pool(upstreamUrl, { connect: { ca: cert.toString() }, connections: 64 });
  const server = createHttps({ key, cert }, (req, res) => {
    if (pool === undefined) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    void pool.request({ path: req.url ?? '/', method: 'GET', headers: { authorization: 'Bearer sa' } }).then(
      async (answer) => {
        const data = Buffer.from(await answer.body.arrayBuffer());
        res.writeHead(answer.statusCode, { 'content-type': 'application/json', 'content-length': data.length });
        res.end(data);
      },
      () => {
        res.statusCode = 502;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
  void role;
}

function forkChild(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), args, { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve) => child.once('message', (url) => resolve({ url: String(url), child })));
}

async function proxyFloor(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lat-proxy-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'].concat([
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]),
    { stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'));
  const upstream = await forkChild(['--child', 'upstream', dir]);
  const proxy = await forkChild(['--child', 'proxy', dir, upstream.url]);
  const upstreamUrl = upstream.url;
  const proxyUrl = proxy.url;
  let cpuBefore = 0;
  let started = 0;
  const load = (origin: string) =>
    runLoad({
      onWindowStart: () => {
        started = performance.now();
        cpuBefore = cpuSecondsOf(proxy.child.pid ?? 0);
      },
      origin,
      path: '/pod',
      headers: { authorization: 'Bearer x' },
      ca: cert.toString(),
      concurrency: 1,
      warmupMs: 500,
      durationMs: 2000,
      maxRequests: 200_000,
    });
  const direct = await load(upstreamUrl);
  const proxied = await load(proxyUrl);
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = ((cpuSecondsOf(proxy.child.pid ?? 0) - cpuBefore) * 1000) / (proxied.requestsPerSecond * seconds);
  const fmt = (r: Awaited<ReturnType<typeof load>>) =>
    `${Math.round(r.requestsPerSecond)} req/s p50 ${r.p50Ms} p99 ${r.p99Ms}`;
  console.log(`proxy: direct c=1 ${fmt(direct)}; bare https→undici proxy c=1 ${fmt(proxied)}`);
  console.log(
    `proxy: added p50 ${(proxied.p50Ms - direct.p50Ms).toFixed(3)} ms, p99 ${(proxied.p99Ms - direct.p99Ms).toFixed(3)} ms; proxy CPU ${cpuMs.toFixed(3)} ms/request`,
  );
  proxy.child.kill();
  upstream.child.kill();
  rmSync(dir, { recursive: true, force: true });
}

if (argv[0] === '--child') {
  await proxyChild(argv[1] ?? '', argv[2] ?? '', argv[3]);
} else {
  if (wanted('sqlite')) {
    sqliteFloor('bare');
    sqliteFloor('audit');
  }
  if (wanted('thread')) await threadFloor();
  if (wanted('proxy')) await proxyFloor();
  process.exit(0);
}
