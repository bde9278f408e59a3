// The audit at scale (issue #17): a store of N records, then `audit export`, `audit verify --full`,
// `audit verify --since-checkpoint` (after 1,000 new records) and `audit least-privilege`, each run
// as its own `hoopgate` process under /usr/bin/time -v for wall time and peak RSS; and the bytes one
// allowed GET and one refusal cost in the SQLite store.
//
// How the N records are made: N/2 kubectl-like GETs through a real gateway (demo config, audit.bodies
// false, 32 at a time, 10% without a token), then 500 more calls after the head checkpoint the gateway
// signed as it stopped, for --since-checkpoint. With `--copies` (stores larger than a bench run can fill through
// the gateway, e.g. the 1M-record bound), the store API appends copies of a sample of the gateway's
// own records instead (bench/audit-copies.ts), with a signed checkpoint every 100k records. The bytes
// per event always come from copies: steady-state file growth over 20,000 identical-kind calls.
//
// Run alone: `node --conditions=source --import tsx bench/audit-scale.ts [--records 200000]
// [--copies] [--keep] [--work DIR]`; `npm run bench` runs it as cell (f).
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { createStore } from '../packages/gateway/src/store/index.js';
import { appendCopies, bytesPerPair, copyOf, readTemplates, sizeOf, type Template } from './audit-copies.js';
import { mongoBytesPerCall, type MongoBytes } from './audit-bytes-mongo.js';
import { startChild, type Child } from './children.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);

export interface CommandFigures {
  command: string;
  wallS: number;
  /** User + system CPU seconds: the figure to compare on a shared, loaded machine. */
  cpuS: number;
  peakRssMb: number;
  exitCode: number;
  /** Lines written to stdout (export: one per event). */
  lines: number;
  /** What the command wrote to stderr (notes), if anything. */
  summary?: string;
  /** The last line of stdout (verify: its records/s report). */
  lastLine?: string;
}

export interface AuditScaleResult {
  records: number;
  storeMb: number;
  generation: string;
  generateS: number;
  bytesPerAllowedGet: number;
  bytesPerRefusal: number;
  /** MongoDB: BSON document bytes and estimated index bytes of one call (uncompressed; see audit-bytes-mongo.ts). */
  mongoBytesPerAllowedGet: MongoBytes;
  mongoBytesPerRefusal: MongoBytes;
  export: CommandFigures;
  verifyFull: CommandFigures;
  verifySinceCheckpoint: CommandFigures;
  leastPrivilege: CommandFigures;
}

function log(message: string): void {
  process.stderr.write(`[audit-scale] ${message}\n`);
}

/** One `hoopgate` command as a child of /usr/bin/time -v: its wall time and maximum RSS. */
export async function timeCommand(args: readonly string[], cwd: string, stdoutFile?: string): Promise<CommandFigures> {
  const began = performance.now();
  const child = spawn(
    '/usr/bin/time',
    ['-v', process.execPath, join(repoRoot, 'packages/gateway/bin/hoopgate.js'), ...args],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let lines = 0;
  let stderr = '';
  let tail = '';
  // Read through a pipe, as a consumer would: the command must keep up with (and wait for) its reader.
  child.stdout.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
    tail = (tail + chunk.toString('utf8')).slice(-4096);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exitCode = await new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
  const wallS = (performance.now() - began) / 1000;
  if (stdoutFile !== undefined) writeFileSync(stdoutFile, tail);
  const lastLine = tail.trimEnd().split('\n').pop()?.slice(0, 300) ?? '';
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
  const cpu = ['User', 'System'].reduce(
    (sum, kind) => sum + Number(new RegExp(`${kind} time \\(seconds\\): ([\\d.]+)`).exec(stderr)?.[1] ?? Number.NaN),
    0,
  );
  const own = stderr
    .split('\n')
    .filter((line) => !line.startsWith('\t') && !line.startsWith('Command exited'))
    .join('\n')
    .trim();
  return {
    command: `hoopgate ${args.join(' ')}`,
    wallS: Math.round(wallS * 100) / 100,
    cpuS: Math.round(cpu * 100) / 100,
    peakRssMb: Math.round(kb / 1024),
    exitCode,
    lines,
    ...(own === '' ? {} : { summary: own.slice(0, 400) }),
    ...(lastLine === '' || lines > 3 ? {} : { lastLine }),
  };
}

/** kubectl's own headers, so the request records are as big as real ones. */
function kubectlHeaders(token: string | undefined, i: number): Record<string, string> {
  return {
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    accept: 'application/json',
    'user-agent': 'kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46',
    'kubectl-session': `0b7c3f3e-5d1a-4f4e-9a57-${String(100000000000 + Math.floor(i / 5)).slice(-12)}`,
    'kubectl-command': 'kubectl get',
  };
}

/**
 * `calls` kubectl-like GETs through the gateway, `concurrency` at a time over kept-alive connections: a
 * `refusedShare` of them without a token (401, refused before authentication), the rest allowed reads.
 */
async function sendThrough(
  target: { url: string; ca: string; token: string },
  calls: number,
  options: { refusedShare: number; concurrency: number; first?: number },
): Promise<void> {
  const agent = new Agent({ connect: { ca: target.ca }, connections: options.concurrency });
  const first = options.first ?? 0;
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const refused = (i * 7919) % 1000 < options.refusedShare * 1000;
    const path = refused
      ? '/api/v1/namespaces/staging/pods'
      : (ALLOWED_PATHS[i % ALLOWED_PATHS.length] ?? '/api/v1/namespaces/staging/configmaps/app-config');
    const response = await request(`${target.url}${path}`, {
      dispatcher: agent,
      headers: kubectlHeaders(refused ? undefined : target.token, i),
    });
    await response.body.dump();
    if (response.statusCode !== (refused ? 401 : 200))
      throw new Error(`request ${path} through the gateway answered ${response.statusCode}`);
  };
  const worker = async (): Promise<void> => {
    while (next < calls) await one(first + next++);
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    await agent.close();
  }
}

