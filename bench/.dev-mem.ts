const mb = (v: number) => Math.round(v / 1048576);
const show = (l: string) => { globalThis.gc?.(); const m = process.memoryUsage(); console.log(l.padEnd(40), 'rss', mb(m.rss), 'heap', mb(m.heapUsed), 'ext', mb(m.external)); };
show('start');
for (const mod of process.argv.slice(2)) { await import(mod); show(mod); }
