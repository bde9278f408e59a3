// Restoring masked values in an RFC 6902 JSON patch: placeholders in operation values are followed
// through the operations against the stored object; tests of masked values and writes of the
// last-applied annotation with placeholders are refused, and the rewrite is guarded by the
// resourceVersion read.
import type { MaskHint } from './mask-object.js';
import { applyOperation, concretePath, PatchFailure, pointerTokens } from './json-patch-follow.js';
import {
  annotationLabel,
  describePath,
  isObj,
  lastApplied,
  markPlaceholders,
  missingRefusal,
  placeholderBytes,
  refusal,
  resolveStored,
  setAt,
  unsafeNumber,
  valueAt,
  type Mark,
  type MaskedFinder,
  type Obj,
  type WriteAnalysis,
  type WriteRequest,
} from './unmask-support.js';

/** RFC 6902: placeholders in `value`s, followed through the operations against the stored object. */
export function analyseJsonPatch(
  finder: MaskedFinder,
  request: WriteRequest,
  operations: unknown[],
  hint: MaskHint,
): WriteAnalysis {
  const cannot = (why: string) =>
    refusal(`the JSON patch carries the mask placeholder and ${why}; send the real values, or use a merge patch`);
  let candidates = 0;
  for (const operation of operations) {
    if (!isObj(operation) || typeof operation.op !== 'string' || pointerTokens(operation.path) === undefined)
      return cannot('has an operation the gateway cannot follow');
    // Also a placeholder inside a string (the last-applied annotation holds JSON text).
    const text = 'value' in operation ? (JSON.stringify(operation.value) ?? '') : '';
    if (placeholderBytes.some((p) => text.includes(p.toString()))) candidates++;
  }
  if (candidates === 0) return { kind: 'pass' };
  if (unsafeNumber(operations)) return cannot('numbers beyond 2^53 the gateway cannot rewrite exactly');

  return {
    kind: 'restore',
    restore(stored) {
      const out = structuredClone(operations) as Obj[];
      const kept: string[] = [];
      const missing: string[] = [];
      const working = { root: structuredClone(stored) as unknown };
      try {
        for (const [index, op] of out.entries()) {
          if (!('value' in op) || stored === undefined) {
            if (stored !== undefined) applyOperation(working, op);
            continue;
          }
          const tokens = pointerTokens(op.path) ?? [];
          const marks: Mark[] = [];
          const markedValue = markPlaceholders(op.value, marks);
          const trial = { root: structuredClone(working.root) };
          if (op.op === 'test') {
            // Placed where it would be compared, only to learn whether that field is masked.
            try {
              applyOperation(trial, { ...op, op: 'replace', value: markedValue });
            } catch (error) {
              if (error instanceof PatchFailure) continue; // the API server's test fails: nothing is stored
              throw error;
            }
          } else {
            applyOperation(trial, { ...op, value: markedValue });
          }
          const target = concretePath(working.root, tokens);
          if (
            lastApplied(trial.root) !== lastApplied(working.root) &&
            finder.maskedInAnnotation(trial.root, hint) !== undefined
          ) {
            return cannot(`writes ${annotationLabel} with masked values (operation ${index})`);
          }
          if (marks.length === 0) {
            applyOperation(working, op);
            continue;
          }
          const masked = finder.maskObject(trial.root, hint).value;
          // What the operation's target held before: nothing when it inserts into a list.
          const inserts = op.op === 'add' && Array.isArray(valueAt(working.root, target.slice(0, -1)));
          const prior = op.op === 'test' || inserts ? undefined : valueAt(working.root, target);
          const value = structuredClone(op.value);
          let substituted = value;
          for (const mark of marks) {
            const absolute = [...target, ...mark.path];
            if (valueAt(masked, absolute) === mark.sentinel) continue;
            const label = describePath(absolute);
            if (op.op === 'test')
              return cannot(
                `tests the masked value ${label} (operation ${index}): a test against a value the client never saw cannot be checked`,
              );
            const found = inserts ? undefined : resolveStored(mark.path, op.value, prior).value;
            if (found === undefined) missing.push(label);
            else {
              if (mark.path.length === 0) substituted = found;
              else setAt(value, mark.path, found);
              kept.push(label);
            }
          }
          op.value = substituted;
          applyOperation(working, op);
        }
      } catch (error) {
        if (error instanceof PatchFailure) return cannot(`does not apply to the stored object (${error.message})`);
        throw error;
      }
      if (stored === undefined) {
        const labels = out.flatMap((op) => {
          const marks: Mark[] = [];
          if ('value' in op) markPlaceholders(op.value, marks);
          return marks.map((mark) => describePath([...(pointerTokens(op.path) ?? []), ...mark.path]));
        });
        return missingRefusal(request.describe, labels, false);
      }
      if (missing.length > 0) return missingRefusal(request.describe, missing, true);
      if (kept.length === 0) return { kind: 'pass' };
      const version = isObj(stored.metadata) ? stored.metadata.resourceVersion : undefined;
      const guarded =
        typeof version === 'string' && version !== ''
          ? [{ op: 'test', path: '/metadata/resourceVersion', value: version }, ...out]
          : out;
      return { kind: 'rewrite', body: Buffer.from(JSON.stringify(guarded)), kept };
    },
  };
}
