// The fast-upstream cell of `npm run bench` (issue #13): direct vs nginx vs hoopgate against an
// upstream that is not the bottleneck (fast-upstream.ts), at 1 and 32 concurrent small Pod GETs, with
// the gateway's CPU per request and a CPU profile (self and inclusive frames) at 32 concurrent. Beside
// them the Node floors (node-floor.ts): what a minimal Node TLS proxy reaches here at all, without and
// with a token cache and a durable write per request, so the gap splits into Node/TLS, the durable
// write and hoopgate's own work.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Child } from './children.js';
import { fastPodPath } from './fast-upstream.js';
import type { LoadResult } from './load.js';
import { startNginx, type Nginx } from './nginx.js';
import { inclusiveFrames, type InclusiveFrame } from './profile-frames.js';
import type { NodeFloorOptions } from './node-floor.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
import {
  markdownTable,
  round,
  summarizeCpuProfile,
  verdict,
  type CpuProfile,
  type ProfileFrame,
  type Verdict,
} from './stats.js';

type Measured = LoadResult & { cpuCores: Record<string, number> };

export interface FastCellDeps {
  work: string;
  repoRoot: string;
  upstream: UpstreamInfo;
  gatewayCa: string;
  deployerToken: string;
  concurrencies: readonly number[];
  log(message: string): void;
  startChild(role: 'fast-upstream' | 'node-floor', input: unknown): Promise<Child<{ url: string }>>;
  startGateway(name: string, upstream: UpstreamInfo): Promise<Child<GatewayInfo>>;
  measure(
    label: string,
    origin: string,
    ca: string,
    token: string,
    concurrency: number,
    pids: Record<string, number>,
    path: string,
    h2?: boolean,
  ): Promise<Measured>;
  nginxPids(master: number): Record<string, number>;
  /** Profiles a gateway child for one load window at `concurrency` (inspector CPU profile, as `--cpu-prof` writes). */
  profile(gateway: Child<GatewayInfo>, file: string, concurrency: number, path: string): Promise<LoadResult>;
}

/** The Node floors: a minimal Node proxy, then the same with a token cache and a durable insert per request. */
export const floorNames = {
  plain: 'Node floor',
  durable: 'Node floor + token cache + durable insert',
} as const;

/** One Node floor at one concurrency, over HTTP/1.1 or HTTP/2 (one connection). */
export interface FloorMeasure {
  variant: keyof typeof floorNames;
  h2: boolean;
  measured: Measured;
  /** The floor process's CPU per request (ms). */
  cpuMsPerRequest: number;
}

export interface FastRow {
  concurrency: number;
  direct: Measured;
  gateway: Measured;
  /** The same load as HTTP/2 streams of one connection (ALPN h2, as client-go does). */
  gatewayH2?: Measured;
  gatewayH2CpuMsPerRequest?: number;
  nginx?: Measured;
  /** Gateway process CPU per request (ms), from its /proc stat over the window. */
  gatewayCpuMsPerRequest: number;
  nginxCpuMsPerRequest?: number;
  floors?: FloorMeasure[];
}

export interface FastFigures {
  upstream: string;
  nginx: string;
  /** How the Node floors were set up (absent: not measured). */
  floors?: string;
  rows: FastRow[];
  profile?: {
    concurrency: number;
    requestsPerSecond: number;
    busyMs: number;
    idleMs: number;
    self: ProfileFrame[];
    inclusive: InclusiveFrame[];
  };
}

const inspectorFrames = ['dispatch'];

/** The demo config with its cluster pointed at the fast upstream (TLS: the gateway's own test CA). */
function fastConfig(upstream: UpstreamInfo, fastUrl: string, file: string): string {
  const document = parse(readFileSync(upstream.configPath, 'utf8')) as {
    clusters: { server: string; caFile: string }[];
  };
  const cluster = document.clusters[0];
  if (cluster === undefined) throw new Error('bench: the demo config has no cluster');
  cluster.server = fastUrl;
  cluster.caFile = upstream.gatewayCaFile;
  writeFileSync(file, stringify(document));
  return file;
}

