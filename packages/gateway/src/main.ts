// The CLI's composition root: the only place that reads process.argv, process.env and signals.
// It turns them into a CliIo and hands it to the command module, loaded only when asked for.
import { readFileSync } from 'node:fs';
import { isUsageError } from './cli/args.js';
import type { CliCommand, CliIo } from './cli/io.js';
import { HoopError, isHoopError } from './lib/errors.js';

/** Command → its module under ./cli/ (same name), and one line for the usage text. */
const commands = {
  serve: { synopsis: 'serve --config FILE', does: 'run the gateway' },
  demo: { synopsis: 'demo', does: 'run a complete local world (simulated API server, OIDC provider, gateway)' },
  check: { synopsis: 'check --config FILE', does: 'validate a configuration; print every problem with its path' },
  explain: {
    synopsis: "explain --config FILE --identity NAME 'VERB PATH'",
    does: 'show the decision a request would get, and why',
  },
  token: { synopsis: 'token …', does: 'kubectl exec credential plugin: print an ExecCredential with an OIDC token' },
  audit: {
    synopsis: 'audit verify|export|least-privilege --config FILE',
    does: 'verify the audit chain, export events, suggest roles',
  },
  replay: { synopsis: 'replay SESSION_ID --config FILE', does: "print one session's timeline" },
  approvals: {
    synopsis: 'approvals list|approve ID|deny ID --config FILE',
    does: 'the approval queue from a terminal',
  },
  kubeconfig: { synopsis: 'kubeconfig …', does: 'print a kubeconfig that points an agent at the gateway' },
} as const;

type CommandName = keyof typeof commands;

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

/** Loads the module of a command (./cli/NAME); every command in the table has one. */
export type CommandLoader = (name: CommandName) => Promise<CliCommand>;

/**
 * Every command module, imported only when its command runs: `hoopgate token` (run by kubectl before
 * every call) loads the token module and nothing else. A static table, so a build either has every
 * command or fails to compile.
 */
const commandModules: Record<CommandName, () => Promise<{ run: CliCommand }>> = {
  serve: () => import('./cli/serve.js'),
  demo: loadDemo,
  check: () => import('./cli/check.js'),
  explain: () => import('./cli/explain.js'),
  token: () => import('./cli/token.js'),
  audit: () => import('./cli/audit.js'),
  replay: () => import('./cli/replay.js'),
  approvals: () => import('./cli/approvals.js'),
  kubeconfig: () => import('./cli/kubeconfig.js'),
};

/**
 * The demo world (simulated API server, local OpenID provider) is a separate package of the
 * repository, absent from a production install of the gateway; the specifier is a variable so the
 * gateway's build does not depend on it.
 */
const demoPackage = '@hoopgate/demo/cli.js';
async function loadDemo(): Promise<{ run: CliCommand }> {
  try {
    return (await import(demoPackage)) as { run: CliCommand };
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' ||
      !String((error as Error).message).includes('@hoopgate/demo')
    )
      throw error;
    throw new HoopError(
      'ERR_CONFIG',
      'the demo is not part of this installation (package @hoopgate/demo): run `npm install && npm start` in a checkout of the hoopgate repository',
    );
  }
}

const loadCommand: CommandLoader = async (name) => (await commandModules[name]()).run;

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
    const command = await load(first);
    return await command(rest, io);
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
    if (isHoopError(error) && error.cause instanceof Error && error.cause.stack)
      io.stderr(`caused by: ${error.cause.stack}\n`);
  }
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    // The first signal asks the command to stop gracefully; a second one does not wait.
    if (signals === 1) controller.abort(new HoopError('ERR_SHUTTING_DOWN', `received ${signal}`));
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
    drain: () =>
      process.stdout.writableNeedDrain
        ? new Promise<void>((resolve) => process.stdout.once('drain', resolve))
        : Promise.resolve(),
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
