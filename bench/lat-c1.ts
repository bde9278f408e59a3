// A short loop for the 1-concurrent hot path (issue #13): the fast upstream, one gateway child (sources
// through tsx, as the fast cell runs it), direct vs gateway at c=1 and c=32 with the gateway's CPU per
// request, and with `--profile` an inspector CPU profile of the gateway at c=1 (top self / inclusive).
// Faster to iterate with than `npm run bench -- --quick`, which stays the reference.
// Usage: node --conditions=source --import tsx bench/lat-c1.ts [--profile] [--seconds 3] [--c 1,32]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { cpuSecondsOf, startChild, type Child } from './children.js';
import { fastPodPath } from './fast-upstream.js';
import { runLoad, type LoadResult } from './load.js';
import { inclusiveFrames } from './profile-frames.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
import { summarizeCpuProfile, type CpuProfile } from './stats.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const index = argv.indexOf(name);
  return index >= 0 ? (argv[index + 1] ?? fallback) : fallback;
};
const seconds = Number(option('--seconds', '3'));
const levels = option('--c', '1,32').split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'lat-c1-'));
const children: Child<unknown>[] = [];
const headers = (token: string) => ({
  authorization: `Bearer ${token}`,
  accept: 'application/json',
  'accept-encoding': 'gzip',
});