/** What the allowed calls read (the demo's ci-deployer may get these). */
const ALLOWED_PATHS = [
  '/api/v1/namespaces/staging/configmaps/app-config',
  '/api/v1/namespaces/staging/configmaps',
  '/api/v1/namespaces/staging/pods',
];

interface World {
  upstream: Child<UpstreamInfo>;
  target: { url: string; ca: string; token: string };
  keyFile: string;
  /** A gateway config like the demo's, on `storeFile`: audit.bodies false, per-client limits out of the way. */
  configFor(storeFile: string, name: string): string;
  gateway(configPath: string): Promise<Child<GatewayInfo>>;
}

async function startWorld(work: string, children: { stop(timeoutMs?: number): Promise<void> }[]): Promise<World> {
  const upstream = await startChild<UpstreamInfo>(
    'upstream',
    { dir: join(work, 'world'), heldObjects: 0 },
    { logFile: join(work, 'upstream.out') },
  );
  children.push(upstream);
  const config = parseYaml(readFileSync(upstream.info.configPath, 'utf8')) as { audit: Record<string, unknown> };
  const keyFile = join(work, 'checkpoint-key.pem');
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const unlimited = { maxConcurrent: 64, requestsPerSecond: 100_000, burst: 100_000 };
  (config as Record<string, unknown>)['limits'] = { perAddress: unlimited, perIdentity: unlimited };
  const target = {
    url: '',
    ca: readFileSync(upstream.info.gatewayCaFile, 'utf8'),
    token: await upstream.call<string>('token', 'ci-deployer'),
  };
  return {
    upstream,
    target,
    keyFile,
    configFor(storeFile, name) {
      config.audit['store'] = `sqlite:${storeFile}`;
      config.audit['bodies'] = false;
      config.audit['checkpoint'] = { every: '1h', signingKeyFile: keyFile };
      const file = join(work, `${name}.yaml`);
      writeFileSync(file, toYaml(config));
      return file;
    },
    async gateway(configPath) {
      const gateway = await startChild<GatewayInfo>(
        'gateway',
        { configPath, replicaId: 'bench-gateway', logFile: join(work, 'gateway.jsonl') },
        { logFile: join(work, 'gateway.out') },
      );
      target.url = gateway.info.url;
      return gateway;
    },
  };
}

/** `calls` requests through a gateway started for them on `configPath`, stopped after. */
async function throughGateway(world: World, configPath: string, calls: number, first = 0): Promise<void> {
  const gateway = await world.gateway(configPath);
  try {
    await sendThrough(world.target, calls, { refusedShare: 0.1, concurrency: 32, first });
  } finally {
    await gateway.stop(30_000);
  }
}

