// temporary dev script (deleted before handing back)
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild } from './children.js';
import { runLoad } from './load.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
import { summarizeCpuProfile, type CpuProfile } from './stats.js';
const work = mkdtempSync(join(tmpdir(), 'hoop-prof-'));
const c = Number(process.argv[2] ?? 32);
const up = await startChild<UpstreamInfo>('upstream', { dir: join(work, 'world'), heldObjects: 0 }, { logFile: join(work, 'up.out') });
const ca = readFileSync(up.info.gatewayCaFile, 'utf8');
const gw = await startChild<GatewayInfo>('gateway', { configPath: up.info.configPath, replicaId: 'p', logFile: join(work, 'gw.jsonl') }, { logFile: join(work, 'gw.out') });
await new Promise((r) => setTimeout(r, 1500));
const token = await up.call<string>('token', 'ci-deployer');
const file = join(work, 'p.cpuprofile');
const prof = process.argv[3] !== 'noprof';
const st0 = await gw.call<any>('audit-stats');
const res = await runLoad({ origin: gw.info.url, path: '/api/v1/namespaces/staging/configmaps/app-config', headers: { authorization: `Bearer ${token}` }, ca, concurrency: c, warmupMs: 1000, durationMs: 4000, maxRequests: 1e6, onWindowStart: () => { if (prof) void gw.call('profile-start'); } });
console.log(JSON.stringify(res));
console.log('audit', JSON.stringify(st0), JSON.stringify(await gw.call('audit-stats')));
if (!prof) { await gw.stop(); await up.stop(); process.exit(0); }
await gw.call('profile-stop', file);
console.log(JSON.stringify(res));
const s = summarizeCpuProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, 30, '/work/main/');
console.log('busy', s.busyMs, 'idle', s.idleMs);
for (const f of s.frames) console.log(f.selfPercent.toString().padStart(5), f.selfMs.toString().padStart(8), f.frame);
console.log('profile', file);
await gw.stop(); await up.stop();