export async function benchFastCell(deps: FastCellDeps): Promise<FastFigures> {
  const { upstream, gatewayCa, log } = deps;
  const fast = await deps.startChild('fast-upstream', {
    certFile: upstream.gatewayCertFile,
    keyFile: upstream.gatewayKeyFile,
    simUrl: upstream.simUrl,
    simCaFile: upstream.simCaFile,
  });
  const fastUpstream: UpstreamInfo = {
    ...upstream,
    configPath: fastConfig(upstream, fast.info.url, join(deps.work, 'world', 'hoopgate-fast.yaml')),
  };
  const gateway = await deps.startGateway('fast', fastUpstream);
  const floors = await startFloors(deps, fast.info.url);
  let nginx: Nginx | undefined;
  try {
    nginx = await startNginx({
      dir: join(deps.work, 'nginx-fast'),
      upstreamUrl: fast.info.url,
      upstreamCaFile: upstream.gatewayCaFile,
      certFile: upstream.gatewayCertFile,
      keyFile: upstream.gatewayKeyFile,
    });
  } catch (error) {
    log(`(fast) nginx is installed but did not start, skipping: ${(error as Error).message}`);
  }
  // A fresh gateway compiles its sources (tsx) and JITs its hot path during its first few thousand
  // requests: without this the first row (c=1) measured start-up, not the steady state (#13).
  await deps.measure('(fast) warm-up', gateway.info.url, gatewayCa, deps.deployerToken, 32, {}, fastPodPath);
  const rows: FastRow[] = [];
  const perRequest = (m: Measured, name: string) =>
    round(((m.cpuCores[name] ?? 0) * 1000) / Math.max(1, m.requestsPerSecond), 3);
  try {
    for (const concurrency of deps.concurrencies) {
      const direct = await deps.measure(
        '(fast) direct ',
        fast.info.url,
        gatewayCa,
        upstream.saToken,
        concurrency,
        { upstream: fast.pid },
        fastPodPath,
      );
      const through = await deps.measure(
        '(fast) gateway',
        gateway.info.url,
        gatewayCa,
        deps.deployerToken,
        concurrency,
        { gateway: gateway.pid, upstream: fast.pid },
        fastPodPath,
      );
      const throughH2 = await deps.measure(
        '(fast) gw h2  ',
        gateway.info.url,
        gatewayCa,
        deps.deployerToken,
        concurrency,
        { gateway: gateway.pid, upstream: fast.pid },
        fastPodPath,
        true,
      );
      const viaNginx =
        nginx === undefined
          ? undefined
          : await deps.measure(
              '(fast) nginx  ',
              nginx.url,
              gatewayCa,
              upstream.saToken,
              concurrency,
              { ...deps.nginxPids(nginx.pid), upstream: fast.pid },
              fastPodPath,
            );
      const floorMeasures: FloorMeasure[] = [];
      for (const floor of floors) {
        for (const h2 of [false, true]) {
          const measured = await deps.measure(
            `(fast) ${floor.variant === 'plain' ? 'floor' : 'floor+db'}${h2 ? ' h2' : ''}`,
            floor.child.info.url,
            gatewayCa,
            floor.token,
            concurrency,
            { floor: floor.child.pid, upstream: fast.pid },
            fastPodPath,
            h2,
          );
          floorMeasures.push({ variant: floor.variant, h2, measured, cpuMsPerRequest: perRequest(measured, 'floor') });
        }
      }
      rows.push({
        concurrency,
        direct,
        gateway: through,
        gatewayCpuMsPerRequest: perRequest(through, 'gateway'),
        gatewayH2: throughH2,
        gatewayH2CpuMsPerRequest: perRequest(throughH2, 'gateway'),
        ...(viaNginx === undefined ? {} : { nginx: viaNginx, nginxCpuMsPerRequest: perRequest(viaNginx, 'nginx') }),
        floors: floorMeasures,
      });
    }
    const nginxSetup =
      nginx === undefined
        ? 'not installed: skipped'
        : `${nginx.version}, 1 worker, TLS in, keep-alive TLS to the fast upstream`;
    await nginx?.stop();
    nginx = undefined;
    let profile: FastFigures['profile'];
    if (deps.concurrencies.includes(32)) {
      const file = join(deps.work, 'gateway-fast-c32.cpuprofile');
      const load = await deps.profile(gateway, file, 32, fastPodPath);
      const cpu = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
      const self = summarizeCpuProfile(cpu, 15, `${deps.repoRoot}/`, inspectorFrames);
      profile = {
        concurrency: 32,
        requestsPerSecond: load.requestsPerSecond,
        busyMs: self.busyMs,
        idleMs: self.idleMs,
        self: self.frames,
        inclusive: inclusiveFrames(cpu, 15, `${deps.repoRoot}/`, inspectorFrames),
      };
      log(
        `(fast) profile at 32: ${load.requestsPerSecond} req/s; top self ${self.frames
          .slice(0, 4)
          .map((f) => `${f.frame} ${f.selfPercent}%`)
          .join(', ')}`,
      );
    }
    return {
      upstream:
        'bench/fast-upstream.ts: fixed Pod from memory over HTTPS (keep-alive), everything else forwarded to the simulator',
      nginx: nginxSetup,
      floors:
        'bench/node-floor.ts, Node ' +
        `${process.version}, one process: TLS in (HTTP/1.1 and h2 by ALPN), undici Pool with keep-alive TLS to the fast upstream, ` +
        'status and headers copied, a small body read whole and sent with its length; no auth, policy, masking, audit or logging. ' +
        "The second adds the bearer token looked up in a cache (SHA-256 digest → identity; the reader's OIDC token, the ServiceAccount token sent upstream) " +
        'and one SQLite insert per request committed (WAL, synchronous=FULL, group commit on a worker thread) before forwarding',
      rows,
      ...(profile === undefined ? {} : { profile }),
    };
  } finally {
    await nginx?.stop();
    for (const floor of floors) await floor.child.stop();
    await gateway.stop();
    await fast.stop();
  }
}

