// The log's bounded, batched write path (issue #13): every line in order, one write per batch, a bound
// that drops (and counts, and says so once) instead of growing, and a stop or an exit that flushes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { logFlushComponent } from '../../packages/gateway/src/compose/context.js';
import { createLogBuffer } from '../../packages/gateway/src/lib/log-buffer.js';
import { createLifecycle } from '../../packages/gateway/src/lib/lifecycle.js';
import { createLogger } from '../../packages/gateway/src/lib/logger.js';
import { createMetrics } from '../../packages/gateway/src/lib/metrics.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function capture() {
  const writes: string[] = [];
  return {
    writes,
    lines: () => writes.join('').split('\n').filter(Boolean),
    target: { write: (chunk: string) => writes.push(chunk) > 0 },
  };
}

describe('bounded asynchronous logging', () => {
  it('writes 10,000 lines, all of them, in order, in a few batched writes off the calling tick', async () => {
    const out = capture();
    // A long delay: only full batches go out during the loop, and the last one on flush.
    const logger = createLogger({ destination: out.target as never, buffer: { delayMs: 60_000 } });
    for (let seq = 0; seq < 10_000; seq += 1) {
      logger.info({ seq, path: `/api/v1/namespaces/ns/pods/p${seq}` }, 'request');
      if (seq % 500 === 499) await tick();
    }
    assert.ok(out.writes.length < 10_000, 'nothing may be written before the batch runs');
    logger.flush?.();
    const seqs = out.lines().map((line) => (JSON.parse(line) as { seq: number }).seq);
    assert.equal(seqs.length, 10_000);
    assert.deepEqual(
      seqs,
      Array.from({ length: 10_000 }, (_, i) => i),
    );
    const batches = Math.ceil(out.writes.join('').length / 65_536) + 1;
    assert.ok(out.writes.length <= batches, `one write per 64 KiB batch: ${out.writes.length} > ${batches}`);
  });

  it('one line per turn (one request at a time) is still one write per delay, not one per line', async () => {
    const out = capture();
    // The batch's timer is held by the test, so a slow machine's ticks cannot fire it early.
    const timers: (() => void)[] = [];
    const buffer = createLogBuffer(out.target, { schedule: (flush) => timers.push(flush) });
    for (let i = 0; i < 20; i += 1) {
      buffer.write(`{"seq":${i}}\n`);
      await tick();
    }
    assert.equal(out.writes.length, 0, 'nothing written before the delay');
    assert.equal(timers.length, 1, 'one timer for the twenty lines');
    timers.shift()?.();
    assert.equal(out.writes.length, 1);
    assert.equal(out.lines().length, 20);
    buffer.write(`${'y'.repeat(70_000)}\n`);
    assert.equal(out.writes.length, 2, 'a full batch (64 KiB) is written at once');
  });

  it('the default delay is a real timer: lines queued now are written about delayMs later', async () => {
    const out = capture();
    const buffer = createLogBuffer(out.target, { delayMs: 30 });
    buffer.write('{"seq":0}\n');
    assert.equal(out.writes.length, 0, 'not written on the calling tick');
    await sleep(80);
    assert.equal(out.writes.length, 1);
  });

  it('drops beyond the bound instead of growing, counts the drops and says so once per episode', async () => {
    const written: string[] = [];
    let drain: (() => void) | undefined;
    // A destination that is full after its first write and drains only when told.
    const slow = {
      write: (chunk: string) => written.push(chunk) < 0,
      once: (_event: 'drain', listener: () => void) => (drain = listener),
    };
    const metrics = createMetrics();
    const buffer = createLogBuffer(slow, {
      maxBufferedBytes: 10_000,
      onDrop: (lines) => metrics.logLinesDropped.inc(lines),
      schedule: (flush) => setImmediate(flush),
    });
    const line = `${'x'.repeat(99)}\n`;
    buffer.write(line);
    await tick(); // the first batch went out; the destination is now full
    for (let i = 0; i < 5_000; i += 1) buffer.write(line);
    await tick();
    assert.equal(written.length, 1, 'nothing more is written while the destination is full');
    assert.ok(buffer.stats().bufferedBytes <= 10_000, `queued ${buffer.stats().bufferedBytes} bytes`);
    assert.equal(buffer.stats().dropped, 4_900);
    const counter = await metrics.registry.getSingleMetricAsString('hoopgate_log_lines_dropped_total');
    assert.match(counter, /hoopgate_log_lines_dropped_total 4900/);
    drain?.();
    await tick();
    const notices = written
      .join('')
      .split('\n')
      .filter((l) => l.includes('log: dropping lines'));
    assert.equal(notices.length, 1, 'one notice for the whole episode');
    assert.equal(
      written
        .join('')
        .split('\n')
        .filter((l) => l === 'x'.repeat(99)).length,
      101,
    );
  });

  it('a stop writes the queued lines before it returns, with no tick in between', async () => {
    const out = capture();
    const logger = createLogger({ destination: out.target as never });
    const life = createLifecycle({ logger });
    await life.start(logFlushComponent({ logger } as never));
    await life.start({ name: 'last words', start() {}, stop: () => logger.info({}, 'stopped cleanly') });
    await life.stop();
    assert.ok(
      out.lines().some((l) => l.includes('stopped cleanly')),
      'the line logged during the stop is written',
    );
  });

  it('secret-bearing fields are redacted at the top, one object down and in req.headers', () => {
    const out = capture();
    const logger = createLogger({ destination: out.target as never });
    const canary = 'canary-9f2c';
    logger.info({ token: canary, body: canary, path: '/ok', upstream: { authorization: canary, secret: canary } }, 'a');
    logger.info({ req: { headers: { authorization: `Bearer ${canary}`, accept: 'json' } } }, 'b');
    logger.info({ deeper: { nested: { token: 'three levels down is the caller’s business' } } }, 'c');
    logger.flush?.();
    const text = out.writes.join('');
    assert.ok(!text.includes(canary), text);
    const [a, b] = out.lines().map((line) => JSON.parse(line) as Record<string, Record<string, unknown>>);
    assert.equal(a?.['token'], '[redacted]');
    assert.equal(a?.['path'], '/ok');
    assert.deepEqual(a?.['upstream'], { authorization: '[redacted]', secret: '[redacted]' });
    assert.deepEqual(b?.['req'], { headers: { authorization: '[redacted]', accept: 'json' } });
  });

  it('process.exit right after logging loses no line', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const script = `
      const { createLogger } = await import(${JSON.stringify(join(here, '../../packages/gateway/src/lib/logger.ts'))});
      const logger = createLogger();
      for (let seq = 0; seq < 2000; seq += 1) logger.info({ seq }, 'before exit');
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const seqs = child.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    assert.equal(seqs.length, 2000);
    assert.equal(seqs[1999], 1999);
  });
});
