// The hostile cell of `npm run bench` (issue #12): what unauthenticated callers cost. `hoopgate demo`
// (gateway + simulated API server + local IdP + embedded SQLite store, one process) runs as a child;
// this process sends 5,000 unauthenticated requests with 20 KB random paths, then opens 100
// unauthenticated connections that declare a 3 MiB body, send its first MiB in 64 KiB writes (as a
// client honouring backpressure does; each stops once answered) and stall in the middle. Measured on the demo process: RSS growth
// (target ≤ 20 MB), /hoop/metrics growth (≤ 64 KB), audit store growth per refusal (≤ 2 KB).
// RSS is sampled after the warm-up, half-way and at the end of the requests: growth over the second
// half (the plateau) tells a fixed cost from a leak; HOOP_BENCH_HOSTILE_N=20000 runs 4× as long.
// bench/memory-probe.mjs, preloaded into the child, splits its memory: V8 heaps (main and the SQLite
// writer thread's), external, ArrayBuffers (the rest of RssAnon is native: TLS, malloc, SQLite).
// The requests are paced under limits.perAddress (200/s by default) so that they reach the refusal
// path instead of the 429 of the per-address limit; the 429s, if any, are counted separately.
// Run: node --conditions=source --import tsx bench/hostile.ts  (HOOP_BENCH_HOSTILE_N, HOOP_BENCH_HOSTILE_RPS;
// MALLOC_ARENA_MAX and the like pass through to the child)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';

const bin = fileURLToPath(new URL('../packages/gateway/bin/hoopgate.js', import.meta.url));
const probe = new URL('./memory-probe.mjs', import.meta.url).href;
const total = Number(process.env['HOOP_BENCH_HOSTILE_N'] ?? 5000);
const ratePerSecond = Number(process.env['HOOP_BENCH_HOSTILE_RPS'] ?? 180);
const stalledBodies = 100;
const bodyBytes = 3 * 1024 * 1024;
/** What a stalled connection sends of its body before it stalls (unless answered first). */
const stallAfterBytes = 1024 * 1024;
const pathBytes = 20 * 1024;
/** How long the stalled connections are given to be answered, from their headers. */
const stallWindowMs = 5000;

/** One memory sample of the demo process (MB): /proc's RSS split, and V8's own figures. */
export interface MemorySample {
  rss: number;
  rssAnon: number;
  rssFile: number;
  threads: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** Worker threads (the SQLite writer) and their V8 heaps, which memoryUsage() leaves out. */
  workers: number;
  workerHeapTotal: number;
  workerHeapUsed: number;
}

export interface HostileFigures {
  requests: number;
  statuses: Record<string, number>;
  refusalsRecorded: number;
  memory: {
    baseline: MemorySample;
    /** After each quarter of the requests. */
    quarters: MemorySample[];
    withStalledBodies: MemorySample;
    afterStalledClosed: MemorySample;
    /**
     * After a forced full garbage collection (main thread and workers) at the end: what the heaps still
     * hold. Its RSS includes the workers' heap snapshots the probe read to collect them: compare heaps.
     */
    afterGc: MemorySample;
  };
  rssMb: { baseline: number; afterRequests: number; withStalledBodies: number; afterStalledClosed: number };
  rssGrowthMb: number;
  /** RSS growth over the second half of the requests: ~0 when the cost is fixed, not per request. */
  rssPlateauMb: number;
  metricsBytes: { before: number; after: number; growth: number };
  storeBytes: { before: number; after: number; perRefusal: number };
  stalled: {
    connections: number;
    bodyBytesDeclared: number;
    answered: Record<string, number>;
    /** ms from a connection's headers to its answer, the slowest of the 100. */
    slowestAnswerMs: number;
    /** Connections the gateway had closed by the end of the window. */
    closedByGateway: number;
    /** Connections whose TLS handshake completed within the window (a busy machine may lag). */
    connected: number;
    /** Socket errors seen by this client, by code (a reset before the answer was read shows here). */
    errors: Record<string, number>;
  };
  verdicts: { rss: 'PASS' | 'FAIL'; metrics: 'PASS' | 'FAIL'; store: 'PASS' | 'FAIL' };
}