/** CPU seconds per thread (by thread name) of a process: main, the audit writer, GC and libuv helpers. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : `${name}:${tid}`;
      out.set(key, (out.get(key) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread exited
    }
  }
  return out;
}

async function load(
  origin: string,
  ca: string,
  token: string,
  concurrency: number,
  pid?: number,
  onStart?: () => void,
) {
  let cpuBefore = 0;
  let started = 0;
  let threadsBefore = new Map<string, number>();
  const result: LoadResult = await runLoad({
    origin,
    path: fastPodPath,
    headers: headers(token),
    ca,
    concurrency,
    // `--h2`: the gateway over HTTP/2 (one connection, as kubectl); the direct upstream stays HTTP/1.1.
    h2: pid !== undefined && argv.includes('--h2'),
    warmupMs: 500,
    durationMs: seconds * 1000,
    maxRequests: 500_000,
    onWindowStart: () => {
      started = performance.now();
      if (pid !== undefined) cpuBefore = cpuSecondsOf(pid);
      if (pid !== undefined) threadsBefore = threadCpu(pid);
      onStart?.();
    },
  });
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs =
    pid === undefined ? undefined : ((cpuSecondsOf(pid) - cpuBefore) * 1000) / (result.requestsPerSecond * elapsed);
  const perThread =
    pid === undefined
      ? ''
      : [...threadCpu(pid)]
          .map(
            ([name, seconds]) =>
              [
                name,
                ((seconds - (threadsBefore.get(name) ?? 0)) * 1000) / (result.requestsPerSecond * elapsed),
              ] as const,
          )
          .filter(([, ms]) => ms >= 0.02)
          .map(([name, ms]) => `${name} ${ms.toFixed(3)}`)
          .join(', ');
  return { ...result, cpuMs, perThread };
}

async function main(): Promise<void> {
  const upstream = await startChild<UpstreamInfo>(
    'upstream',
    { dir: join(work, 'world'), heldObjects: 100 },
    { logFile: join(work, 'upstream.out') },
  );
  children.push(upstream as Child<unknown>);
  const ca = readFileSync(upstream.info.gatewayCaFile, 'utf8');
  const token = await upstream.call<string>('token', 'ci-deployer');
  const fast = await startChild<{ url: string }>(
    'fast-upstream',
    {
      certFile: upstream.info.gatewayCertFile,
      keyFile: upstream.info.gatewayKeyFile,
      simUrl: upstream.info.simUrl,
      simCaFile: upstream.info.simCaFile,
    },
    { logFile: join(work, 'fast.out') },
  );
  children.push(fast as Child<unknown>);
  const document = parse(readFileSync(upstream.info.configPath, 'utf8')) as {
    clusters: { server: string; caFile: string }[];
  };
  const cluster = document.clusters[0];
  if (cluster === undefined) throw new Error('no cluster');
  cluster.server = fast.info.url;
  cluster.caFile = upstream.info.gatewayCaFile;
  const configPath = join(work, 'world', 'hoopgate-fast.yaml');
  writeFileSync(configPath, stringify(document));
  // `--env NAME=1,NAME2=1`: a second gateway with these environment variables, measured beside the first.
  const variants = ['', ...(argv.includes('--env') ? option('--env', '').split(';') : [])];
  const gateways: { name: string; gw: Child<GatewayInfo> }[] = [];
  for (const variant of variants) {
    const env: Record<string, string> = Object.fromEntries(
      variant
        .split(',')
        .filter(Boolean)
        .map((kv) => kv.split('=') as [string, string]),
    );
    const saved = { ...process.env };
    Object.assign(process.env, env);
    // `BASE=/path`: that checkout's bench/children.ts starts this gateway (its sources, before a change).
    const base = env['BASE'];
    const starter =
      base === undefined
        ? startChild
        : ((await import(`${base}/bench/children.ts`)) as { startChild: typeof startChild }).startChild;
    const gw = await starter<GatewayInfo>(
      'gateway',
      { configPath, replicaId: `lat${gateways.length}`, logFile: join(work, `gateway${gateways.length}.jsonl`) },
      {
        logFile: join(work, `gateway${gateways.length}.out`),
        // `ARGV=--flag+--other`: node/V8 flags for this gateway.
        ...(env['ARGV'] === undefined ? {} : { execArgv: env['ARGV'].split('+') }),
      },
    );
    process.env = saved;
    children.push(gw as Child<unknown>);
    gateways.push({ name: variant === '' ? 'base' : variant, gw });
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const { gw } of gateways) await load(gw.info.url, ca, token, 32); // warm-up: tsx compiles, the JIT settles
  const gw = gateways[gateways.length - 1]!.gw;
  const fmt = (r: Awaited<ReturnType<typeof load>>) =>
    `${Math.round(r.requestsPerSecond)} req/s p50 ${r.p50Ms} p99 ${r.p99Ms}${r.cpuMs === undefined ? '' : ` cpu ${r.cpuMs.toFixed(3)} ms/req [${r.perThread}]`}`;
  const rounds = Number(option('--rounds', '1'));
  for (let round = 0; round < rounds; round++)
    for (const c of levels) {
      const direct = await load(fast.info.url, ca, upstream.info.saToken, c);
      // Odd rounds measure the gateways in reverse order, so neither always goes first after `direct`.
      for (const { name, gw: g } of round % 2 === 0 ? gateways : [...gateways].reverse()) {
        const through = await load(g.info.url, ca, token, c, g.pid);
        const added = `added p50 ${(through.p50Ms - direct.p50Ms).toFixed(3)} p99 ${(through.p99Ms - direct.p99Ms).toFixed(3)}`;
        console.log(`c=${c} ${name.padEnd(12)} direct ${fmt(direct)} | gateway ${fmt(through)} | ${added}`);
      }
    }
  if (argv.includes('--strace')) {
    // Syscalls per request at c=1 (every thread of the gateway), from strace -c.
    const out = join(tmpdir(), `lat-strace-${Date.now()}.txt`);
    const raw = argv.includes('--raw');
    const tracer = spawn('strace', ['-f', '-tt', ...(raw ? [] : ['-c']), '-o', out, '-p', String(gw.pid)], {
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const r = await load(gw.info.url, ca, token, 1, gw.pid);
    tracer.kill('SIGINT');
    await new Promise((resolve) => tracer.once('exit', resolve));
    const requests = Math.round(r.requestsPerSecond * (r.windowMs / 1000 + 0.5));
    console.log(`strace c=1: ~${requests} requests (window + warm-up); ${out}`);
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
      if (m !== null) console.log(`  ${(Number(m[1]) / requests).toFixed(2).padStart(7)} /request  ${m[2]}`);
    }
  }
  if (argv.includes('--profile')) {
    const file = join(tmpdir(), `lat-c1-${Date.now()}.cpuprofile`);
    const r = await load(
      gw.info.url,
      ca,
      token,
      Number(option('--profile-c', '1')),
      gw.pid,
      () => void gw.call('profile-start'),
    );
    await gw.call('profile-stop', file);
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const root = `${process.cwd()}/`;
    const self = summarizeCpuProfile(profile, 30, root, ['dispatch']);
    console.log(`profile c=1 (${fmt(r)}), ${file}: busy ${self.busyMs} ms idle ${self.idleMs} ms`);
    for (const f of self.frames)
      console.log(`  self ${String(f.selfMs).padStart(7)} ${String(f.selfPercent).padStart(5)}%  ${f.frame}`);
    for (const f of inclusiveFrames(profile, 40, root, ['dispatch']))
      console.log(`  incl ${String(f.inclusiveMs).padStart(7)} ${String(f.inclusivePercent).padStart(5)}%  ${f.frame}`);
  }
}

try {
  await main();
} finally {
  for (const child of children.reverse()) await child.stop().catch(() => undefined);
  if (!argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
process.exit(0);
