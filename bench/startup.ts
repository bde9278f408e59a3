// Start-up figures of the compiled CLI (issue #11): what an agent pays before kubectl sends a byte
// (`hoopgate token` with a cached token — kubectl runs it before every call), `hoopgate --help`,
// and the gateway's RSS at idle after start with the embedded SQLite store.
// Median of 7 runs each. Run: `npm run build && node --conditions=source --import tsx bench/startup.ts`
// (also a cell of `npm run bench`). Writes bench/startup.md.
import { spawn, spawnSync } from 'node:child_process';
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
  tokenCachedMs: number[];
  helpMs: number[];
  idleRssMb: number[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

function timeCommand(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
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
      } catch {}
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
    const [, ...tokenArgs] = world.tokenCommand('ci-deployer');
    const tokenEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } }) };
    timeCommand(tokenArgs, tokenEnv); // fills the cache
    const tokenCachedMs = Array.from({ length: runs }, () => timeCommand(tokenArgs, tokenEnv));
    const helpMs = Array.from({ length: runs }, () => timeCommand([bin, '--help']));
    // The in-process gateway gives its port to a compiled `hoopgate serve` with the same config.
    const url = world.gateway.url;
    await world.gateway.close();
    const port = new URL(url).port;
    const config = readFileSync(world.configPath, 'utf8').replace(/port: \d+/, `port: ${port}`);
    const configPath = join(dir, 'serve.yaml');
    writeFileSync(configPath, config);
    const idleRssMb: number[] = [];
    for (let i = 0; i < runs; i++) idleRssMb.push(await idleRss(configPath, url, world.gatewayTls.ca));
    return { tokenCachedMs, helpMs, idleRssMb };
  } finally {
    await world.sim.close();
    await world.idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function startupTable(figures: StartupFigures): string {
  const row = (what: string, values: number[], unit: string, target: string, ok: (m: number) => boolean) =>
    `| ${what} | ${median(values).toFixed(unit === 'MB' ? 1 : 0)} ${unit} | ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} | ${target} | ${ok(median(values)) ? 'PASS' : 'MISS'} |`;
  return [
    '| what (compiled, median of 7) | median | range | target | verdict |',
    '|---|---|---|---|---|',
    row('`hoopgate token`, cached token (kubectl runs it before every call)', figures.tokenCachedMs, 'ms', '≤ 100 ms', (m) => m <= 100),
    row('`hoopgate --help`', figures.helpMs, 'ms', '≤ 150 ms', (m) => m <= 150),
    row('`hoopgate serve` RSS at idle after start (SQLite store)', figures.idleRssMb, 'MB', '≤ 120 MB', (m) => m <= 120),
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
