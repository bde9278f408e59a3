// The fast-upstream cell of `npm run bench` (issue #13): direct vs nginx vs hoopgate against an
// upstream that is not the bottleneck (fast-upstream.ts), at 1 and 32 concurrent small Pod GETs, with
// the gateway's CPU per request and a CPU profile (self and inclusive frames) at 32 concurrent.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Child } from './children.js';
import { fastPodPath } from './fast-upstream.js';
import type { LoadResult } from './load.js';
import { startNginx, type Nginx } from './nginx.js';
import { inclusiveFrames, type InclusiveFrame } from './profile-frames.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
import { markdownTable, round, summarizeCpuProfile, type CpuProfile, type ProfileFrame } from './stats.js';

type Measured = LoadResult & { cpuCores: Record<string, number> };

export interface FastCellDeps {
  work: string;
  repoRoot: string;
  upstream: UpstreamInfo;
  gatewayCa: string;
  deployerToken: string;
  concurrencies: readonly number[];
  log(message: string): void;
  startChild(role: 'fast-upstream', input: unknown): Promise<Child<{ url: string }>>;
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
}

export interface FastFigures {
  upstream: string;
  nginx: string;
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
      rows.push({
        concurrency,
        direct,
        gateway: through,
        gatewayCpuMsPerRequest: perRequest(through, 'gateway'),
        gatewayH2: throughH2,
        gatewayH2CpuMsPerRequest: perRequest(throughH2, 'gateway'),
        ...(viaNginx === undefined ? {} : { nginx: viaNginx, nginxCpuMsPerRequest: perRequest(viaNginx, 'nginx') }),
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
      rows,
      ...(profile === undefined ? {} : { profile }),
    };
  } finally {
    await nginx?.stop();
    await gateway.stop();
    await fast.stop();
  }
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
  const lines = [
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
      ]),
    ),
  ];
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