/** The targets as rows of the bench's target table. */
export function hostileTargets(
  h: HostileFigures,
): { target: string; measured: string; value: number; limit: number }[] {
  return [
    {
      target: `hostile: RSS growth ≤ 20 MB (${h.requests.toLocaleString('en-US')} unauthenticated 20 KB paths, then ${h.stalled.connections} stalled 3 MiB bodies)`,
      measured: `${h.rssGrowthMb} MB (${h.rssMb.baseline} → ${h.rssMb.afterRequests} → ${h.rssMb.withStalledBodies} MB; second half of the requests ${h.rssPlateauMb} MB)`,
      value: h.rssGrowthMb,
      limit: 20,
    },
    {
      target: 'hostile: /hoop/metrics growth ≤ 64 KB',
      measured: `${h.metricsBytes.growth} B`,
      value: h.metricsBytes.growth,
      limit: 64 * 1024,
    },
    {
      target: 'hostile: audit store growth ≤ 2 KB per refusal',
      measured: `${h.storeBytes.perRefusal} B (${h.refusalsRecorded} refusals recorded)`,
      value: h.storeBytes.perRefusal,
      limit: 2048,
    },
    {
      target: `hostile: ${h.stalled.connections} stalled unauthenticated bodies all answered 401 within ${stallWindowMs / 1000} s`,
      measured: `${h.stalled.answered['401'] ?? 0} answered 401, slowest ${h.stalled.slowestAnswerMs} ms, ${h.stalled.closedByGateway} closed by the gateway`,
      value: h.stalled.connections - (h.stalled.answered['401'] ?? 0),
      limit: 0,
    },
  ];
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
function randomName(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

function randomPath(i: number): string {
  const name = randomName(pathBytes);
  switch (i % 4) {
    case 0:
      return `/api/v1/namespaces/${name}/configmaps`;
    case 1:
      return `/api/v1/namespaces/staging/secrets/${name}`;
    case 2:
      return `/apis/${name}/v1/things`;
    default:
      return `/api/v1/namespaces/staging/pods/web-0/${name}?watch=true`;
  }
}

function storeBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => /\.db(-wal|-shm)?$/.test(f))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the child's memory probe for a sample (`gc`: after a full collection). */
function createProber(child: ChildProcess) {
  let nextId = 1;
  const waiting = new Map<number, (sample: MemorySample) => void>();
  child.on('message', (message: { probe?: string; id?: number } & MemorySample) => {
    if (message.probe !== 'memory' || message.id === undefined) return;
    const { probe: _probe, id, ...sample } = message;
    waiting.get(id)?.(sample);
    waiting.delete(id);
  });
  return (gc = false): Promise<MemorySample> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => reject(new Error('the memory probe did not answer in 30 s')), 30_000);
      waiting.set(id, (sample) => {
        clearTimeout(timer);
        resolve(sample);
      });
      child.send({ op: 'memory', id, gc });
    });
}

interface StalledResult {
  answered: Record<string, number>;
  slowestAnswerMs: number;
  closedByGateway: number;
  connected: number;
  errors: Record<string, number>;
  sockets: TLSSocket[];
}

