// Start-up figures of the compiled CLI (issue #11): what an agent pays before kubectl sends a byte
// (`hoopgate token` with a cached token — kubectl runs it before every call), `hoopgate --help`,
// and the gateway's RSS at idle after start with the embedded SQLite store.
// The token is timed three ways: the bare command in this environment (which may set
// NODE_EXTRA_CA_CERTS, as many corporate machines do: Node then parses that bundle at every start),
// the same without NODE_EXTRA_CA_CERTS, and exactly as a kubeconfig written by `hoopgate kubeconfig`
// runs it (its command, arguments and exec env over this environment, as kubectl does).
// Median of 15 runs each, the cells taken in turn so that a busy machine slows them alike.
// Run: `npm run build && node --conditions=source --import tsx bench/startup.ts`
// (also a cell of `npm run bench`). Writes bench/startup.md.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { run as kubeconfigCommand } from '../packages/gateway/src/cli/kubeconfig.js';
import { startDemoWorld } from '../packages/demo/src/world.js';

const bin = fileURLToPath(new URL('../packages/gateway/bin/hoopgate.js', import.meta.url));
const runs = 15;
/** `npx hoopgate token` (kubeconfig --npx) starts npm first: a few runs show its order of magnitude. */
const npxRuns = 5;

export interface StartupFigures {
  /** `node -e 0`: Node's own start on this machine, the floor under every figure here. */
  nodeMs: number[];
  /** The bare `node bin/hoopgate.js token …` in this environment. */
  tokenCachedMs: number[];
  /** As a kubeconfig written by `hoopgate kubeconfig` runs it (NODE_EXTRA_CA_CERTS emptied by its exec env). */
  tokenKubeconfigMs: number[];
  /** As a kubeconfig written by `hoopgate kubeconfig --npx` runs it. */
  tokenNpxMs: number[];
  helpMs: number[];
  /** NODE_EXTRA_CA_CERTS as this environment has it (undefined: unset). */
  extraCaCerts?: string;
  /** The same without NODE_EXTRA_CA_CERTS when the environment sets it. */
  withoutExtraCa?: { nodeMs: number[]; tokenCachedMs: number[]; helpMs: number[] };
  idleRssMb: number[];
  /** CPU time per run (user + system), by cell name. */
  cpuMs: Record<string, number[]>;
  /** 1-minute load average before and after the timings: the machine may be shared. */
  load: [number, number];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Wall time of one command. Asynchronous: the local IdP answering the first token request runs in this process. */
async function timeCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  command = process.execPath,
): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr}`);
  return ms;
}

/**
 * CPU time (user + system) of one run, from bash's `times` (getrusage of its children, ms
 * resolution): on a shared machine it moves far less than wall time, which includes waiting for a core.
 */
async function cpuCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  command = process.execPath,
): Promise<number> {
  const child = spawn('bash', ['-c', '"$@" >/dev/null 2>&1 || exit 1; times', 'bash', command, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = (await once(child, 'close')) as [number | null];
  const children = out.trim().split('\n')[1] ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (code !== 0 || seconds.length !== 2) throw new Error(`${command} ${args.join(' ')}: exit ${code}, times ${out}`);
  return ((seconds[0] ?? 0) + (seconds[1] ?? 0)) * 1000;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1]) / 1024;
}

async function idleRss(configPath: string, url: string, ca: string): Promise<number> {
  const child = spawn(process.execPath, [bin, 'serve', '--config', configPath], { stdio: 'ignore' });
  const agent = new Agent({ connect: { ca } });
  try {
    for (let waited = 0; ; waited += 100) {
      if (waited > 30_000) throw new Error('the gateway did not answer /hoop/healthz within 30 s');
      try {
        const response = await request(`${url}/hoop/healthz`, { dispatcher: agent });
        await response.body.dump();
        if (response.statusCode === 200) break;
      } catch {
        // not listening yet: try again
      }
      await sleep(100);
    }
    await sleep(2000); // idle: let start-up garbage be collected and timers settle
    return rssMb(child.pid as number);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('close', resolve));
    await agent.close();
  }
}

/** Runs each named command `times` times, taking the cells in turn. */
async function roundRobin(
  cells: Record<string, () => Promise<number>>,
  times: number,
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(cells).map((k) => [k, []]));
  for (let i = 0; i < times; i++) for (const [name, run] of Object.entries(cells)) out[name]?.push(await run());
  return out;
}

/** The exec entry `hoopgate kubeconfig` writes for an agent, and the environment kubectl gives it. */
async function writtenPlugin(
  world: Awaited<ReturnType<typeof startDemoWorld>>,
  baseEnv: NodeJS.ProcessEnv,
  extra: string[],
): Promise<{ args: string[]; command: string; env: NodeJS.ProcessEnv }> {
  let yaml = '';
  const code = await kubeconfigCommand(
    [
      ...['--server', world.gateway.url, '--issuer', world.idp.issuer, '--client-id', 'ci-deployer'],
      ...['--audience', 'hoopgate', '--client-secret-file', join(world.dir, 'ci-deployer.secret')],
      ...['--idp-ca-file', join(world.dir, 'idp-ca.pem'), ...extra],
    ],
    {
      stdout: (t) => void (yaml += t),
      stderr: (t) => process.stderr.write(t),
      env: process.env,
      cwd: process.cwd(),
      stopSignal: new AbortController().signal,
    },
  );
  if (code !== 0) throw new Error('hoopgate kubeconfig failed');
  const exec = (
    parseYaml(yaml) as {
      users: { user: { exec: { command: string; args: string[]; env: { name: string; value: string }[] } } }[];
    }
  ).users[0]?.user.exec;
  if (exec === undefined) throw new Error('no exec entry in the written kubeconfig');
  const env = { ...baseEnv, ...Object.fromEntries(exec.env.map((e) => [e.name, e.value])) };
  return { command: exec.command, args: exec.args, env };
}

export async function benchStartup(): Promise<StartupFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'hoopgate-startup-'));
  const world = await startDemoWorld({ dir, port: 0, logDestination: new Writable({ write: (_c, _e, cb) => cb() }) });
  try {
    const tokenArgs = world.tokenCommand('ci-deployer'); // [bin, 'token', …]: run with node
    const execInfo = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      spec: { interactive: false },
    });
    // kubectl's environment: this one, with the plugin's default cache in the bench folder.
    const kubectlEnv = { ...process.env, KUBERNETES_EXEC_INFO: execInfo, XDG_CACHE_HOME: join(dir, 'xdg') };
    const written = await writtenPlugin(world, kubectlEnv, []);
    const npx = await writtenPlugin(world, kubectlEnv, ['--npx']);
    const { NODE_EXTRA_CA_CERTS: extraCaCerts, ...withoutCa } = process.env;
    // Fill the caches (a miss: the local IdP in this process answers).
    await timeCommand(tokenArgs, kubectlEnv);
    await timeCommand(written.args, written.env, written.command);
    const load0 = loadavg()[0] ?? Number.NaN;
    const cells = await roundRobin(
      {
        nodeMs: () => timeCommand(['-e', '0']),
        tokenCachedMs: () => timeCommand(tokenArgs, kubectlEnv),
        tokenKubeconfigMs: () => timeCommand(written.args, written.env, written.command),
        helpMs: () => timeCommand([bin, '--help']),
        ...(extraCaCerts === undefined
          ? {}
          : {
              nodeNoCa: () => timeCommand(['-e', '0'], withoutCa),
              tokenNoCa: () => timeCommand(tokenArgs, { ...withoutCa, KUBERNETES_EXEC_INFO: execInfo }),
              helpNoCa: () => timeCommand([bin, '--help'], withoutCa),
            }),
      },
      runs,
    );
    const { tokenNpxMs = [] } = await roundRobin(
      { tokenNpxMs: () => timeCommand(npx.args, npx.env, npx.command) },
      npxRuns,
    );
    const here = extraCaCerts === undefined ? '' : ', with NODE_EXTRA_CA_CERTS';
    const cpuMs = await roundRobin(
      {
        [`\`node -e 0\`${here}`]: () => cpuCommand(['-e', '0']),
        '`hoopgate token` cached, as the written kubeconfig runs it': () =>
          cpuCommand(written.args, written.env, written.command),
        [`\`node bin/hoopgate.js token …\` cached, bare${here}`]: () => cpuCommand(tokenArgs, kubectlEnv),
        ...(extraCaCerts === undefined
          ? {}
          : {
              '`node -e 0`, without NODE_EXTRA_CA_CERTS': () => cpuCommand(['-e', '0'], withoutCa),
              '`node bin/hoopgate.js token …` cached, bare, without NODE_EXTRA_CA_CERTS': () =>
                cpuCommand(tokenArgs, { ...withoutCa, KUBERNETES_EXEC_INFO: execInfo }),
            }),
      },
      runs,
    );
    const load1 = loadavg()[0] ?? Number.NaN;
    const figures = {
      cpuMs,
      nodeMs: cells.nodeMs ?? [],
      tokenCachedMs: cells.tokenCachedMs ?? [],
      tokenKubeconfigMs: cells.tokenKubeconfigMs ?? [],
      tokenNpxMs,
      helpMs: cells.helpMs ?? [],
      ...(extraCaCerts === undefined
        ? {}
        : {
            extraCaCerts,
            withoutExtraCa: {
              nodeMs: cells.nodeNoCa ?? [],
              tokenCachedMs: cells.tokenNoCa ?? [],
              helpMs: cells.helpNoCa ?? [],
            },
          }),
    };
    // The in-process gateway gives its port to a compiled `hoopgate serve` with the same config.
    const url = world.gateway.url;
    await world.gateway.close();
    const port = new URL(url).port;
    const config = readFileSync(world.configPath, 'utf8').replace(/port: \d+/, `port: ${port}`);
    const configPath = join(dir, 'serve.yaml');
    writeFileSync(configPath, config);
    const idleRssMb: number[] = [];
    for (let i = 0; i < runs; i++) idleRssMb.push(await idleRss(configPath, url, world.gatewayTls.ca));
    return { ...figures, idleRssMb, load: [load0, load1] };
  } finally {
    await world.sim.close();
    await world.idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function startupTable(figures: StartupFigures): string {
  const row = (what: string, values: number[], unit: string, target: string, ok?: (m: number) => boolean) =>
    `| ${what} | ${values.length} | ${median(values).toFixed(unit === 'MB' ? 1 : 0)} ${unit} | ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} | ${target} | ${ok === undefined ? '—' : ok(median(values)) ? 'PASS' : 'MISS'} |`;
  const ms100 = (m: number) => m <= 100;
  const ms150 = (m: number) => m <= 150;
  const ca = figures.extraCaCerts === undefined ? 'NODE_EXTRA_CA_CERTS unset' : 'with NODE_EXTRA_CA_CERTS';
  const without = figures.withoutExtraCa;
  return [
    '| what (compiled) | runs | median | range | target | verdict |',
    '|---|---|---|---|---|---|',
    row(`\`node -e 0\` (the floor: Node itself), ${ca}`, figures.nodeMs, 'ms', '—'),
    ...(without === undefined ? [] : [row('`node -e 0`, without NODE_EXTRA_CA_CERTS', without.nodeMs, 'ms', '—')]),
    row(
      '`hoopgate token`, cached, as a kubeconfig written by `hoopgate kubeconfig` runs it (what kubectl runs before every call)',
      figures.tokenKubeconfigMs,
      'ms',
      '≤ 100 ms',
      ms100,
    ),
    row(`\`node bin/hoopgate.js token …\` cached, bare, ${ca}`, figures.tokenCachedMs, 'ms', '≤ 100 ms', ms100),
    ...(without === undefined
      ? []
      : [
          row(
            '`node bin/hoopgate.js token …` cached, bare, without NODE_EXTRA_CA_CERTS',
            without.tokenCachedMs,
            'ms',
            '≤ 100 ms',
            ms100,
          ),
        ]),
    row('`hoopgate token` cached, as `hoopgate kubeconfig --npx` writes it (npx first)', figures.tokenNpxMs, 'ms', '—'),
    row(`\`hoopgate --help\`, ${ca}`, figures.helpMs, 'ms', '≤ 150 ms', ms150),
    ...(without === undefined
      ? []
      : [row('`hoopgate --help`, without NODE_EXTRA_CA_CERTS', without.helpMs, 'ms', '≤ 150 ms', ms150)]),
    row(
      '`hoopgate serve` RSS at idle after start (SQLite store)',
      figures.idleRssMb,
      'MB',
      '≤ 120 MB',
      (m) => m <= 120,
    ),
  ].join('\n');
}

export function startupCpuTable(figures: StartupFigures): string {
  return [
    '| CPU time per run (user + system) | runs | median | range |',
    '|---|---|---|---|',
    ...Object.entries(figures.cpuMs).map(
      ([what, values]) =>
        `| ${what} | ${values.length} | ${median(values).toFixed(0)} ms | ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} |`,
    ),
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await benchStartup();
  const table = `${startupTable(figures)}\n\n${startupCpuTable(figures)}`;
  const text = `# Start-up figures\n\nMeasured by \`node --conditions=source --import tsx bench/startup.ts\` on ${new Date().toISOString().slice(0, 16)}Z (${process.version}, ${cpus().length} cores, 1-minute load average ${figures.load[0].toFixed(1)} before the timings and ${figures.load[1].toFixed(1)} after; with other work on the machine these are upper bounds).\n\n${table}\n`;
  writeFileSync(new URL('./startup.md', import.meta.url), text);
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
