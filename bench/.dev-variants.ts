// temporary dev script (deleted before handing back)
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { cpuSecondsOf, startChild } from './children.js';
import { runLoad } from './load.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
const work = mkdtempSync(join(tmpdir(), 'hoop-var-'));
const c = Number(process.argv[2] ?? 1);
const up = await startChild<UpstreamInfo>('upstream', { dir: join(work, 'world'), heldObjects: 0 }, { logFile: join(work, 'up.out') });
const ca = readFileSync(up.info.gatewayCaFile, 'utf8');
const token = await up.call<string>('token', 'ci-deployer');
const variants: Record<string, (d: any) => void> = {
  default: () => {},
  noBodies: (d) => { d.audit.bodies = false; },
  noMaskRules: (d) => { d.masking.rules = []; },
  memoryStore: (d) => { d.audit.store = 'sqlite::memory:'; },
  memNoBodiesNoRules: (d) => { d.audit.store = 'sqlite::memory:'; d.audit.bodies = false; d.masking.rules = []; },
};
for (const [name, edit] of Object.entries(variants)) {
  if (process.argv[3] && !process.argv.slice(3).includes(name)) continue;
  const doc = parse(readFileSync(up.info.configPath, 'utf8'));
  edit(doc);
  const path = join(work, `${name}.yaml`);
  writeFileSync(path, stringify(doc));
  const gw = await startChild<GatewayInfo>('gateway', { configPath: path, replicaId: name, logFile: join(work, `${name}.jsonl`) }, { logFile: join(work, `${name}.out`) });
  await new Promise((r) => setTimeout(r, 1500));
  let cpu0 = 0; let t0 = 0;
  const res = await runLoad({ origin: gw.info.url, path: '/api/v1/namespaces/staging/configmaps/app-config', headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' }, ca, concurrency: c, warmupMs: 1000, durationMs: 4000, maxRequests: 1e6, onWindowStart: () => { cpu0 = cpuSecondsOf(gw.pid); t0 = performance.now(); } });
  const cpu = cpuSecondsOf(gw.pid) - cpu0; const el = (performance.now() - t0) / 1000;
  console.log(name.padEnd(20), `c=${c}`, `${res.requestsPerSecond} req/s`, `p50 ${res.p50Ms}`, `p99 ${res.p99Ms}`, `gw cores ${(cpu / el).toFixed(2)}`, `cpu/req ${(1000 * cpu / (res.requestsPerSecond * el)).toFixed(2)} ms`, `errors ${res.errors} ${res.firstError ?? ''}`);
  const { readdirSync } = await import('node:fs');
  for (const tid of readdirSync(`/proc/${gw.pid}/task`)) {
    const st = readFileSync(`/proc/${gw.pid}/task/${tid}/stat`, 'utf8'); const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')); const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const t = (Number(f[11]) + Number(f[12])) / 100; if (t > 0.05) console.log('   thread', tid, comm.padEnd(16), t.toFixed(2), 's');
  }
  await gw.stop();
}
await up.stop();
