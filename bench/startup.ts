// Start-up figures of the compiled CLI (issue #11): what an agent pays before kubectl sends a byte
// (`hoopgate token` with a cached token — kubectl runs it before every call), `hoopgate --help`,
// and the gateway's RSS at idle after start with the embedded SQLite store.
// Median of 7 runs each. Run: `npm run build && node --conditions=source --import tsx bench/startup.ts`
// (also a cell of `npm run bench`). Writes bench/startup.md.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startDemoWorld } from '../packages/demo/src/world.js';

const bin = fileURLToPath(new URL('../packages/gateway/bin/hoopgate.js', import.meta.url));
const runs = 7;

export interface StartupFigures {
  /** `node -e 0`: Node's own start on this machine, the floor under every figure here. */
  nodeMs: number[];
  tokenCachedMs: number[];
  helpMs: number[];
  /** The same three without NODE_EXTRA_CA_CERTS when the environment sets it (Node then parses that bundle at every start). */
  withoutExtraCa?: { nodeMs: number[]; tokenCachedMs: number[]; helpMs: number[] };
  idleRssMb: number[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Wall time of one command. Asynchronous: the local IdP answering the first token request runs in this process. */
async function timeCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr}`);
  return ms;
}

async function repeat(times: number, run: () => Promise<number>): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await run());
  return values;
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

export async function benchStartup(): Promise<StartupFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'hoopgate-startup-'));
  const world = await startDemoWorld({ dir, port: 0, logDestination: new Writable({ write: (_c, _e, cb) => cb() }) });
  try {
    const tokenArgs = world.tokenCommand('ci-deployer'); // [bin, 'token', …]: run with node
    const tokenEnv = {
      ...process.env,
      KUBERNETES_EXEC_INFO: JSON.stringify({
        apiVersion: 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        spec: { interactive: false },
      }),
    };
    await timeCommand(tokenArgs, tokenEnv); // fills the cache
    const measure = async (env: NodeJS.ProcessEnv) => ({
      nodeMs: await repeat(runs, () => timeCommand(['-e', '0'], env)),
      tokenCachedMs: await repeat(runs, () =>
        timeCommand(tokenArgs, { ...env, KUBERNETES_EXEC_INFO: tokenEnv['KUBERNETES_EXEC_INFO'] }),
      ),
      helpMs: await repeat(runs, () => timeCommand([bin, '--help'], env)),
    });
    const { nodeMs, tokenCachedMs, helpMs } = await measure(process.env);
    let withoutExtraCa: StartupFigures['withoutExtraCa'];
    if (process.env['NODE_EXTRA_CA_CERTS'] !== undefined) {
      const { NODE_EXTRA_CA_CERTS: _extra, ...rest } = process.env;
      withoutExtraCa = await measure(rest);
    }
    // The in-process gateway gives its port to a compiled `hoopgate serve` with the same config.
    const url = world.gateway.url;
    await world.gateway.close();
    const port = new URL(url).port;
    const config = readFileSync(world.configPath, 'utf8').replace(/port: \d+/, `port: ${port}`);
    const configPath = join(dir, 'serve.yaml');
    writeFileSync(configPath, config);
    const idleRssMb: number[] = [];
    for (let i = 0; i < runs; i++) idleRssMb.push(await idleRss(configPath, url, world.gatewayTls.ca));
    return { nodeMs, tokenCachedMs, helpMs, ...(withoutExtraCa === undefined ? {} : { withoutExtraCa }), idleRssMb };
  } finally {
    await world.sim.close();
    await world.idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function startupTable(figures: StartupFigures): string {
  const row = (what: string, values: number[], unit: string, target: string, ok?: (m: number) => boolean) =>
    `| ${what} | ${median(values).toFixed(unit === 'MB' ? 1 : 0)} ${unit} | ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} | ${target} | ${ok === undefined ? '—' : ok(median(values)) ? 'PASS' : 'MISS'} |`;
  return [
    '| what (compiled, median of 7) | median | range | target | verdict |',
    '|---|---|---|---|---|',
    row('`node -e 0` (the floor: Node itself)', figures.nodeMs, 'ms', '—'),
    row(
      '`hoopgate token`, cached token (kubectl runs it before every call)',
      figures.tokenCachedMs,
      'ms',
      '≤ 100 ms',
      (m) => m <= 100,
    ),
    row('`hoopgate --help`', figures.helpMs, 'ms', '≤ 150 ms', (m) => m <= 150),
    ...(figures.withoutExtraCa === undefined
      ? []
      : [
          row('`node -e 0`, without NODE_EXTRA_CA_CERTS', figures.withoutExtraCa.nodeMs, 'ms', '—'),
          row(
            '`hoopgate token` cached, without NODE_EXTRA_CA_CERTS',
            figures.withoutExtraCa.tokenCachedMs,
            'ms',
            '≤ 100 ms',
            (m) => m <= 100,
          ),
          row(
            '`hoopgate --help`, without NODE_EXTRA_CA_CERTS',
            figures.withoutExtraCa.helpMs,
            'ms',
            '≤ 150 ms',
            (m) => m <= 150,
          ),
        ]),
    row(
      '`hoopgate serve` RSS at idle after start (SQLite store)',
      figures.idleRssMb,
      'MB',
      '≤ 120 MB',
      (m) => m <= 120,
    ),
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await benchStartup();
  const table = startupTable(figures);
  const text = `# Start-up figures\n\nMeasured by \`node --conditions=source --import tsx bench/startup.ts\` on ${new Date().toISOString().slice(0, 10)} (${process.version}).\n\n${table}\n`;
  writeFileSync(new URL('./startup.md', import.meta.url), text);
  process.stdout.write(`${table}\n`);
  process.exit(0);
}
