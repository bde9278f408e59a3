// Loaded into the measured process by the hostile bench (`node --import …/memory-probe.mjs`, through
// NODE_OPTIONS) when it was started with an IPC channel: answers `{ op: 'memory', gc? }` with what
// /proc cannot tell apart — V8's heap, external and ArrayBuffer memory — and writes a heap snapshot
// on `{ op: 'snapshot', path }`. Plain JavaScript, so it loads into the compiled `dist/` gateway.
import { readFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

if (typeof process.send === 'function') {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  // Worker threads are kept track of, so that `gc` collects their heaps too: a heap snapshot of a
  // worker (read and thrown away) runs a full collection in it first.
  const threads = createRequire(import.meta.url)('node:worker_threads');
  const workerThreads = new Set();
  threads.Worker = class TrackedWorker extends threads.Worker {
    constructor(...args) {
      super(...args);
      workerThreads.add(this);
      this.once('exit', () => workerThreads.delete(this));
    }
  };
  syncBuiltinESMExports();
  const collect = async () => {
    for (const worker of workerThreads) {
      const snapshot = await worker.getHeapSnapshot();
      await new Promise((resolve, reject) => snapshot.once('end', resolve).once('error', reject).resume());
    }
    gc();
  };
  const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
  const proc = () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    const kb = (name) => mb(field(name) * 1024);
    return { rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile'), threads: field('Threads') };
  };
  process.on('message', async (message) => {
    if (message?.op === 'memory') {
      if (message.gc === true) await collect();
      const m = process.memoryUsage();
      // Worker threads (the SQLite writer) have heaps of their own, outside memoryUsage().
      const workers = process.report.getReport().workers ?? [];
      const workerHeap = (key) => workers.reduce((sum, w) => sum + (w.javascriptHeap?.[key] ?? 0), 0);
      process.send({
        probe: 'memory',
        id: message.id,
        ...proc(),
        heapTotal: mb(m.heapTotal),
        heapUsed: mb(m.heapUsed),
        external: mb(m.external),
        arrayBuffers: mb(m.arrayBuffers),
        workers: workers.length,
        workerHeapTotal: mb(workerHeap('totalMemory')),
        workerHeapUsed: mb(workerHeap('usedMemory')),
      });
    } else if (message?.op === 'snapshot') {
      await collect();
      process.send({ probe: 'snapshot', id: message.id, path: writeHeapSnapshot(message.path) });
    }
  });
  // The probe must not keep the process alive.
  process.channel?.unref();
}
