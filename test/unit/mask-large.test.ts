// A ~100 MB SecretList streamed through the masker: memory stays bounded by one object, not the list.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runMaskBench } from '../../bench/mask.js';

it('masks a 100 MB SecretList with bounded memory and reports its throughput', { timeout: 60_000 }, async (t) => {
  const result = await runMaskBench(100 * 1024 * 1024);
  t.diagnostic(
    `masked ${result.inputMb} MB, ${result.objects} Secrets: ${result.mbPerSecond} MB/s wall, ${result.mbPerCpuSecond} MB/s cpu, peak RSS ${result.peakRssMb} MB (+${result.rssGrowthMb} MB)`,
  );
  assert.ok(result.inputMb >= 99, `input was ${result.inputMb} MB`);
  assert.equal(result.leaks, 0, 'no CANARY in the output');
  assert.equal(result.maskedValues, result.objects * 3, 'every data value was masked');
  assert.ok(
    result.rssGrowthMb < 64,
    `RSS grew by ${result.rssGrowthMb} MB while streaming a ${result.inputMb} MB list`,
  );
});
