// The audit at scale (issue #17): a store of N records, then `audit export`, `audit verify --full`,
// `audit verify --since-checkpoint` (after 1,000 new records) and `audit least-privilege`, each run
// as its own `hoopgate` process under /usr/bin/time -v for wall time and peak RSS; and the bytes one
// allowed GET and one refusal cost in the SQLite store.
//
// How the N records are made: a real gateway (demo config, audit.bodies false) serves a sample of
// kubectl-like allowed GETs and unauthenticated requests; those records are the templates, and the
// store API appends copies of them (fresh event/request ids, spread times) until N records exist —
// writing N records through the full gateway would take minutes per 100k on this machine.
//
// Run alone: `node --import tsx bench/audit-scale.ts [--records 200000] [--keep]`; `npm run bench`
// runs it as cell (f).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { createCheckpointer, loadSigningKey } from '../packages/gateway/src/audit/checkpoint.js';
import { createStore } from '../packages/gateway/src/store/index.js';
import type { AuditRecord, AuditRecordDraft } from '../packages/gateway/src/store/types.js';
import { mongoBytesPerCall, type MongoBytes } from './audit-bytes-mongo.js';
import { startChild } from './children.js';
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
  /** The command's own summary line (verify: records/s). */
  summary?: string;
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
    if (stdoutFile !== undefined) tail = (tail + chunk.toString('utf8')).slice(-4096);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exitCode = await new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
  const wallS = (performance.now() - began) / 1000;
  if (stdoutFile !== undefined) writeFileSync(stdoutFile, tail);
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

async function sendSample(url: string, ca: string, token: string, allowed: number, refused: number): Promise<void> {
  const agent = new Agent({ connect: { ca }, connections: 8 });
  try {
    const one = async (i: number, withToken: boolean): Promise<void> => {
      const path = withToken ? `/api/v1/namespaces/staging/configmaps/app-config` : '/api/v1/namespaces/staging/pods';
      const response = await request(`${url}${path}`, {
        dispatcher: agent,
        headers: kubectlHeaders(withToken ? token : undefined, i),
      });
      await response.body.dump();
      if (response.statusCode !== (withToken ? 200 : 401))
        throw new Error(`sample request ${path} answered ${response.statusCode}`);
    };
    for (let i = 0; i < allowed; i += 8)
      await Promise.all(Array.from({ length: Math.min(8, allowed - i) }, (_, k) => one(i + k, true)));
    for (let i = 0; i < refused; i += 8)
      await Promise.all(Array.from({ length: Math.min(8, refused - i) }, (_, k) => one(i + k, false)));
  } finally {
    await agent.close();
  }
}

/** Request + outcome templates of one kind of call, as the gateway wrote them. */
interface Template {
  request: AuditRecord;
  outcome: AuditRecord;
}

async function readTemplates(storeUrl: string): Promise<{ allowed: Template[]; refused: Template[] }> {
  const store = await createStore(storeUrl, { replicaId: 'bench-reader' });
  try {
    const records = await store.audit.listRecords({ kinds: ['request', 'outcome'], limit: 100_000 });
    const outcomes = new Map(records.filter((r) => r.kind === 'outcome').map((r) => [r.eventId, r]));
    const pairs = records
      .filter((r) => r.kind === 'request')
      .map((request) => ({ request, outcome: outcomes.get(request.eventId) as AuditRecord }));
    return {
      allowed: pairs.filter((p) => p.outcome !== undefined && p.outcome.data['status'] === 200),
      refused: pairs.filter((p) => p.outcome !== undefined && p.outcome.data['status'] === 401),
    };
  } finally {
    await store.close();
  }
}

