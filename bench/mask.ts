// Masking throughput and memory: streams a lazily generated ~100 MB SecretList through the response
// masker and reports MB/s and peak RSS. Run: `node --import tsx bench/mask.ts`.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { createResponseMasker, MASKED_BASE64 } from '../packages/gateway/src/proxy/mask/index.js';

const canary = Buffer.from('CANARY');
const canary64 = Buffer.from(canary.toString('base64'));
const maskedNeedle = Buffer.from(MASKED_BASE64);

export interface MaskBenchResult {
  mbPerSecond: number;
  peakRssMb: number;
  /** Peak RSS above the RSS before the run: what the masker holds, not the process baseline. */
  rssGrowthMb: number;
  objects: number;
  inputMb: number;
  /** Output chunks containing the canary (must be 0). */
  leaks: number;
  /** `KioqTUFTS0VEKioq` values seen in the output (3 per Secret). */
  maskedValues: number;
  outputMb: number;
  /** Throughput over the process CPU time: stable when the machine is shared. */
  mbPerCpuSecond: number;
}

/** One Secret as the API server lists it (no kind/apiVersion on items), about 1.5 KB. */
function secretJson(index: number): string {
  const value = Buffer.from(`CANARY-${index}-${'s'.repeat(300)}`).toString('base64');
  return JSON.stringify({
    metadata: {
      name: `secret-${index}`,
      namespace: 'bench',
      uid: `0000-${index}`,
      resourceVersion: String(1000 + index),
      creationTimestamp: '2024-01-01T00:00:00Z',
      labels: { app: 'bench', tier: 'data' },
    },
    data: { password: value, token: value, 'ca.crt': value },
    type: 'Opaque',
  });
}

/**
 * A SecretList of about `totalBytes`, generated lazily so the input itself is never held: a block of
 * 1,000 distinct Secrets is built once and its bytes are repeated (cheap, so the bench times the masker).
 */
export function generateSecretList(
  totalBytes: number,
  chunkBytes = 64 * 1024,
  secrets?: number,
): { stream: Readable; objects: () => number } {
  const perBlock = 1000;
  const block = Buffer.from(Array.from({ length: perBlock }, (_, i) => `,${secretJson(i)}`).join(''));
  const head = Buffer.from(
    `{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[${secretJson(-1)}`,
  );
  // `secrets` asks for a count instead of a size: the head Secret plus whole blocks of 1,000.
  const blocks =
    secrets !== undefined
      ? Math.max(1, Math.ceil((secrets - 1) / perBlock))
      : Math.max(1, Math.floor((totalBytes - head.length) / block.length));
  let blockIndex = 0;
  let offset = 0;
  let started = false;
  const stream = new Readable({
    read() {
      if (!started) {
        started = true;
        this.push(head);
        return;
      }
      if (blockIndex >= blocks) {
        this.push(Buffer.from(']}'));
        this.push(null);
        return;
      }
      const end = Math.min(block.length, offset + chunkBytes);
      this.push(block.subarray(offset, end));
      offset = end;
      if (offset >= block.length) {
        offset = 0;
        blockIndex++;
      }
    },
  });
  return { stream, objects: () => 1 + blockIndex * perBlock };
}

export async function runMaskBench(totalBytes = 100 * 1024 * 1024, secrets?: number): Promise<MaskBenchResult> {
  const masker = createResponseMasker({ secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 });
  const plan = masker.transform({
    contentType: 'application/json',
    contentEncoding: undefined,
    isWatch: false,
    status: 200,
    resource: 'secrets',
  });
  if (plan.kind !== 'mask') throw new Error(`expected a masking plan, got ${plan.kind}`);
  const { stream, objects } = generateSecretList(totalBytes, 64 * 1024, secrets);
  globalThis.gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  let inputBytes = 0;
  let leaks = 0;
  let tail = Buffer.alloc(0);
  let maskedValues = 0;
  let outputBytes = 0;
  stream.on('data', (chunk: Buffer) => {
    inputBytes += chunk.length;
  });
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  let writes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      outputBytes += chunk.length;
      // The tail (shorter than a masked value) catches matches across chunk boundaries, never twice.
      const window = Buffer.concat([tail, chunk]);
      if (window.includes(canary) || window.includes(canary64)) leaks++;
      for (let at = window.indexOf(maskedNeedle); at >= 0; at = window.indexOf(maskedNeedle, at + maskedNeedle.length))
        maskedValues++;
      tail = Buffer.from(window.subarray(Math.max(0, window.length - (MASKED_BASE64.length - 1))));
      if (++writes % 16 === 0) peak = Math.max(peak, process.memoryUsage.rss());
      callback();
    },
  });
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await pipeline(stream, plan.stream, sink);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  clearInterval(sample);
  const mb = inputBytes / (1024 * 1024);
  return {
    mbPerSecond: Math.round((mb / seconds) * 10) / 10,
    peakRssMb: Math.round(peak / (1024 * 1024)),
    rssGrowthMb: Math.round((peak - baseline) / (1024 * 1024)),
    objects: objects(),
    inputMb: Math.round(mb * 10) / 10,
    leaks,
    maskedValues,
    outputMb: Math.round(outputBytes / (1024 * 1024)),
    mbPerCpuSecond: Math.round((mb / cpuSeconds) * 10) / 10,
  };
}

export interface MaskingFigures {
  mbPerSecond: number;
  peakRssMb: number;
  rssGrowthMb: number;
  objects: number;
  inputMb: number;
  mbPerCpuSecond: number;
}

/**
 * For the project's bench runner: best throughput of `runs` (the machine may be shared), worst peak RSS.
 * `secrets` sizes the list by count (1 + whole thousands), otherwise `totalBytes` (default 100 MB).
 */
export async function benchMasking(
  runs = 3,
  options: { totalBytes?: number; secrets?: number } = {},
): Promise<MaskingFigures> {
  let best: MaskBenchResult | undefined;
  let peakRssMb = 0;
  let rssGrowthMb = 0;
  for (let i = 0; i < runs; i++) {
    const result = await runMaskBench(options.totalBytes ?? 100 * 1024 * 1024, options.secrets);
    if (result.leaks !== 0) throw new Error('masking bench: CANARY leaked into the output');
    if (result.maskedValues !== 3 * result.objects)
      throw new Error(
        `masking bench: ${result.maskedValues} masked values for ${result.objects} Secrets (expected 3 each)`,
      );
    peakRssMb = Math.max(peakRssMb, result.peakRssMb);
    rssGrowthMb = Math.max(rssGrowthMb, result.rssGrowthMb);
    if (best === undefined || result.mbPerSecond > best.mbPerSecond) best = result;
  }
  if (best === undefined) throw new Error('masking bench: no run');
  return {
    mbPerSecond: best.mbPerSecond,
    peakRssMb,
    rssGrowthMb,
    objects: best.objects,
    inputMb: best.inputMb,
    mbPerCpuSecond: best.mbPerCpuSecond,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (let i = 0; i < 3; i++) console.log(JSON.stringify(await runMaskBench()));
}
