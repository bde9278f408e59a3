// The CLI's composition root: the only place that reads process.argv, process.env and signals.
// It turns them into a CliIo and hands it to the command module, loaded only when asked for.
import { existsSync, readFileSync } from 'node:fs';
import { isUsageError, UsageError } from './cli/args.js';
import type { CliCommand, CliIo } from './cli/io.js';
import { isHoopError } from './lib/errors.js';

/** Command → the module(s) under ./cli/ that implement it, and one line for the usage text. */
const commands = {
  serve: { synopsis: 'serve --config FILE', does: 'run the gateway' },
  demo: { synopsis: 'demo', does: 'run a complete local world (simulated API server, OIDC provider, gateway)' },
  check: { synopsis: 'check --config FILE', does: 'validate a configuration; print every problem with its path' },
  explain: { synopsis: "explain --config FILE --identity NAME 'VERB PATH'", does: 'show the decision a request would get, and why' },
  token: { synopsis: 'token …', does: 'kubectl exec credential plugin: print an ExecCredential with an OIDC token' },
  audit: { synopsis: 'audit verify|export|least-privilege --config FILE', does: 'verify the audit chain, export events, suggest roles' },
  replay: { synopsis: 'replay SESSION_ID --config FILE', does: "print one session's timeline" },
  approvals: { synopsis: 'approvals list|approve ID|deny ID --config FILE', does: 'the approval queue from a terminal' },
  kubeconfig: { synopsis: 'kubeconfig …', does: 'print a kubeconfig that points an agent at the gateway' },
} as const;

type CommandName = keyof typeof commands;

const auditSubcommands = ['verify', 'export', 'least-privilege'] as const;

export function usage(): string {
  const entries = [
    ...Object.values(commands).map((c) => [c.synopsis, c.does] as const),
    ['help [COMMAND]', "this text, or a command's options"] as const,
    ['--version', 'print the version'] as const,
  ];
  return [
    'usage: hoopgate <command> [options]',
    '',
    'commands:',
    ...entries.flatMap(([synopsis, does]) => [`  ${synopsis}`, `      ${does}`]),
    '',
    "run 'hoopgate COMMAND --help' for a command's options; HOOPGATE_DEBUG=1 adds stack traces to errors",
    '',
  ].join('\n');
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(commands, name);
}

function moduleExists(name: string): boolean {
  // Sources run through tsx (.ts) or a build (.js); a missing file means "not in this build",
  // which is told apart from a module that exists but fails to load.
  return ['ts', 'js'].some((ext) => existsSync(new URL(`./cli/${name}.${ext}`, import.meta.url)));
}

async function loadCommand(name: string): Promise<CliCommand | undefined> {
  if (!moduleExists(name)) return undefined;
  const module = (await import(`./cli/${name}.js`)) as { run?: unknown };
  return typeof module.run === 'function' ? (module.run as CliCommand) : undefined;
}

/** Finds the module of a command (a file under ./cli/); undefined when this build has none. */
export type CommandLoader = (module: string) => Promise<CliCommand | undefined>;

/** `audit X` is served by ./cli/audit (which takes X) or, failing that, by ./cli/audit-X. */
async function resolveCommand(
  name: CommandName,
  rest: readonly string[],
  load: CommandLoader,
): Promise<{ run: CliCommand; argv: readonly string[] } | string> {
  const whole = await load(name);
  if (whole) return { run: whole, argv: rest };
  if (name !== 'audit') return `command ${name} is not available in this build`;
  const [sub, ...subArgv] = rest;
  if (sub === '--help' || sub === '-h') return { run: printAuditUsage, argv: [] };
  if (sub === undefined || !(auditSubcommands as readonly string[]).includes(sub)) {
    const what = sub === undefined ? 'missing subcommand' : `unknown subcommand ${JSON.stringify(sub)}`;
    throw new UsageError('audit', `${what}: use ${auditSubcommands.join(', ')}`);
  }
  const part = await load(`audit-${sub}`);
  return part ? { run: part, argv: subArgv } : `command audit ${sub} is not available in this build`;
}

const printAuditUsage: CliCommand = async (_argv, io) => {
  io.stdout(`usage: hoopgate audit ${auditSubcommands.join('|')} --config FILE [options]\n\n${commands.audit.does}\n`);
  return 0;
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** Runs one command line against the given io; never touches process globals. */
export async function runCli(argv: readonly string[], io: CliIo, load: CommandLoader = loadCommand): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr(usage());
    return 2;
  }
  if (first === '--version' || first === '-V') {
    io.stdout(`hoopgate ${version()}\n`);
    return 0;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      io.stdout(usage());
      return 0;
    }
    return runCli([topic, ...rest.slice(1), '--help'], io, load);
  }
  if (!isCommand(first)) {
    io.stderr(`hoopgate: unknown command ${JSON.stringify(first)}\n\n${usage()}`);
    return 2;
  }
  try {
    const resolved = await resolveCommand(first, rest, load);
    if (typeof resolved === 'string') {
      io.stderr(`hoopgate: ${resolved}\n`);
      return 2;
    }
    return await resolved.run(resolved.argv, io);
  } catch (error) {
    return reportError(error, io);
  }
}

function reportError(error: unknown, io: CliIo): number {
  if (isUsageError(error)) {
    io.stderr(`${error.message}\nrun 'hoopgate ${error.command} --help' for usage\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`hoopgate: ${message}\n`);
  if (io.env.HOOPGATE_DEBUG === '1' && error instanceof Error && error.stack) {
    io.stderr(`${error.stack}\n`);
    if (isHoopError(error) && error.cause instanceof Error && error.cause.stack) io.stderr(`caused by: ${error.cause.stack}\n`);
  }
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    // The first signal asks the command to stop gracefully; a second one does not wait.
    if (signals === 1) controller.abort(new Error(`received ${signal}`));
    else process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  const ignoreBrokenPipe = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', ignoreBrokenPipe);
  const io: CliIo = {
    stdout: (text) => void process.stdout.write(text),
    drain: () => (process.stdout.writableNeedDrain ? new Promise<void>((resolve) => process.stdout.once('drain', resolve)) : Promise.resolve()),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    stopSignal: controller.signal,
  };
  try {
    return await runCli(argv, io);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