/** Two drafts (request, outcome) copied from a template with fresh ids at `time`. */
function copyOf(template: Template, time: number, session: string): AuditRecordDraft[] {
  const eventId = randomUUID();
  const request: AuditRecordDraft = {
    kind: 'request',
    time,
    eventId,
    sessionId: template.request.identity === 'anonymous' ? `s-${randomUUID()}` : session,
    ...(template.request.identity === undefined ? {} : { identity: template.request.identity }),
    data: { ...template.request.data, requestId: randomUUID() },
  };
  const outcome: AuditRecordDraft = {
    kind: 'outcome',
    time: time + 3,
    eventId,
    ...(request.sessionId === undefined ? {} : { sessionId: request.sessionId }),
    ...(request.identity === undefined ? {} : { identity: request.identity }),
    data: { ...template.outcome.data, durationMs: 2 + (time % 7), upstreamMs: 1 + (time % 5) },
  };
  return [request, outcome];
}

/**
 * Appends `pairs` request/outcome pairs (a `refusedShare` of them refusals) through the store API in
 * batches, ending `endTime`; a signed head checkpoint every `checkpointEvery` pairs, like the hourly job.
 */
async function appendCopies(
  storeUrl: string,
  templates: { allowed: Template[]; refused: Template[] },
  options: {
    pairs: number;
    refusedShare: number;
    endTime: number;
    checkpointEvery?: number;
    replicaId: string;
    keyFile?: string;
  },
): Promise<void> {
  const store = await createStore(storeUrl, { replicaId: options.replicaId });
  const key = await loadSigningKey(options.keyFile);
  const checkpointer = createCheckpointer({ store: store.audit, key, replicaId: options.replicaId, clock: Date.now });
  try {
    const batch = 500;
    const stepMs = 10;
    let time = options.endTime - options.pairs * stepMs;
    let session = `s-${randomUUID()}`;
    for (let done = 0; done < options.pairs;) {
      const n = Math.min(batch, options.pairs - done);
      const drafts: AuditRecordDraft[] = [];
      for (let k = 0; k < n; k++) {
        const index = done + k;
        if (index % 20 === 0) session = `s-${randomUUID()}`;
        const refusal = (index * 7919) % 1000 < options.refusedShare * 1000;
        const pool = refusal ? templates.refused : templates.allowed;
        const template = pool[index % pool.length] as Template;
        drafts.push(...copyOf(template, time, session));
        time += stepMs;
      }
      await store.audit.append(drafts);
      done += n;
      if (
        options.checkpointEvery !== undefined &&
        Math.floor(done / options.checkpointEvery) !== Math.floor((done - n) / options.checkpointEvery)
      ) {
        await checkpointer.checkpoint();
      }
    }
    if (options.checkpointEvery !== undefined) await checkpointer.checkpoint();
  } finally {
    await store.close();
  }
}

function sizeOf(file: string): number {
  return statSync(file).size;
}

/** Bytes per pair in steady state: file growth from `base` to `base + n` pairs, divided by n. */
async function bytesPerPair(
  work: string,
  name: string,
  templates: { allowed: Template[]; refused: Template[] },
  refusedShare: number,
): Promise<number> {
  const file = join(work, `${name}.db`);
  const url = `sqlite:${file}`;
  const base = 10_000;
  const n = 20_000;
  await appendCopies(url, templates, {
    pairs: base,
    refusedShare,
    endTime: Date.now() - 3_600_000,
    replicaId: 'bench-bytes',
  });
  const before = sizeOf(file);
  await appendCopies(url, templates, { pairs: n, refusedShare, endTime: Date.now(), replicaId: 'bench-bytes' });
  const after = sizeOf(file);
  rmSync(file, { force: true });
  return Math.round((after - before) / n);
}

