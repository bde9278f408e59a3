// Pure statistics for the bench: an HdrHistogram-like log-linear latency histogram (bounded memory,
// < 0.1% relative error), exact nearest-rank percentiles, target verdicts, Markdown tables and a
// CPU-profile summary (self time per frame). No I/O here, so test/unit/bench-stats.test.ts covers it.

/** Values below this are recorded exactly; above it each power of two is split into `half` buckets. */
const subBucketBits = 11;
const subBuckets = 1 << subBucketBits;
const half = subBuckets >> 1;
/** Largest value recorded (≈ 35 min in microseconds); larger ones are clamped. */
export const histogramMaxValue = 2 ** 31 - 1;
const bucketCount = subBuckets + (31 - subBucketBits + 1) * half;

export interface Histogram {
  /** Records one non-negative value (the bench uses microseconds); fractions are rounded. */
  record(value: number): void;
  /** Adds another histogram's counts (for per-worker histograms). */
  merge(other: Histogram): void;
  /** Nearest-rank percentile, `p` in [0, 100]: the highest value equivalent to the rank's bucket, capped at max. */
  percentile(p: number): number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** Bucket counts (read-only view for merge). */
  readonly buckets: Float64Array;
}

/** Bucket index of an integer value: exact below 2048, then 1024 buckets per power of two. */
export function bucketIndex(value: number): number {
  const v = Math.min(histogramMaxValue, Math.max(0, Math.round(value)));
  if (v < subBuckets) return v;
  const bits = 32 - Math.clz32(v);
  const shift = bits - subBucketBits;
  return subBuckets + (shift - 1) * half + (Math.floor(v / 2 ** shift) - half);
}

/** The highest value that falls into bucket `index`. */
export function bucketUpperValue(index: number): number {
  if (index < subBuckets) return index;
  const k = index - subBuckets;
  const shift = Math.floor(k / half) + 1;
  const sub = (k % half) + half;
  return (sub + 1) * 2 ** shift - 1;
}

export function createHistogram(): Histogram {
  const buckets = new Float64Array(bucketCount);
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  const histogram: Histogram = {
    record(value) {
      if (!Number.isFinite(value)) throw new RangeError(`histogram: cannot record ${value}`);
      const v = Math.min(histogramMaxValue, Math.max(0, Math.round(value)));
      buckets[bucketIndex(v)] = (buckets[bucketIndex(v)] ?? 0) + 1;
      count++;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    },
    merge(other) {
      if (other.count === 0) return;
      for (let i = 0; i < bucketCount; i++) buckets[i] = (buckets[i] ?? 0) + (other.buckets[i] ?? 0);
      count += other.count;
      sum += other.mean * other.count;
      min = Math.min(min, other.min);
      max = Math.max(max, other.max);
    },
    percentile(p) {
      if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
      if (count === 0) return 0;
      if (p === 0) return min;
      const rank = Math.max(1, Math.ceil((p / 100) * count));
      let seen = 0;
      for (let i = 0; i < bucketCount; i++) {
        seen += buckets[i] ?? 0;
        if (seen >= rank) return Math.max(min, Math.min(max, bucketUpperValue(i)));
      }
      return max;
    },
    get count() {
      return count;
    },
    get min() {
      return count === 0 ? 0 : min;
    },
    get max() {
      return count === 0 ? 0 : max;
    },
    get mean() {
      return count === 0 ? 0 : sum / count;
    },
    buckets,
  };
  return histogram;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A histogram of microseconds as milliseconds, rounded to the microsecond. */
export function summarizeMicros(histogram: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    count: histogram.count,
    meanMs: ms(histogram.mean),
    p50Ms: ms(histogram.percentile(50)),
    p90Ms: ms(histogram.percentile(90)),
    p99Ms: ms(histogram.percentile(99)),
    maxMs: ms(histogram.max),
  };
}

/** Exact nearest-rank percentile of a small sample (click-to-response timings). */
export function percentileOf(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 0) return sorted[0] ?? 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? 0;
}

export function median(values: readonly number[]): number {
  return percentileOf(values, 50);
}

/** Rounds to `digits` decimals (tables and JSON stay readable). */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export type Verdict = 'PASS' | 'MISS' | 'SKIP';

/** `atMost`: PASS when value ≤ target; `atLeast`: PASS when value ≥ target; undefined value → SKIP. */
export function verdict(value: number | undefined, target: number, kind: 'atMost' | 'atLeast'): Verdict {
  if (value === undefined || !Number.isFinite(value)) return 'SKIP';
  return (kind === 'atMost' ? value <= target : value >= target) ? 'PASS' : 'MISS';
}

/** A GitHub-flavoured Markdown table; `|` in cells is escaped, newlines become spaces. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (value: string | number) => String(value).replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
  const line = (cells: readonly (string | number)[]) => `| ${cells.map(cell).join(' | ')} |`;
  for (const row of rows) {
    if (row.length !== headers.length)
      throw new RangeError(`markdownTable: a row has ${row.length} cells, the header ${headers.length}`);
  }
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** The subset of a V8 `.cpuprofile` the summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime?: number;
  endTime?: number;
}

export interface ProfileFrame {
  /** `function (file:line)`, line 1-based (omitted when V8 knows none); `(program)`, `(garbage collector)` as V8 names them. */
  frame: string;
  selfMs: number;
  selfPercent: number;
}

/**
 * Self time per frame: each sample's time delta is charged to the node it landed in; frames with the
 * same function, file and line are added up. `(idle)` (and `ignoreNative`) is left out of the busy time.
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  top = 15,
  relativeTo?: string,
  /** Native frames (no file) that are the profiler's own work, e.g. the inspector's `dispatch`: counted as idle. */
  ignoreNative: readonly string[] = [],
): { busyMs: number; idleMs: number; frames: ProfileFrame[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    // V8 records the delta before sample i; the time since the previous sample is charged to sample i.
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)' || (url === '' && ignoreNative.includes(functionName))) {
      idleUs += delta;
      continue;
    }
    busyUs += delta;
    let file = url.replace(/^file:\/\//, '');
    if (relativeTo !== undefined && file.startsWith(relativeTo))
      file = file.slice(relativeTo.length).replace(/^\//, '');
    const name = functionName === '' ? '(anonymous)' : functionName;
    // Line 0 is what V8 reports for code compiled on the fly (tsx): the file alone is then honest.
    const key = file === '' ? name : lineNumber > 0 ? `${name} (${file}:${lineNumber + 1})` : `${name} (${file})`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
  }
  const frames = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, us]) => ({
      frame,
      selfMs: round(us / 1000, 1),
      selfPercent: busyUs === 0 ? 0 : round((100 * us) / busyUs, 1),
    }));
  return { busyMs: round(busyUs / 1000, 1), idleMs: round(idleUs / 1000, 1), frames };
}
