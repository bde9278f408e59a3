// lib/lifecycle.ts: parts start in order and stop in reverse; a failed start stops what had started.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createLifecycle } from '../../packages/gateway/src/lib/lifecycle.js';
import { silentLogger } from '../../packages/gateway/src/lib/logger.js';

function recording() {
  const events: string[] = [];
  const part = (name: string, options: { failStart?: boolean; failStop?: boolean } = {}) => ({
    name,
    async start() {
      if (options.failStart === true) throw new HoopError('ERR_CONFIG', `${name} cannot start`);
      events.push(`start ${name}`);
      return name.toUpperCase();
    },
    async stop(value: string) {
      events.push(`stop ${name} (${value})`);
      if (options.failStop === true) throw new HoopError('ERR_INTERNAL', `${name} cannot stop`);
    },
  });
  return { events, part };
}

describe('lifecycle', () => {
  it('starts parts in order, hands their values on, and stops them in reverse, once', async () => {
    const { events, part } = recording();
    const life = createLifecycle({ logger: silentLogger });
    const a = await life.start(part('a'));
    const b = await life.start(part('b'));
    await life.start({ name: 'no stop', start: () => 42 });
    assert.deepEqual([a, b], ['A', 'B']);
    assert.deepEqual(life.running, ['a', 'b', 'no stop']);
    await Promise.all([life.stop(), life.stop()]);
    await life.stop();
    assert.deepEqual(events, ['start a', 'start b', 'stop b (B)', 'stop a (A)']);
    assert.deepEqual(life.running, []);
  });

  it('a failed start stops the parts already started, newest first, and rethrows the start failure', async () => {
    const { events, part } = recording();
    const life = createLifecycle({ logger: silentLogger });
    await assert.rejects(
      life.boot(async () => {
        await life.start(part('store'));
        await life.start(part('recorder', { failStop: true }));
        await life.start(part('listener', { failStart: true }));
        await life.start(part('never'));
      }),
      (error: unknown) =>
        error instanceof HoopError && error.code === 'ERR_CONFIG' && error.message === 'listener cannot start',
    );
    assert.deepEqual(events, ['start store', 'start recorder', 'stop recorder (RECORDER)', 'stop store (STORE)']);
  });

  it('a failing stop does not keep the others running; stop() then rejects with it', async () => {
    const { events, part } = recording();
    const errors: unknown[] = [];
    const logger = {
      ...silentLogger,
      error: (fields: unknown) => errors.push(fields),
    } as unknown as typeof silentLogger;
    const life = createLifecycle({ logger });
    await life.start(part('a'));
    await life.start(part('b', { failStop: true }));
    await life.start(part('c'));
    await assert.rejects(life.stop(), /b cannot stop/);
    assert.deepEqual(events, ['start a', 'start b', 'start c', 'stop c (C)', 'stop b (B)', 'stop a (A)']);
    assert.equal(errors.length, 1);
  });

  it('refuses to start a part once stopping began', async () => {
    const life = createLifecycle({ logger: silentLogger });
    await life.stop();
    await assert.rejects(
      life.start({ name: 'late', start: () => 1 }),
      (error: unknown) => error instanceof HoopError && error.code === 'ERR_SHUTTING_DOWN',
    );
  });
});
