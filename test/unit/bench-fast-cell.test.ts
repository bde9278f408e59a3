// The fast cell's pure parts (issue #13): the Node floor rows of its table, the verdict paragraph that
// puts the floors beside the 0.5× target, the full bench's target row, and the floor's header copy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastTarget, fastVerdict, renderFastCell, type FastFigures, type FastRow } from '../../bench/fast-cell.js';
import { copyHeaders } from '../../bench/node-floor.js';

type Measured = FastRow['direct'];

function measured(requestsPerSecond: number, p50Ms: number, p99Ms: number, cores: Record<string, number>): Measured {
  return {
    concurrency: 32,
    requestsPerSecond,
    windowMs: 2000,
    errors: 0,
    count: requestsPerSecond * 2,
    meanMs: p50Ms,
    p50Ms,
    p90Ms: p99Ms,
    p99Ms,
    maxMs: p99Ms * 2,
    cpuCores: cores,
  };
}

function row(concurrency: number, withFloors = true): FastRow {
  const direct = measured(10_000, 1, 4, { upstream: 0.7, loadgen: 1, others: 0 });
  return {
    concurrency,
    direct,
    gateway: measured(1_000, 15, 44, { gateway: 1.1, upstream: 0.1, loadgen: 0.2, others: 0.1 }),
    gatewayCpuMsPerRequest: 0.6,
    nginx: measured(6_000, 2, 7, { nginx: 0.5, upstream: 0.4, loadgen: 0.6, others: 0 }),
    nginxCpuMsPerRequest: 0.05,
    ...(withFloors
      ? {
          floors: [
            {
              variant: 'plain' as const,
              h2: false,
              measured: measured(5_000, 3, 9, { floor: 0.7 }),
              cpuMsPerRequest: 0.14,
            },
            {
              variant: 'plain' as const,
              h2: true,
              measured: measured(4_000, 4, 9, { floor: 0.7 }),
              cpuMsPerRequest: 0.17,
            },
            {
              variant: 'durable' as const,
              h2: false,
              measured: measured(3_000, 5, 12, { floor: 0.8 }),
              cpuMsPerRequest: 0.25,
            },
          ],
        }
      : {}),
  };
}

const figures = (rows: FastRow[]): FastFigures => ({
  upstream: 'fast',
  nginx: 'nginx/1.22',
  floors: 'bench/node-floor.ts',
  rows,
});

describe('bench fast cell: the Node floors', () => {
  it('adds a table row per floor and protocol, with its ratio to direct, added latency and CPU per request', () => {
    const text = renderFastCell(figures([row(32)]));
    assert.match(
      text,
      /\| 32 \| through the Node floor \| 5000 \| 0\.5× \| 3 \| 9 \| 2 \| 5 \| 0\.14 \| 0\.7 \/ – \/ – \/ – \|/,
    );
    assert.match(text, /\| 32 \| through the Node floor, HTTP\/2 \(1 connection\) \| 4000 \| 0\.4× \|/);
    assert.match(text, /\| 32 \| through the Node floor \+ token cache \+ durable insert \| 3000 \| 0\.3× \|/);
    assert.match(text, /Node floors: bench\/node-floor\.ts\./);
  });

  it('states the floor ratios next to the 0.5× target, and what share of the floor hoopgate reaches', () => {
    const text = fastVerdict(figures([row(1), row(32)]));
    assert.match(
      text,
      /target ≥ 0\.5× direct\):\*\* hoopgate 0\.1× \(MISS\), added p50 \/ p99 \+14 \/ \+40 ms, 0\.6 ms CPU/,
    );
    assert.match(text, /nginx 0\.6× \(\+1 \/ \+3 ms, 0\.05 ms CPU per request\)/);
    assert.match(text, /the Node floor 0\.5× \(meets 0\.5×; \+2 \/ \+5 ms, 0\.14 ms CPU per request\)/);
    assert.match(text, /the Node floor \+ token cache \+ durable insert 0\.3× \(misses 0\.5×;/);
    assert.match(
      text,
      /Share of the Node floor's throughput: hoopgate 20%, the floor \+ token cache \+ durable insert 60%/,
    );
    assert.match(
      text,
      /1 concurrent, target added p50 ≤ 0\.5 ms: hoopgate \+14 ms \(MISS\); nginx \+1 ms; Node floor \+2 ms;/,
    );
  });

  it('leaves the floor sentences out when the floors were not measured, and says nothing without a 32 row', () => {
    const text = fastVerdict(figures([row(32, false)]));
    assert.match(text, /hoopgate 0\.1× \(MISS\)/);
    assert.doesNotMatch(text, /floor/);
    assert.equal(fastVerdict(figures([row(1)])), '');
  });

  it('gives the full bench one target row at 32 concurrent with nginx and the HTTP/1.1 floors beside it', () => {
    assert.deepEqual(fastTarget(figures([row(1), row(32)])), {
      target: 'fast upstream: throughput ≥ 0.5× direct at 32 concurrent (same run: nginx and the Node floors)',
      measured: '0.1× (nginx 0.6×; Node floor 0.5×; Node floor + token cache + durable insert 0.3×)',
      verdict: 'MISS',
    });
    assert.equal(fastTarget(figures([row(1)])), undefined);
  });
});

describe('bench Node floor: header copy', () => {
  it('drops hop-by-hop headers and HTTP/2 pseudo-headers, joins repeated request headers', () => {
    assert.deepEqual(
      copyHeaders(
        {
          ':path': '/api',
          host: 'gw',
          connection: 'keep-alive',
          'transfer-encoding': 'chunked',
          accept: 'application/json',
          'x-many': ['a', 'b'],
          gone: undefined,
        },
        true,
      ),
      { accept: 'application/json', 'x-many': 'a, b' },
    );
  });

  it('keeps repeated response headers (Set-Cookie) as a list', () => {
    assert.deepEqual(copyHeaders({ 'set-cookie': ['a=1', 'b=2'], 'keep-alive': 'timeout=5' }, false), {
      'set-cookie': ['a=1', 'b=2'],
    });
  });
});
