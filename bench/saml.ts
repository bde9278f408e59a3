// SAML token exchange figures (issue #14): latency p50/p99 of one exchange at a time, and
// exchanges per second with several in flight. `hoopgate demo` (gateway + embedded SQLite store,
// synchronous=FULL) runs as a separate process; this process signs the assertions beforehand (so
// IdP signing is not counted) and posts them over TLS with keep-alive.
// Run: node --import tsx bench/saml.ts   (HOOP_BENCH_SAML_N, HOOP_BENCH_SAML_CONCURRENCY, HOOP_BENCH_SECONDS);
// also cell (g) of `npm run bench`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { demoSaml } from '../packages/demo/src/world.js';
import { createLocalSamlIdp, encodeAssertion } from '../packages/demo/src/local-saml-idp.js';

const bin = fileURLToPath(new URL('../packages/gateway/bin/hoopgate.js', import.meta.url));
const sequential = Number(process.env['HOOP_BENCH_SAML_N'] ?? 300);
const concurrency = Number(process.env['HOOP_BENCH_SAML_CONCURRENCY'] ?? 16);
const seconds = Number(process.env['HOOP_BENCH_SECONDS'] ?? 5);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

export interface SamlFigures {
  machine: string;
  sequential: { exchanges: number; p50Ms: number; p99Ms: number };
  concurrent: {
    concurrency: number;
    seconds: number;
    exchanges: number;
    perSecond: number;
    p50Ms: number;
    p99Ms: number;
  };
}

export async function benchSaml(): Promise<SamlFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-saml-'));
  // `--dir` is taken relative to the working directory: run the demo inside `dir`.
  const child = spawn(process.execPath, [bin, 'demo', '--port', '0', '--dir', '.'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    const kubeconfigPath = join(dir, 'kubeconfig');
    for (let waited = 0; !(existsSync(kubeconfigPath) && out.includes('KUBECONFIG')); waited += 100) {
      if (waited > 60_000) throw new Error(`the demo did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const kubeconfig = parseYaml(readFileSync(kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
    };
    const origin = kubeconfig.clusters[0]?.cluster.server ?? '';
    const idp = createLocalSamlIdp(demoSaml.entityId, {
      key: readFileSync(join(dir, 'saml-idp-key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'saml-idp-cert.pem'), 'utf8'),
    });
    const agent = new Agent({
      connect: { ca: readFileSync(join(dir, 'gateway-ca.pem'), 'utf8') },
      connections: concurrency,
    });
    const make = () =>
      encodeAssertion(
        idp.issue({
          nameId: demoSaml.agent.nameId,
          audience: demoSaml.audience,
          attributes: { groups: ['saml-readers'] },
        }),
      );
    const exchange = async (assertion: string): Promise<number> => {
      const started = performance.now();
      const response = await request(`${origin}/hoop/v1/token`, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:saml2-bearer')}&assertion=${assertion}`,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`exchange refused: ${text}`);
      return performance.now() - started;
    };

    // Every assertion is signed before any is sent (an idle keep-alive connection would otherwise
    // be closed by the server while the stock is being signed).
    const pool = Array.from({ length: sequential }, make);
    const stock = Array.from({ length: Math.max(2000, concurrency * 150) }, make);
    for (let i = 0; i < 20; i += 1) await exchange(make());
    const latencies: number[] = [];
    for (const assertion of pool) latencies.push(await exchange(assertion));
    latencies.sort((a, b) => a - b);

    // Throughput: `concurrency` in flight for `seconds`, assertions signed ahead of time.
    let next = 0;
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    const loaded: number[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const assertion = stock[next++];
          if (assertion === undefined) throw new Error('ran out of pre-signed assertions: raise the stock');
          loaded.push(await exchange(assertion));
          done += 1;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    loaded.sort((a, b) => a - b);
    const round = (n: number) => Math.round(n * 100) / 100;
    const figures = {
      machine: `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
      sequential: {
        exchanges: latencies.length,
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
      },
      concurrent: {
        concurrency,
        seconds: round(elapsed),
        exchanges: done,
        perSecond: round(done / elapsed),
        p50Ms: round(percentile(loaded, 50)),
        p99Ms: round(percentile(loaded, 99)),
      },
    };
    await agent.close();
    return figures;
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${JSON.stringify(await benchSaml(), null, 2)}\n`);
}
