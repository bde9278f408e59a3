// The bench's pure statistics: histogram buckets and percentiles, exact percentiles, verdicts,
// Markdown tables and the CPU-profile self-time summary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bucketIndex,
  bucketUpperValue,
  createHistogram,
  histogramMaxValue,
  markdownTable,
  percentileOf,
  summarizeCpuProfile,
  summarizeMicros,
  verdict,
  type CpuProfile,
} from '../../bench/stats.js';

describe('bench histogram', () => {
  it('records values below 2048 exactly', () => {
    const h = createHistogram();
    for (const v of [5, 1, 3, 2, 4]) h.record(v);
    assert.equal(h.count, 5);
    assert.equal(h.min, 1);
    assert.equal(h.max, 5);
    assert.equal(h.mean, 3);
    assert.equal(h.percentile(50), 3);
    assert.equal(h.percentile(100), 5);
    assert.equal(h.percentile(0), 1);
    assert.equal(h.percentile(20), 1);
    assert.equal(h.percentile(21), 2);
  });

  it('keeps every bucket boundary consistent: a value lies in the bucket whose upper value bounds it', () => {
    for (const v of [0, 1, 2047, 2048, 2049, 4095, 4096, 10_000, 123_456, 1_000_000, 99_999_999, histogramMaxValue]) {
      const index = bucketIndex(v);
      assert.ok(bucketUpperValue(index) >= v, `upper(${index}) >= ${v}`);
      if (index > 0) assert.ok(bucketUpperValue(index - 1) < v, `upper(${index - 1}) < ${v}`);
    }
    // Monotone over a range that crosses several powers of two.
    let previous = -1;
    for (let v = 0; v < 70_000; v += 7) {
      const index = bucketIndex(v);
      assert.ok(index >= previous);
      previous = index;
    }
  });

  it('answers percentiles of a large uniform sample within 0.1%', () => {
    const h = createHistogram();
    for (let v = 1; v <= 1_000_000; v++) h.record(v);
    for (const [p, expected] of [
      [50, 500_000],
      [90, 900_000],
      [99, 990_000],
      [99.9, 999_000],
    ] as const) {
      const got = h.percentile(p);
      assert.ok(Math.abs(got - expected) / expected < 0.001, `p${p}: ${got} vs ${expected}`);
    }
    assert.equal(h.percentile(100), 1_000_000);
  });

  it('clamps negative and huge values, rounds fractions, refuses NaN and out-of-range percentiles', () => {
    const h = createHistogram();
    h.record(-5);
    h.record(2.6);
    h.record(1e12);
    assert.equal(h.min, 0);
    assert.equal(h.max, histogramMaxValue);
    assert.equal(h.percentile(50), 3);
    assert.throws(() => h.record(Number.NaN), RangeError);
    assert.throws(() => h.percentile(101), RangeError);
    assert.throws(() => h.percentile(-1), RangeError);
  });

  it('merges per-worker histograms into the same answer as one histogram', () => {
    const one = createHistogram();
    const a = createHistogram();
    const b = createHistogram();
    for (let v = 0; v < 50_000; v += 3) {
      one.record(v);
      (v % 2 === 0 ? a : b).record(v);
    }
    a.merge(b);
    a.merge(createHistogram());
    assert.equal(a.count, one.count);
    assert.equal(a.min, one.min);
    assert.equal(a.max, one.max);
    assert.ok(Math.abs(a.mean - one.mean) < 1e-6);
    for (const p of [1, 50, 90, 99, 99.99]) assert.equal(a.percentile(p), one.percentile(p));
  });

  it('summarises microseconds as milliseconds, and an empty histogram as zeros', () => {
    const h = createHistogram();
    for (let i = 0; i < 99; i++) h.record(1000);
    h.record(20_000);
    assert.deepEqual(summarizeMicros(h), { count: 100, meanMs: 1.19, p50Ms: 1, p90Ms: 1, p99Ms: 1, maxMs: 20 });
    assert.deepEqual(summarizeMicros(createHistogram()), {
      count: 0,
      meanMs: 0,
      p50Ms: 0,
      p90Ms: 0,
      p99Ms: 0,
      maxMs: 0,
    });
  });
});

