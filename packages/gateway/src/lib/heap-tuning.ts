// How `hoopgate serve` (and `hoopgate demo`) size V8's heap (issue #13). After each full collection
// V8 lets the old generation grow by a factor of up to 4 of what is live, tuned for throughput; a
// replica taking 10,000 held approvals over HTTP/2 then commits ~16 KB of heap per held call for
// ~10 KB live, and ends at ~324 MB of RSS against the 300 MB target. A growing factor of 1.2 keeps it
// at 294–296 MB (bench/results-held*.md) for about 6 % more CPU per request at 32 concurrent small
// GETs. Node does not accept the flag in NODE_OPTIONS; an operator who wants another factor
// starts node with it (`node --heap-growing-percent=0 bin/hoopgate.js serve …` restores V8's default).
import { setFlagsFromString } from 'node:v8';

export const servingHeapFlag = '--heap-growing-percent=20';

/** Sets servingHeapFlag unless node was started with its own; says whether it did. */
export function tuneHeapForServing(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => /heap[-_]growing[-_]percent/.test(arg))) return false;
  setFlagsFromString(servingHeapFlag);
  return true;
}
