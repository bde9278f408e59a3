// Seeds of the fuzz suite: every run checks a fixed seed and a random one, printed so that a failure
// can be replayed: HOOPGATE_FUZZ_SEED=<seed> npm test -- fuzz (only that seed then runs).
// HOOPGATE_FUZZ_RUNS scales the number of runs (default 1 = the CI budget of a few seconds).

/** Seeds that found bugs, kept as regressions (see each file for what they found). */
export function fuzzSeeds(fixed: readonly number[]): number[] {
  const replay = process.env['HOOPGATE_FUZZ_SEED'];
  if (replay !== undefined && replay !== '') return [Number(replay)];
  const random = Math.floor(Math.random() * 0x7fffffff);
  return [...fixed, random];
}

export function fuzzRuns(base: number): number {
  const scale = Number(process.env['HOOPGATE_FUZZ_RUNS'] ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

export function seedNote(seed: number): string {
  return `seed ${seed} (replay: HOOPGATE_FUZZ_SEED=${seed} node --conditions=source --import tsx --test test/fuzz/<file>)`;
}
