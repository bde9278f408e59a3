// The hostile cell of `npm run bench` (issue #12): what unauthenticated callers cost. `hoopgate demo`
// (gateway + simulated API server + embedded SQLite store) runs as a separate process; this process
// sends 5,000 unauthenticated requests with 20 KB random paths, then holds 100 unauthenticated
// connections that stall in the middle of a 3 MiB body. Measured on the demo process: RSS growth
// (target ≤ 20 MB), /hoop/metrics growth (≤ 64 KB) and audit store growth per refusal (≤ 2 KB).
// The requests are paced under limits.perAddress (200/s by default) so that they reach the refusal
// path instead of the 429 of the per-address limit; the 429s, if any, are counted separately.
// Run: node --conditions=source --import tsx bench/hostile.ts  (HOOP_BENCH_HOSTILE_N, HOOP_BENCH_HOSTILE_RPS)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { memoryOf } from './children.js';

const bin = fileURLToPath(new URL('../packages/gateway/bin/hoopgate.js', import.meta.url));
const total = Number(process.env['HOOP_BENCH_HOSTILE_N'] ?? 5000);
const ratePerSecond = Number(process.env['HOOP_BENCH_HOSTILE_RPS'] ?? 180);
const stalledBodies = 100;
const bodyBytes = 3 * 1024 * 1024;
const pathBytes = 20 * 1024;

export interface HostileFigures {
  requests: number;
  statuses: Record<string, number>;
  refusalsRecorded: number;
  rssMb: { baseline: number; afterRequests: number; withStalledBodies: number; afterStalledClosed: number };
  rssGrowthMb: number;
  metricsBytes: { before: number; after: number; growth: number };
  storeBytes: { before: number; after: number; perRefusal: number };
  stalled: { connections: number; bodyBytesSentEach: number; answered: Record<string, number> };
  verdicts: { rss: 'PASS' | 'FAIL'; metrics: 'PASS' | 'FAIL'; store: 'PASS' | 'FAIL' };
}

/** The targets as rows of the bench's target table. */
export function hostileTargets(
  h: HostileFigures,
): { target: string; measured: string; value: number; limit: number }[] {
  return [
    {
      target: `hostile: RSS growth ≤ 20 MB (${h.requests.toLocaleString('en-US')} unauthenticated 20 KB paths, then ${h.stalled.connections} stalled 3 MiB bodies)`,
      measured: `${h.rssGrowthMb} MB (${h.rssMb.baseline} → ${h.rssMb.afterRequests} → ${h.rssMb.withStalledBodies} MB)`,
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

export async function benchHostile(): Promise<HostileFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-hostile-'));
  const child = spawn(process.execPath, [bin, 'demo', '--port', '0', '--dir', '.'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const sockets: TLSSocket[] = [];
  try {
    const kubeconfigPath = join(dir, 'kubeconfig');
    for (let waited = 0; !(existsSync(kubeconfigPath) && out.includes('KUBECONFIG')); waited += 100) {
      if (waited > 60_000) throw new Error(`the demo did not start:\n${out}`);
      await sleep(100);
    }
    const kubeconfig = parseYaml(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
    };
    const origin = kubeconfig.clusters[0]?.cluster.server ?? '';
    const ca = readFileSync(join(dir, 'gateway-ca.pem'), 'utf8');
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
    const paced = async (count: number, onStatus: (status: number) => void) => {
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (;;) {
            const i = next++;
            if (i >= count) return;
            const due = started + (i * 1000) / ratePerSecond;
            if (due > performance.now()) await sleep(due - performance.now());
            onStatus(await send(randomPath(i)));
          }
        }),
      );
    };

    // Warm-up: code paths compiled, the SQLite WAL at its working size, metrics families created.
    await paced(500, () => undefined);
    await sleep(1000);
    const rssBaseline = memoryOf(child.pid ?? 0).rssMb;
    const metricsBefore = await metricsSize();
    const storeBefore = storeBytes(dir);

    await paced(total, (status) => (statuses[status] = (statuses[status] ?? 0) + 1));
    await sleep(1000); // queued audit outcomes written
    const rssAfterRequests = memoryOf(child.pid ?? 0).rssMb;
    const metricsAfter = await metricsSize();
    const storeAfter = storeBytes(dir);
    const refusalsRecorded = total - (statuses['429'] ?? 0);

    // 100 unauthenticated connections stalling in the middle of a 3 MiB body.
    const url = new URL(origin);
    const body = Buffer.alloc(bodyBytes - 1024, 0x20);
    const answered: Record<string, number> = {};
    for (let i = 0; i < stalledBodies; i += 1) {
      const socket = connect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
      socket.on('error', () => undefined);
      socket.once('data', (chunk: Buffer) => {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? 'other';
        answered[status] = (answered[status] ?? 0) + 1;
      });
      socket.once('secureConnect', () => {
        socket.write(
          `POST /api/v1/namespaces/staging/configmaps HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
        );
        socket.write(body);
      });
      sockets.push(socket);
    }
    await sleep(5000);
    const rssWithStalled = memoryOf(child.pid ?? 0).rssMb;
    for (const socket of sockets) socket.destroy();
    await sleep(2000);
    const rssAfterStalled = memoryOf(child.pid ?? 0).rssMb;
    await agent.close();

    const rssGrowthMb = Math.max(rssAfterRequests, rssWithStalled) - rssBaseline;
    const perRefusal = Math.round((storeAfter - storeBefore) / Math.max(1, refusalsRecorded));
    return {
      requests: total,
      statuses,
      refusalsRecorded,
      rssMb: {
        baseline: rssBaseline,
        afterRequests: rssAfterRequests,
        withStalledBodies: rssWithStalled,
        afterStalledClosed: rssAfterStalled,
      },
      rssGrowthMb,
      metricsBytes: { before: metricsBefore, after: metricsAfter, growth: metricsAfter - metricsBefore },
      storeBytes: { before: storeBefore, after: storeAfter, perRefusal },
      stalled: { connections: stalledBodies, bodyBytesSentEach: body.length, answered },
      verdicts: {
        rss: rssGrowthMb <= 20 ? 'PASS' : 'FAIL',
        metrics: metricsAfter - metricsBefore <= 64 * 1024 ? 'PASS' : 'FAIL',
        store: perRefusal <= 2048 ? 'PASS' : 'FAIL',
      },
    };
  } finally {
    for (const socket of sockets) socket.destroy();
    child.kill('SIGINT');
    await new Promise((r) => child.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${JSON.stringify(await benchHostile(), null, 2)}\n`);
}
