// temporary dev script
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { memoryOf, startChild } from './children.js';
import type { GatewayInfo, UpstreamInfo } from './servers.js';
const work = mkdtempSync(join(tmpdir(), 'hoop-held-'));
const n = Number(process.argv[2] ?? 2000);
const up = await startChild<UpstreamInfo>('upstream', { dir: join(work, 'world'), heldObjects: n }, { logFile: join(work, 'up.out') });
const ca = readFileSync(up.info.gatewayCaFile, 'utf8');
const token = await up.call<string>('token', 'ci-deployer');
const gw = await startChild<GatewayInfo>('gateway', { configPath: up.info.configPath, replicaId: 'h', logFile: join(work, 'h.jsonl') }, { logFile: join(work, 'h.out') });
await new Promise((r) => setTimeout(r, 1500));
console.log('idle', JSON.stringify(await gw.call('memory')));
const pool = new Pool(gw.info.url, { connections: n, connect: { ca, timeout: 60000 }, headersTimeout: 0, bodyTimeout: 0 });
for (let i = 0; i < n; i++) pool.request({ path: `/api/v1/namespaces/held/configmaps/cm-${i}`, method: 'GET', headers: { authorization: `Bearer ${token}` } }).then((r) => r.body.dump(), () => {});
const t0 = performance.now();
while ((await gw.call<number>('held')) < n) await new Promise((r) => setTimeout(r, 200));
console.log('held', n, 'in', ((performance.now() - t0) / 1000).toFixed(1), 's', JSON.stringify(await gw.call('memory')), JSON.stringify(memoryOf(gw.pid)));
if (process.argv[3] === 'snap') { const f = await gw.call<string>('heap-snapshot', join(work, 'h.heapsnapshot'), 300000); console.log('snapshot', f); }
await gw.stop(60000); await pool.destroy(); await up.stop();
