// CPU per request log line (issue #13): pino straight into sonic-boom (the logger before the bounded
// queue) against pino → lib/log-buffer.ts → sonic-boom, in interleaved rounds of one process, so the
// ratio holds on a busy machine. Run: node --conditions=source --import tsx bench/log-cost.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destination, pino } from 'pino';
import { createLogger } from '../packages/gateway/src/lib/logger.js';

type Sink = { info(obj: object, msg: string): void };
const dir = mkdtempSync(join(tmpdir(), 'hoopgate-log-cost-'));
const lines = 20_000;
const rounds = 5;

/** A request line as pipeline/completion.ts writes it. */
const fields = (i: number) => ({
  method: 'GET',
  path: '/api/v1/namespaces/staging/pods/bench-pod',
  status: 200,
  durationMs: 1,
  httpVersion: '2.0',
  requestId: `r${i}`,
  cluster: 'demo',
  identity: 'reader',
  subject: 'agent-1',
  serviceAccount: 'hoop/reader',
  effect: 'allow',
  reason: 'rule matched',
  rule: 'readers',
});

/** The logger as it was: same options, sonic-boom as pino's destination. */
function direct(): Sink {
  const paths = ['token', 'authorization', 'headers.authorization', 'req.headers.authorization', '*.token'];
  return pino(
    {
      base: { service: 'hoopgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...paths, '*.authorization', 'body', '*.body', 'secret', '*.secret'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination({ dest: join(dir, 'direct.log'), sync: false }),
  );
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** CPU (all threads of the process: the writes happen on libuv's pool) per line, µs. */
async function round(logger: Sink, perTick: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < lines; i += 1) {
    logger.info(fields(i), 'request');
    if (i % perTick === perTick - 1) await tick();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / lines;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const before = direct();
const after = createLogger({ destination: destination({ dest: join(dir, 'buffered.log'), sync: false }) });
for (const perTick of [1, 32]) {
  const figures = { before: [] as number[], after: [] as number[] };
  for (let r = 0; r < rounds; r += 1) {
    figures.before.push(await round(before, perTick));
    figures.after.push(await round(after, perTick));
  }
  const [b, a] = [median(figures.before), median(figures.after)];
  console.log(
    `${perTick} line(s) per tick: direct ${b.toFixed(2)} µs CPU/line, buffered ${a.toFixed(2)} µs CPU/line, buffered/direct ${(a / b).toFixed(2)}`,
  );
}
rmSync(dir, { recursive: true, force: true });