/** Opens the stalled-body connections: each sends its body in 64 KiB writes until answered or a MiB is sent. */
function openStalled(origin: URL, ca: string): StalledResult {
  const result: StalledResult = {
    answered: {},
    slowestAnswerMs: 0,
    closedByGateway: 0,
    connected: 0,
    errors: {},
    sockets: [],
  };
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  for (let i = 0; i < stalledBodies; i += 1) {
    const socket = connect({ host: origin.hostname, port: Number(origin.port), ca, servername: 'localhost' });
    let sentAt = 0;
    let answered = false;
    let sent = 0;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = `${answered ? 'after' : 'before'} answer: ${error.code ?? error.message}`;
      result.errors[code] = (result.errors[code] ?? 0) + 1;
    });
    socket.once('data', (data: Buffer) => {
      answered = true;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(data.toString('latin1'))?.[1] ?? 'other';
      result.answered[status] = (result.answered[status] ?? 0) + 1;
      result.slowestAnswerMs = Math.max(result.slowestAnswerMs, Math.round(performance.now() - sentAt));
    });
    socket.once('end', () => (result.closedByGateway += 1));
    const pump = () => {
      while (!answered && !socket.destroyed && sent + chunk.length <= stallAfterBytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    socket.once('secureConnect', () => {
      result.connected += 1;
      sentAt = performance.now();
      socket.write(
        `POST /api/v1/namespaces/staging/configmaps HTTP/1.1\r\nHost: ${origin.host}\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
      );
      pump();
    });
    result.sockets.push(socket);
  }
  return result;
}

async function startDemo(dir: string): Promise<{ child: ChildProcess; origin: string; ca: string }> {
  const child = spawn(process.execPath, [bin, 'demo', '--port', '0', '--dir', '.'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${probe}`.trim() },
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const kubeconfigPath = join(dir, 'kubeconfig');
  for (let waited = 0; !(existsSync(kubeconfigPath) && out.includes('KUBECONFIG')); waited += 100) {
    if (waited > 60_000) throw new Error(`the demo did not start:\n${out}`);
    await sleep(100);
  }
  const kubeconfig = parseYaml(readFileSync(kubeconfigPath, 'utf8')) as {
    clusters: { cluster: { server: string } }[];
  };
  return {
    child,
    origin: kubeconfig.clusters[0]?.cluster.server ?? '',
    ca: readFileSync(join(dir, 'gateway-ca.pem'), 'utf8'),
  };
}

export async function benchHostile(): Promise<HostileFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-hostile-'));
  let child: ChildProcess | undefined;
  let stalled: StalledResult | undefined;
  try {
    const demo = await startDemo(dir);
    child = demo.child;
    const { origin, ca } = demo;
    const sample = createProber(child);
    const agent = new Agent({ connect: { ca }, connections: 16 });
    const statuses: Record<string, number> = {};
    const send = async (path: string) => {
      const response = await request(`${origin}${path}`, { dispatcher: agent, method: 'GET' });
      await response.body.dump();
      return response.statusCode;
    };
    const metricsSize = async () => {
      const response = await request(`${origin}/hoop/metrics`, { dispatcher: agent });
      return Buffer.byteLength(await response.body.text());
    };
    const paced = async (from: number, to: number, onStatus: (status: number) => void) => {
      const started = performance.now();
      let next = from;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (;;) {
            const i = next++;
            if (i >= to) return;
            const due = started + ((i - from) * 1000) / ratePerSecond;
            if (due > performance.now()) await sleep(due - performance.now());
            onStatus(await send(randomPath(i)));
          }
        }),
      );
    };
    const count = (status: number) => (statuses[status] = (statuses[status] ?? 0) + 1);

    // Warm-up: code paths compiled, the SQLite WAL at its working size, metrics families created.
    await paced(0, 500, () => undefined);
    await sleep(1000);
    const baseline = await sample();
    const metricsBefore = await metricsSize();
    const storeBefore = storeBytes(dir);

    // In quarters, a sample after each (a second's pause first: queued audit outcomes written).
    const quarters: MemorySample[] = [];
    for (let q = 0; q < 4; q += 1) {
      await paced(Math.floor((total * q) / 4), Math.floor((total * (q + 1)) / 4), count);
      await sleep(1000);
      quarters.push(await sample());
    }
    const [, halfway = baseline, , afterRequests = baseline] = quarters;
    const metricsAfter = await metricsSize();
    const storeAfter = storeBytes(dir);
    const refusalsRecorded = total - (statuses['429'] ?? 0);

    stalled = openStalled(new URL(origin), ca);
    await sleep(stallWindowMs);
    const withStalledBodies = await sample();
    for (const socket of stalled.sockets) socket.destroy();
    await sleep(2000);
    const afterStalledClosed = await sample();
    const afterGc = await sample(true);
    await agent.close();

    const rssGrowthMb = Math.round(Math.max(afterRequests.rss, withStalledBodies.rss) - baseline.rss);
    const perRefusal = Math.round((storeAfter - storeBefore) / Math.max(1, refusalsRecorded));
    return {
      requests: total,
      statuses,
      refusalsRecorded,
      memory: { baseline, quarters, withStalledBodies, afterStalledClosed, afterGc },
      rssMb: {
        baseline: baseline.rss,
        afterRequests: afterRequests.rss,
        withStalledBodies: withStalledBodies.rss,
        afterStalledClosed: afterStalledClosed.rss,
      },
      rssGrowthMb,
      rssPlateauMb: Math.round((afterRequests.rss - halfway.rss) * 10) / 10,
      metricsBytes: { before: metricsBefore, after: metricsAfter, growth: metricsAfter - metricsBefore },
      storeBytes: { before: storeBefore, after: storeAfter, perRefusal },
      stalled: {
        connections: stalledBodies,
        bodyBytesDeclared: bodyBytes,
        answered: stalled.answered,
        slowestAnswerMs: stalled.slowestAnswerMs,
        closedByGateway: stalled.closedByGateway,
        connected: stalled.connected,
        errors: stalled.errors,
      },
      verdicts: {
        rss: rssGrowthMb <= 20 ? 'PASS' : 'FAIL',
        metrics: metricsAfter - metricsBefore <= 64 * 1024 ? 'PASS' : 'FAIL',
        store: perRefusal <= 2048 ? 'PASS' : 'FAIL',
      },
    };
  } finally {
    for (const socket of stalled?.sockets ?? []) socket.destroy();
    if (child !== undefined) {
      const closed = new Promise((resolve) => child?.once('close', resolve));
      child.kill('SIGINT');
      await closed;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${JSON.stringify(await benchHostile(), null, 2)}\n`);
}
