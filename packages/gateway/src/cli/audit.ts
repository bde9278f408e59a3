// `hoopgate audit verify|export|least-privilege --config FILE`: checks the tamper-evident chains and
// exports events as JSON lines, reading the store named by `audit.store`.
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { loadVerifyKey } from '../audit/checkpoint.js';
import { exportEvents } from '../audit/events.js';
import { verifyAuditReport, type VerifyReport } from '../audit/verify.js';
import { loadConfig as loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { parseCommandArgs, UsageError } from './args.js';
import type { CliCommand, CliIo } from './io.js';
import { parseTimeArg } from './time-arg.js';

export const usage = `usage: hoopgate audit verify|export|least-privilege --config FILE [options]

  verify  --config FILE [--full | --since-checkpoint] [--public-key PEM]
          verify the audit chains and their signed checkpoints; exit 0, or 1 naming the first bad record
          --full (default): every chain from its start (genesis, or its retention checkpoint)
          --since-checkpoint: each chain from its newest head checkpoint whose signature verifies and
            whose hash matches the stored record, forward to the head (seconds at any store size); a
            checkpoint that fails either test is skipped, reported, and fails the run. Use it for
            frequent checks and keep a regular --full run: it trusts what the checkpoint covers
  export  --config FILE [--since T] [--until T]
          the audit events as JSON lines, each with its sessionId; T is an ISO time or a duration
          back from now (24h, 30m, 7d)
  least-privilege --config FILE …
          suggest Roles from what each identity used (see its own --help)
`;

export interface AuditCliDeps {
  loadConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<Config>;
  openStore(url: string): Promise<Store>;
  now(): number;
}

const defaults: AuditCliDeps = {
  loadConfig: (path, env) => loadConfigFile(path, env),
  openStore: (url) =>
    createStore(url, { replicaId: `cli-${randomUUID().slice(0, 8)}`, pageCacheKb: 2048, writerThread: false }),
  now: () => Date.now(),
};

export { parseTimeArg };

function configPath(io: CliIo, file: string): string {
  return isAbsolute(file) ? file : resolve(io.cwd, file);
}

async function withStore<T>(deps: AuditCliDeps, config: Config, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await deps.openStore(config.audit.store);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

function describeReport(report: VerifyReport): string {
  const rate = `${report.recordsPerSecond.toLocaleString('en-US')} records/s`;
  const starts = report.starts.map(
    (s) =>
      `${s.chain} from seq ${s.fromSeq} (${s.anchor === 'checkpoint' ? `checkpoint of ${new Date(s.checkpointTime ?? 0).toISOString()}` : s.anchor})`,
  );
  return `--${report.mode}, ${(report.elapsedMs / 1000).toFixed(2)} s, ${rate}${report.mode === 'since-checkpoint' && starts.length > 0 ? `; ${starts.join(', ')}` : ''}`;
}

async function verify(deps: AuditCliDeps, argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('audit verify', argv, {
    config: { type: 'string', short: 'c', required: true },
    'public-key': { type: 'string' },
    full: { type: 'boolean' },
    'since-checkpoint': { type: 'boolean' },
  });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  if (args.values.full === true && args.values['since-checkpoint'] === true) {
    throw new UsageError(
      'audit verify',
      '--full and --since-checkpoint exclude each other: pick one (the default is --full)',
    );
  }
  const mode = args.values['since-checkpoint'] === true ? 'since-checkpoint' : 'full';
  const config = await deps.loadConfig(configPath(io, args.values.config), io.env);
  const keyFile = args.values['public-key'] ?? config.audit.checkpoint?.signingKeyFile;
  const publicKey = keyFile === undefined ? undefined : await loadVerifyKey(configPath(io, keyFile));
  const report = await withStore(deps, config, (store) =>
    verifyAuditReport(store.audit, { mode, ...(publicKey === undefined ? {} : { publicKey }) }),
  );
  for (const skip of report.skipped)
    io.stderr(`checkpoint skipped: chain ${skip.chain} seq ${skip.seq}: ${skip.problem}\n`);
  if (report.failure !== undefined) {
    io.stderr(
      `audit verify failed: chain ${report.failure.chain} seq ${report.failure.seq}: ${report.failure.problem}\n`,
    );
    return 1;
  }
  io.stdout(`audit ok: ${report.records} records in ${report.chains} chains (${describeReport(report)})\n`);
  if (publicKey === undefined) {
    io.stderr(
      'note: no audit.checkpoint.signingKeyFile: checkpoint signatures were checked against the keys they carry (integrity, not origin)\n',
    );
  }
  return 0;
}

async function exportCommand(deps: AuditCliDeps, argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('audit export', argv, {
    config: { type: 'string', short: 'c', required: true },
    since: { type: 'string' },
    until: { type: 'string' },
  });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  const now = deps.now();
  const since =
    args.values.since === undefined ? undefined : parseTimeArg('audit export', 'since', args.values.since, now);
  const until =
    args.values.until === undefined ? undefined : parseTimeArg('audit export', 'until', args.values.until, now);
  const config = await deps.loadConfig(configPath(io, args.values.config), io.env);
  await withStore(deps, config, async (store) => {
    const window = { ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }) };
    // Written in chunks as read; a slow reader (a pipe) holds the cursor back instead of filling memory.
    let chunk = '';
    for await (const event of exportEvents(store.audit, window)) {
      chunk += `${JSON.stringify(event)}\n`;
      if (chunk.length >= 64 * 1024) {
        io.stdout(chunk);
        chunk = '';
        await io.drain?.();
      }
    }
    if (chunk !== '') io.stdout(chunk);
  });
  return 0;
}

/** The report lives in its own module, loaded only for this subcommand. */
async function leastPrivilege(argv: readonly string[], io: CliIo): Promise<number> {
  const { run } = await import('./audit-least-privilege.js');
  return run(argv, io);
}

export function createAuditCommand(deps: AuditCliDeps = defaults): CliCommand {
  return async (argv, io) => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'verify':
        return verify(deps, rest, io);
      case 'export':
        return exportCommand(deps, rest, io);
      case 'least-privilege':
        return leastPrivilege(rest, io);
      case '--help':
      case '-h':
        io.stdout(usage);
        return 0;
      default:
        throw new UsageError(
          'audit',
          `${sub === undefined ? 'missing subcommand' : `unknown subcommand ${JSON.stringify(sub)}`}: use verify, export or least-privilege`,
        );
    }
  };
}

export const run: CliCommand = createAuditCommand();