/** Starts both Node floors in front of the fast upstream, each its own process (bench/servers.ts node-floor). */
async function startFloors(
  deps: FastCellDeps,
  fastUrl: string,
): Promise<{ variant: FloorMeasure['variant']; child: Child<{ url: string }>; token: string }[]> {
  const base: NodeFloorOptions = {
    certFile: deps.upstream.gatewayCertFile,
    keyFile: deps.upstream.gatewayKeyFile,
    upstreamUrl: fastUrl,
    upstreamCaFile: deps.upstream.gatewayCaFile,
    variant: 'plain',
  };
  const plain = await deps.startChild('node-floor', base);
  const durable = await deps.startChild('node-floor', {
    ...base,
    variant: 'durable',
    tokens: [deps.deployerToken],
    upstreamToken: deps.upstream.saToken,
    dbFile: join(deps.work, 'node-floor.db'),
  } satisfies NodeFloorOptions);
  return [
    // As nginx: the client's ServiceAccount token passed through.
    { variant: 'plain', child: plain, token: deps.upstream.saToken },
    // As the gateway: the reader's OIDC token in, the ServiceAccount token out.
    { variant: 'durable', child: durable, token: deps.deployerToken },
  ];
}

export function renderFastCell(f: FastFigures): string {
  const cores = (m: Measured, name: string) => (m.cpuCores[name] === undefined ? '–' : String(m.cpuCores[name]));
  const ratio = (m: Measured, d: Measured) => `${round(m.requestsPerSecond / Math.max(1, d.requestsPerSecond), 2)}×`;
  const added = (m: Measured, d: Measured, key: 'p50Ms' | 'p99Ms') => round(m[key] - d[key], 3);
  /** One row through a proxy (nginx, the gateway over HTTP/1.1 or HTTP/2), against the same concurrency's direct row. */
  const proxied = (
    row: FastFigures['rows'][number],
    path: string,
    m: Measured,
    cpuMsPerRequest: number | undefined,
    proxy: string,
  ) => [
    row.concurrency,
    path,
    m.requestsPerSecond,
    ratio(m, row.direct),
    m.p50Ms,
    m.p99Ms,
    added(m, row.direct, 'p50Ms'),
    added(m, row.direct, 'p99Ms'),
    cpuMsPerRequest ?? '',
    `${cores(m, proxy)} / ${cores(m, 'upstream')} / ${cores(m, 'loadgen')} / ${cores(m, 'others')}`,
  ];
  const lines: string[] = [
    `Fast upstream (${f.upstream}); small GET \`${fastPodPath}\`, the reader's OIDC token through the gateway; nginx: ${f.nginx}.`,
    '',
    markdownTable(
      [
        'concurrency',
        'path',
        'req/s',
        'vs direct',
        'p50 ms',
        'p99 ms',
        'added p50 ms',
        'added p99 ms',
        'proxy CPU ms/request',
        'CPU cores: proxy / upstream / loadgen / others',
      ],
      f.rows.flatMap((row) => [
        [
          row.concurrency,
          'direct',
          row.direct.requestsPerSecond,
          '1×',
          row.direct.p50Ms,
          row.direct.p99Ms,
          '',
          '',
          '',
          `– / ${cores(row.direct, 'upstream')} / ${cores(row.direct, 'loadgen')} / ${cores(row.direct, 'others')}`,
        ],
        ...(row.nginx === undefined
          ? []
          : [proxied(row, 'through nginx', row.nginx, row.nginxCpuMsPerRequest, 'nginx')]),
        proxied(row, 'through hoopgate', row.gateway, row.gatewayCpuMsPerRequest, 'gateway'),
        ...(row.gatewayH2 === undefined
          ? []
          : [
              proxied(
                row,
                'through hoopgate, HTTP/2 (1 connection)',
                row.gatewayH2,
                row.gatewayH2CpuMsPerRequest,
                'gateway',
              ),
            ]),
        ...(row.floors ?? []).map((floor) =>
          proxied(
            row,
            `through the ${floorNames[floor.variant]}${floor.h2 ? ', HTTP/2 (1 connection)' : ''}`,
            floor.measured,
            floor.cpuMsPerRequest,
            'floor',
          ),
        ),
      ]),
    ),
  ];
  if (f.floors !== undefined) lines.push('', `Node floors: ${f.floors}.`);
  const verdictText = fastVerdict(f);
  if (verdictText !== '') lines.push('', verdictText);
  if (f.profile !== undefined) {
    const p = f.profile;
    lines.push(
      '',
      `hoopgate CPU profile at ${p.concurrency} concurrent against the fast upstream (${p.requestsPerSecond} req/s while profiled; event loop busy ${p.busyMs} ms, idle ${p.idleMs} ms):`,
      '',
      markdownTable(
        ['top self frames', 'self ms', 'self %'],
        p.self.slice(0, 12).map((x) => [x.frame, x.selfMs, x.selfPercent]),
      ),
      '',
      markdownTable(
        ['top inclusive frames', 'inclusive ms', 'inclusive %'],
        p.inclusive.slice(0, 12).map((x) => [x.frame, x.inclusiveMs, x.inclusivePercent]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The #13 throughput target at 32 concurrent against the fast upstream, with the floors beside it (full bench's targets table). */
export function fastTarget(f: FastFigures): { target: string; measured: string; verdict: Verdict } | undefined {
  const row = f.rows.find((r) => r.concurrency === 32);
  if (row === undefined) return undefined;
  const floors = (row.floors ?? [])
    .filter((x) => !x.h2)
    .map((x) => `${floorNames[x.variant]} ${ratioOf(x.measured, row)}×`);
  const nginx = row.nginx === undefined ? [] : [`nginx ${ratioOf(row.nginx, row)}×`];
  const hoopgate = ratioOf(row.gateway, row);
  return {
    target: 'fast upstream: throughput ≥ 0.5× direct at 32 concurrent (same run: nginx and the Node floors)',
    measured: `${hoopgate}× (${[...nginx, ...floors].join('; ')})`,
    verdict: verdict(hoopgate, 0.5, 'atLeast'),
  };
}

function signed(value: number): string {
  return value < 0 ? String(value) : `+${value}`;
}

function ratioOf(m: LoadResult, row: FastRow): number {
  return round(m.requestsPerSecond / Math.max(1, row.direct.requestsPerSecond), 2);
}

/**
 * The verdict paragraph under the fast cell's table: the #13 targets (≥ 0.5× direct at 32 concurrent,
 * added p50/p99 no worse than nginx's; added p50 ≤ 0.5 ms at 1) for hoopgate, with nginx and the Node
 * floors of the same run beside them, so the reader sees which targets a Node proxy can meet here at all.
 */
export function fastVerdict(f: FastFigures): string {
  const at32 = f.rows.find((r) => r.concurrency === 32);
  if (at32 === undefined) return '';
  const added = (m: LoadResult, row: FastRow) =>
    `${signed(round(m.p50Ms - row.direct.p50Ms, 2))} / ${signed(round(m.p99Ms - row.direct.p99Ms, 2))} ms`;
  const plainAt = (row: FastRow, variant: FloorMeasure['variant']) =>
    row.floors?.find((x) => x.variant === variant && !x.h2);
  const hoopgate = ratioOf(at32.gateway, at32);
  const lines = [
    `**Verdict (#13, 32 concurrent, target ≥ 0.5× direct):** hoopgate ${hoopgate}× (${verdict(hoopgate, 0.5, 'atLeast')}), added p50 / p99 ${added(at32.gateway, at32)}, ${at32.gatewayCpuMsPerRequest} ms CPU per request.`,
  ];
  const beside: string[] = [];
  if (at32.nginx !== undefined)
    beside.push(
      `nginx ${ratioOf(at32.nginx, at32)}× (${added(at32.nginx, at32)}, ${at32.nginxCpuMsPerRequest ?? '–'} ms CPU per request)`,
    );
  for (const variant of ['plain', 'durable'] as const) {
    const floor = plainAt(at32, variant);
    if (floor === undefined) continue;
    const r = ratioOf(floor.measured, at32);
    beside.push(
      `the ${floorNames[variant]} ${r}× (${r >= 0.5 ? 'meets' : 'misses'} 0.5×; ${added(floor.measured, at32)}, ${floor.cpuMsPerRequest} ms CPU per request)`,
    );
  }
  if (beside.length > 0) lines.push(`- Same run, same upstream: ${beside.join('; ')}.`);
  const floor = plainAt(at32, 'plain');
  const durable = plainAt(at32, 'durable');
  if (floor !== undefined) {
    const share = (m: LoadResult) =>
      Math.round((100 * m.requestsPerSecond) / Math.max(1, floor.measured.requestsPerSecond));
    lines.push(
      `- Share of the Node floor's throughput: hoopgate ${share(at32.gateway)}%${durable === undefined ? '' : `, the floor + token cache + durable insert ${share(durable.measured)}%`}; ` +
        `CPU per request: the floor ${floor.cpuMsPerRequest} ms${durable === undefined ? '' : `, with token and durable insert ${durable.cpuMsPerRequest} ms`}, hoopgate ${at32.gatewayCpuMsPerRequest} ms.`,
    );
  }
  const at1 = f.rows.find((r) => r.concurrency === 1);
  if (at1 !== undefined) {
    const p50 = (m: LoadResult) => round(m.p50Ms - at1.direct.p50Ms, 3);
    const parts = [`hoopgate ${signed(p50(at1.gateway))} ms (${verdict(p50(at1.gateway), 0.5, 'atMost')})`];
    if (at1.nginx !== undefined) parts.push(`nginx ${signed(p50(at1.nginx))} ms`);
    for (const variant of ['plain', 'durable'] as const) {
      const x = plainAt(at1, variant);
      if (x !== undefined) parts.push(`${floorNames[variant]} ${signed(p50(x.measured))} ms`);
    }
    lines.push(`- 1 concurrent, target added p50 ≤ 0.5 ms: ${parts.join('; ')}.`);
  }
  return lines.join('\n');
}