export async function benchAuditScale(
  options: { records?: number; keep?: boolean; work?: string; copies?: boolean } = {},
): Promise<AuditScaleResult> {
  const records = options.records ?? 200_000;
  const work = options.work ?? mkdtempSync(join(tmpdir(), 'hoop-audit-scale-'));
  const children: { stop(timeoutMs?: number): Promise<void> }[] = [];
  try {
    log(`work dir ${work}; sampling the gateway's records`);
    const world = await startWorld(work, children);
    const sampleFile = join(work, 'sample.db');
    await throughGateway(world, world.configFor(sampleFile, 'sample'), 3000);
    const templates = await readTemplates(`sqlite:${sampleFile}`);
    log(`templates: ${templates.allowed.length} allowed GETs, ${templates.refused.length} refusals`);
    if (templates.allowed.length === 0 || templates.refused.length === 0)
      throw new Error('the gateway sample has no allowed GET or no refusal to copy');

    const bytesPerAllowedGet = await bytesPerPair(work, 'bytes-allowed', templates, 0);
    const bytesPerRefusal = await bytesPerPair(work, 'bytes-refused', templates, 1);
    log(
      `steady state: ${bytesPerAllowedGet} bytes per allowed GET, ${bytesPerRefusal} per refusal (request + outcome, indexes included)`,
    );
    const now = Date.now();
    const mongoBytesPerAllowedGet = mongoBytesPerCall(
      copyOf(templates.allowed[0] as Template, now, `s-${randomUUID()}`),
    );
    const mongoBytesPerRefusal = mongoBytesPerCall(copyOf(templates.refused[0] as Template, now, `s-${randomUUID()}`));
    log(`MongoDB: ${JSON.stringify({ mongoBytesPerAllowedGet, mongoBytesPerRefusal })}`);

    // The big store: N records through the gateway (or, with --copies, copies of the sample's records).
    const scaleFile = join(work, 'scale.db');
    const scaleConfig = world.configFor(scaleFile, 'scale');
    const calls = Math.ceil(records / 2);
    const generated = performance.now();
    if (options.copies === true) {
      copyFileSync(sampleFile, scaleFile);
      const copies = { refusedShare: 0.1, replicaId: 'bench-scale', keyFile: world.keyFile };
      await appendCopies(`sqlite:${scaleFile}`, templates, {
        ...copies,
        pairs: calls,
        endTime: Date.now(),
        checkpointEvery: 50_000,
      });
    } else {
      await throughGateway(world, scaleConfig, calls); // stopping, the gateway signs a head checkpoint
    }
    const generateS = Math.round((performance.now() - generated) / 100) / 10;
    const storeMb = Math.round(sizeOf(scaleFile) / 1024 / 1024);
    const stored = await countRecords(scaleFile);
    log(`generated ${stored} records in ${generateS} s: store ${storeMb} MB`);

    const exportFigures = await timeCommand(['audit', 'export', '--config', scaleConfig], work);
    log(`export: ${JSON.stringify(exportFigures)}`);
    const verifyFull = await timeCommand(['audit', 'verify', '--full', '--config', scaleConfig], work);
    log(`verify --full: ${JSON.stringify(verifyFull)}`);
    // 1,000 new records after the last checkpoint (the gateway signs one when it stops), then the
    // incremental verification — through the gateway, while it keeps running, as in production.
    const running =
      options.copies === true
        ? undefined
        : await world.gateway(scaleConfig).then((gateway) => (children.push(gateway), gateway));
    if (running === undefined)
      await appendCopies(`sqlite:${scaleFile}`, templates, {
        pairs: 500,
        refusedShare: 0.1,
        endTime: Date.now(),
        replicaId: 'bench-scale',
        keyFile: world.keyFile,
      });
    else await sendThrough(world.target, 500, { refusedShare: 0.1, concurrency: 32, first: calls });
    const verifySince = await timeCommand(['audit', 'verify', '--since-checkpoint', '--config', scaleConfig], work);
    log(`verify --since-checkpoint: ${JSON.stringify(verifySince)}`);
    const leastPrivilege = await timeCommand(
      ['audit', 'least-privilege', '--config', scaleConfig, '--offline', '--format', 'json', '--since', '3650d'],
      work,
    );
    await running?.stop(30_000);
    log(`least-privilege: ${JSON.stringify(leastPrivilege)}`);
    return {
      records: await countRecords(scaleFile),
      storeMb,
      generation:
        options.copies === true
          ? `copies of ${templates.allowed.length} allowed GETs and ${templates.refused.length} unauthenticated GETs the gateway recorded (audit.bodies false), appended through the store API in batches of 1,000 records, 10% refusals, a signed checkpoint every 100k records`
          : `${calls.toLocaleString('en-US')} kubectl-like GETs through the gateway (32 at a time, 10% without a token; audit.bodies false), then a signed head checkpoint and 500 more calls`,
      generateS,
      bytesPerAllowedGet,
      bytesPerRefusal,
      mongoBytesPerAllowedGet,
      mongoBytesPerRefusal,
      export: exportFigures,
      verifyFull,
      verifySinceCheckpoint: verifySince,
      leastPrivilege,
    };
  } finally {
    for (const child of children) await child.stop(10_000).catch(() => undefined);
    if (options.keep !== true && options.work === undefined) rmSync(work, { recursive: true, force: true });
  }
}

/** Records in the store (all chains). */
async function countRecords(storeFile: string): Promise<number> {
  const store = await createStore(`sqlite:${storeFile}`, { replicaId: 'bench-count' });
  try {
    return (await store.audit.chainHeads()).reduce((sum, head) => sum + head.records, 0);
  } finally {
    await store.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--records');
  const records = at === -1 ? undefined : Number(argv[at + 1]);
  const workAt = argv.indexOf('--work');
  const work = workAt === -1 ? undefined : argv[workAt + 1];
  if (work !== undefined) mkdirSync(work, { recursive: true });
  const result = await benchAuditScale({
    ...(records === undefined ? {} : { records }),
    keep: argv.includes('--keep'),
    copies: argv.includes('--copies'),
    ...(work === undefined ? {} : { work }),
  });
  console.log(JSON.stringify(result, null, 2));
}