export async function benchAuditScale(
  options: { records?: number; keep?: boolean; work?: string } = {},
): Promise<AuditScaleResult> {
  const records = options.records ?? 200_000;
  const work = options.work ?? mkdtempSync(join(tmpdir(), 'hoop-audit-scale-'));
  const children: { stop(timeoutMs?: number): Promise<void> }[] = [];
  try {
    log(`work dir ${work}; sampling the gateway's records`);
    const upstream = await startChild<UpstreamInfo>(
      'upstream',
      { dir: join(work, 'world'), heldObjects: 0 },
      { logFile: join(work, 'upstream.out') },
    );
    children.push(upstream);
    const config = parseYaml(readFileSync(upstream.info.configPath, 'utf8')) as { audit: Record<string, unknown> };
    const sampleFile = join(work, 'sample.db');
    config.audit['store'] = `sqlite:${sampleFile}`;
    config.audit['bodies'] = false;
    const keyFile = join(work, 'checkpoint-key.pem');
    const { privateKey } = (await import('node:crypto')).generateKeyPairSync('ed25519');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    config.audit['checkpoint'] = { every: '1h', signingKeyFile: keyFile };
    // The sample is sent as fast as the gateway answers: per-client limits (issue #12) out of the way.
    const unlimited = { maxConcurrent: 64, requestsPerSecond: 100_000, burst: 100_000 };
    (config as Record<string, unknown>)['limits'] = { perAddress: unlimited, perIdentity: unlimited };
    const sampleConfig = join(work, 'sample.yaml');
    writeFileSync(sampleConfig, toYaml(config));
    const gateway = await startChild<GatewayInfo>(
      'gateway',
      { configPath: sampleConfig, replicaId: 'bench-sample', logFile: join(work, 'gateway.jsonl') },
      { logFile: join(work, 'gateway.out') },
    );
    children.push(gateway);
    const ca = readFileSync(upstream.info.gatewayCaFile, 'utf8');
    const token = await upstream.call<string>('token', 'ci-deployer');
    const sampleAllowed = 2000;
    const sampleRefused = 1000;
    await sendSample(gateway.info.url, ca, token, sampleAllowed, sampleRefused);
    await gateway.stop();
    await upstream.stop();
    children.length = 0;
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

    // The big store: the sample's records, then N more (10% refusals), with a checkpoint every 50k pairs.
    const scaleFile = join(work, 'scale.db');
    copyFileSync(sampleFile, scaleFile);
    config.audit['store'] = `sqlite:${scaleFile}`;
    const scaleConfig = join(work, 'scale.yaml');
    writeFileSync(scaleConfig, toYaml(config));
    const generated = performance.now();
    const pairs = Math.ceil(records / 2);
    await appendCopies(`sqlite:${scaleFile}`, templates, {
      pairs,
      refusedShare: 0.1,
      endTime: Date.now(),
      checkpointEvery: 50_000,
      replicaId: 'bench-scale',
      keyFile,
    });
    const generateS = Math.round((performance.now() - generated) / 100) / 10;
    const storeMb = Math.round(sizeOf(scaleFile) / 1024 / 1024);
    log(`generated ${pairs * 2} records in ${generateS} s: store ${storeMb} MB`);

    const exportFigures = await timeCommand(['audit', 'export', '--config', scaleConfig], work);
    log(`export: ${JSON.stringify(exportFigures)}`);
    const verifyFull = await timeCommand(['audit', 'verify', '--full', '--config', scaleConfig], work);
    log(`verify --full: ${JSON.stringify(verifyFull)}`);
    // 1,000 new records after the last checkpoint, then the incremental verification.
    await appendCopies(`sqlite:${scaleFile}`, templates, {
      pairs: 500,
      refusedShare: 0.1,
      endTime: Date.now(),
      replicaId: 'bench-scale',
      keyFile,
    });
    const verifySince = await timeCommand(['audit', 'verify', '--since-checkpoint', '--config', scaleConfig], work);
    log(`verify --since-checkpoint: ${JSON.stringify(verifySince)}`);
    const leastPrivilege = await timeCommand(
      ['audit', 'least-privilege', '--config', scaleConfig, '--offline', '--format', 'json', '--since', '3650d'],
      work,
    );
    log(`least-privilege: ${JSON.stringify(leastPrivilege)}`);
    return {
      records: pairs * 2 + 1000,
      storeMb,
      generation: `templates from ${sampleAllowed} allowed GETs + ${sampleRefused} unauthenticated GETs through the gateway (audit.bodies false); copies appended through the store API in batches of 1,000 records, 10% refusals, a signed checkpoint every 100k records`,
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
    ...(work === undefined ? {} : { work }),
  });
  console.log(JSON.stringify(result, null, 2));
}