describe('bench exact percentiles and verdicts', () => {
  it('uses nearest rank on an unsorted sample without changing it', () => {
    const sample = [40, 10, 30, 20];
    assert.equal(percentileOf(sample, 50), 20);
    assert.equal(percentileOf(sample, 75), 30);
    assert.equal(percentileOf(sample, 99), 40);
    assert.equal(percentileOf(sample, 0), 10);
    assert.deepEqual(sample, [40, 10, 30, 20]);
    assert.equal(percentileOf([], 50), 0);
    assert.throws(() => percentileOf([1], 200), RangeError);
  });

  it('passes a value on the right side of its target, inclusive, and skips a missing one', () => {
    assert.equal(verdict(0.5, 0.5, 'atMost'), 'PASS');
    assert.equal(verdict(0.51, 0.5, 'atMost'), 'MISS');
    assert.equal(verdict(0.5, 0.5, 'atLeast'), 'PASS');
    assert.equal(verdict(0.49, 0.5, 'atLeast'), 'MISS');
    assert.equal(verdict(undefined, 1, 'atMost'), 'SKIP');
    assert.equal(verdict(Number.NaN, 1, 'atLeast'), 'SKIP');
  });
});

describe('bench markdown table', () => {
  it('renders a header, a separator and escaped rows', () => {
    assert.equal(
      markdownTable(
        ['a', 'b'],
        [
          [1, 'x|y'],
          ['two\nlines', 2],
        ],
      ),
      '| a | b |\n|---|---|\n| 1 | x\\|y |\n| two lines | 2 |',
    );
  });

  it('refuses a row whose width differs from the header', () => {
    assert.throws(() => markdownTable(['a', 'b'], [[1]]), /a row has 1 cells, the header 2/);
  });
});

describe('bench cpu profile summary', () => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3, 4] },
      { id: 2, callFrame: { functionName: 'verify', url: 'file:///repo/src/authn/oidc-verifier.ts', lineNumber: 9 } },
      { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      { id: 4, callFrame: { functionName: '', url: 'file:///repo/src/proxy/forward.ts', lineNumber: 0 } },
      { id: 5, callFrame: { functionName: 'verify', url: 'file:///repo/src/authn/oidc-verifier.ts', lineNumber: 9 } },
    ],
    samples: [2, 3, 4, 5, 2, 3],
    timeDeltas: [1000, 5000, 2000, 1000, 1000, 5000],
  };

  it('charges each sample to its frame, merges equal frames, and leaves idle out of the busy share', () => {
    const summary = summarizeCpuProfile(profile, 10, '/repo');
    assert.equal(summary.busyMs, 5);
    assert.equal(summary.idleMs, 10);
    assert.deepEqual(summary.frames, [
      { frame: 'verify (src/authn/oidc-verifier.ts:10)', selfMs: 3, selfPercent: 60 },
      { frame: '(anonymous) (src/proxy/forward.ts)', selfMs: 2, selfPercent: 40 },
    ]);
  });

  it("counts the profiler's own native frames as idle when asked, never a JavaScript frame of that name", () => {
    const withInspector: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: 'dispatch', url: '', lineNumber: -1 } },
        {
          id: 2,
          callFrame: {
            functionName: 'dispatch',
            url: 'file:///repo/node_modules/koa-compose/index.js',
            lineNumber: 39,
          },
        },
      ],
      samples: [1, 2],
      timeDeltas: [4000, 1000],
    };
    const summary = summarizeCpuProfile(withInspector, 10, '/repo', ['dispatch']);
    assert.equal(summary.busyMs, 1);
    assert.equal(summary.idleMs, 4);
    assert.deepEqual(summary.frames, [
      { frame: 'dispatch (node_modules/koa-compose/index.js:40)', selfMs: 1, selfPercent: 100 },
    ]);
  });

  it('keeps only the top frames', () => {
    assert.equal(summarizeCpuProfile(profile, 1).frames.length, 1);
  });
});
