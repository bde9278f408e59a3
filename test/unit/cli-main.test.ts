// The CLI dispatcher (runCli with an injected command loader and a captured CliIo), the shared
// argument parser, and one run of the real bin/hoopgate.js through main().
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandArgs, UsageError } from '../../packages/gateway/src/cli/args.js';
import type { CliCommand, CliIo } from '../../packages/gateway/src/cli/io.js';
import { runCli, usage } from '../../packages/gateway/src/main.js';
import type { CommandLoader } from '../../packages/gateway/src/main.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';

const root = join(import.meta.dirname, '..', '..');

function capture(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    env,
    cwd: root,
    stopSignal: new AbortController().signal,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

/** A loader that knows only the given modules and records what each was called with. */
function modules(table: Record<string, CliCommand>) {
  const calls: [string, readonly string[]][] = [];
  const load: CommandLoader = async (name) => {
    const command = table[name];
    if (command === undefined) throw new Error(`test loader: no module ${name}`);
    return async (argv, io) => {
      calls.push([name, argv]);
      return command(argv, io);
    };
  };
  return { load, calls };
}

const ok: CliCommand = async () => 0;

describe('runCli', () => {
  test('no arguments: the usage on stderr, exit 2', async () => {
    const cli = capture();
    assert.equal(await runCli([], cli.io, modules({}).load), 2);
    assert.equal(cli.stderr(), usage());
    assert.match(usage(), /^usage: hoopgate <command> \[options\]\n/);
    for (const command of [
      'serve',
      'demo',
      'check',
      'explain',
      'token',
      'audit',
      'replay',
      'approvals',
      'kubeconfig',
    ]) {
      assert.match(usage(), new RegExp(`\\n  ${command}\\b`));
    }
  });

  test('an unknown command: named, then the usage, exit 2', async () => {
    const cli = capture();
    assert.equal(await runCli(['serv'], cli.io, modules({}).load), 2);
    assert.equal(cli.stderr(), `hoopgate: unknown command "serv"\n\n${usage()}`);
  });

  test('help, --help and -h print the usage on stdout, exit 0', async () => {
    for (const word of ['help', '--help', '-h']) {
      const cli = capture();
      assert.equal(await runCli([word], cli.io, modules({}).load), 0);
      assert.equal(cli.stdout(), usage());
    }
  });

  test('help COMMAND runs the command with --help', async () => {
    const { load, calls } = modules({ check: ok });
    assert.equal(await runCli(['help', 'check'], capture().io, load), 0);
    assert.deepEqual(calls, [['check', ['--help']]]);
  });

  test('--version prints the package version', async () => {
    const cli = capture();
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    assert.equal(await runCli(['--version'], cli.io, modules({}).load), 0);
    assert.equal(cli.stdout(), `hoopgate ${version}\n`);
  });

  test('a command gets the rest of argv and the io; its exit code is returned', async () => {
    const { load, calls } = modules({ replay: async (_argv, io) => (io.stdout('timeline\n'), 3) });
    const cli = capture();
    assert.equal(await runCli(['replay', 'S1', '--config', 'x.yaml'], cli.io, load), 3);
    assert.deepEqual(calls, [['replay', ['S1', '--config', 'x.yaml']]]);
    assert.equal(cli.stdout(), 'timeline\n');
  });

  test('every command of the usage loads through the default loader and answers --help', async () => {
    // The static table of lazy imports in main.ts, demo (a separate package) included.
    for (const command of [
      'serve',
      'demo',
      'check',
      'explain',
      'token',
      'audit',
      'replay',
      'approvals',
      'kubeconfig',
    ]) {
      const cli = capture();
      assert.equal(await runCli([command, '--help'], cli.io), 0, `${command} --help: ${cli.stderr()}`);
      assert.match(cli.stdout(), new RegExp(`hoopgate ${command}`), `${command} --help prints its usage`);
    }
  });

  test('audit X goes to the audit module, which dispatches X (and names an unknown one)', async () => {
    const whole = modules({ audit: ok });
    await runCli(['audit', 'verify', '--config', 'c'], capture().io, whole.load);
    assert.deepEqual(whole.calls, [['audit', ['verify', '--config', 'c']]]);

    const unknown = capture();
    assert.equal(await runCli(['audit', 'verfy'], unknown.io), 2);
    assert.equal(
      unknown.stderr(),
      'hoopgate audit: unknown subcommand "verfy": use verify, export or least-privilege\nrun \'hoopgate audit --help\' for usage\n',
    );

    const help = capture();
    assert.equal(await runCli(['help', 'audit'], help.io), 0);
    assert.match(help.stdout(), /^usage: hoopgate audit verify\|export\|least-privilege --config FILE/);

    const report = capture();
    assert.equal(await runCli(['audit', 'least-privilege', '--help'], report.io), 0);
    assert.match(report.stdout(), /^usage: hoopgate audit least-privilege --config FILE/);
  });

  test('a UsageError: its message and a pointer to --help, exit 2', async () => {
    const cli = capture();
    const load = modules({ check: async (argv) => (parseCommandArgs('check', argv, {}), 0) }).load;
    assert.equal(await runCli(['check', '--x'], cli.io, load), 2);
    assert.equal(cli.stderr(), "hoopgate check: unknown option --x\nrun 'hoopgate check --help' for usage\n");
  });

  test('a HoopError: "hoopgate: <message>", exit 1', async () => {
    const cli = capture();
    const load = modules({
      serve: async () =>
        Promise.reject(new HoopError('ERR_AUDIT_UNAVAILABLE', 'audit store unavailable: connection refused')),
    }).load;
    assert.equal(await runCli(['serve'], cli.io, load), 1);
    assert.equal(cli.stderr(), 'hoopgate: audit store unavailable: connection refused\n');
  });

  test('any other error: its message, exit 1; the stack only with HOOPGATE_DEBUG=1', async () => {
    const boom: CliCommand = async () => {
      throw new TypeError('boom');
    };
    const quiet = capture();
    assert.equal(await runCli(['demo'], quiet.io, modules({ demo: boom }).load), 1);
    assert.equal(quiet.stderr(), 'hoopgate: boom\n');
    const debug = capture({ HOOPGATE_DEBUG: '1' });
    assert.equal(await runCli(['demo'], debug.io, modules({ demo: boom }).load), 1);
    assert.match(debug.stderr(), /^hoopgate: boom\nTypeError: boom\n {4}at /);
  });

  test('the default loader finds the real check module', async () => {
    const cli = capture();
    assert.equal(await runCli(['check', '--help'], cli.io), 0);
    assert.match(cli.stdout(), /^usage: hoopgate check/);
  });
});

describe('parseCommandArgs', () => {
  const spec = {
    config: { type: 'string', short: 'c', required: true },
    since: { type: 'string', default: '30d' },
    identity: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  } as const;

  test('values, defaults, repeats, short options and positionals', () => {
    const args = parseCommandArgs(
      'audit least-privilege',
      ['-c', 'x.yaml', '--identity=a', '--identity', 'b', 'S1', '--', '--raw'],
      spec,
      { names: ['ID'], max: 2 },
    );
    assert.deepEqual(args, {
      values: { config: 'x.yaml', since: '30d', identity: ['a', 'b'], json: false },
      positionals: ['S1', '--raw'],
      help: false,
    });
  });

  test('--help skips the required checks', () => {
    assert.equal(parseCommandArgs('check', ['--help'], spec, { names: ['ID'] }).help, true);
  });

  const refusals: [string[], string][] = [
    [['--config', 'x', '--x'], 'hoopgate check: unknown option --x'],
    [['--config', 'x', '-z'], 'hoopgate check: unknown option -z'],
    [['--config'], 'hoopgate check: option --config needs a value'],
    [['--config', '--json'], 'hoopgate check: option --config needs a value'],
    [['--config='], 'hoopgate check: option --config needs a value'],
    [['--config', 'x', '--json=yes'], 'hoopgate check: option --json takes no value'],
    [['--config', 'x', '--config', 'y'], 'hoopgate check: option --config given twice'],
    [[], 'hoopgate check: option --config is required'],
    [['--config', 'x', 'a', 'b'], 'hoopgate check: unexpected argument "b"'],
  ];
  for (const [argv, message] of refusals) {
    test(`${JSON.stringify(argv)} → ${message}`, () => {
      assert.throws(
        () => parseCommandArgs('check', argv, spec, { names: ['ID'], min: 0 }),
        (error: unknown) => {
          assert.ok(error instanceof UsageError);
          assert.equal(error.message, message);
          assert.equal(error.command, 'check');
          return true;
        },
      );
    });
  }

  test('a missing positional is named', () => {
    assert.throws(() => parseCommandArgs('replay', [], {}, { names: ['SESSION_ID'] }), {
      message: 'hoopgate replay: missing argument SESSION_ID',
    });
  });
});

describe('bin/hoopgate.js', () => {
  test('main() wires process argv, stdio and the exit code', () => {
    const unknown = spawnSync(process.execPath, [join(root, 'packages', 'gateway', 'bin', 'hoopgate.js'), 'nope'], {
      encoding: 'utf8',
      cwd: root,
    });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^hoopgate: unknown command "nope"\n\nusage: hoopgate/);
    const check = spawnSync(
      process.execPath,
      [
        join(root, 'packages', 'gateway', 'bin', 'hoopgate.js'),
        'check',
        '--config',
        'examples/hoopgate.yaml',
        '--skip-files',
      ],
      {
        encoding: 'utf8',
        cwd: root,
        env: {
          PATH: process.env.PATH,
          SLACK_BOT_TOKEN: 'xoxb-t',
          SLACK_SIGNING_SECRET: 's',
          HOOPGATE_MONGODB_URI: 'mongodb://mongo/hoopgate',
        },
      },
    );
    assert.equal(check.stderr, '');
    assert.equal(check.stdout, 'configuration ok: 2 clusters, 3 identities, store mongodb://mongo/hoopgate\n');
    assert.equal(check.status, 0);
  });
});
