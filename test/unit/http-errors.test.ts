// The one error middleware at the top of the Koa app (issue #15): a HoopError becomes its Status,
// anything else a generic 500 Status whose detail only the log sees.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import { statusOnError } from '../../packages/gateway/src/http/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createLogger } from '../../packages/gateway/src/lib/logger.js';

describe('statusOnError', () => {
  const lines: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => lines.push(line) > 0 } as never });
  let server: ReturnType<Koa['listen']>;
  let base: string;
  before(async () => {
    const app = new Koa();
    app.silent = true;
    app.use(statusOnError(logger));
    app.use(async (ctx) => {
      ctx.set('X-Half-Done', 'yes');
      if (ctx.path === '/hoop') throw new HoopError('ERR_FORBIDDEN', 'not for you: ask an operator');
      throw new Error('connection string mongodb://admin:s3cret@db failed');
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('a HoopError becomes its Status', async () => {
    const response = await fetch(`${base}/hoop`);
    assert.equal(response.status, 403);
    const status = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'hoopgate: not for you: ask an operator',
      reason: 'Forbidden',
      code: 403,
    });
  });

  test('anything else is a generic 500 Status; the detail is only in the log', async () => {
    const response = await fetch(`${base}/other`);
    assert.equal(response.status, 500);
    assert.equal(response.headers.get('x-half-done'), null, 'headers set before the error are dropped');
    const text = await response.text();
    assert.ok(!text.includes('s3cret') && !text.includes('mongodb'), text);
    const status = JSON.parse(text) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 500);
    assert.equal(status['reason'], 'InternalError');
    assert.match(
      String(status['message']),
      /^hoopgate: internal error in the gateway; the gateway log has the details$/,
    );
    logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
    assert.ok(
      lines.some((line) => line.includes('s3cret')),
      'the detail is logged for the operator',
    );
  });
});
