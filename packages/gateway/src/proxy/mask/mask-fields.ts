// The field-level masking steps, independent of configuration: the values of a `data`-like map, a
// Secret's data and stringData, a config rule's keys and paths; all copy-on-write, counting what they
// replace in the run.
import type { CompiledRule, PathSegment } from './rules.js';

/** What a masked text value reads. */
export const MASKED_TEXT = '***MASKED***';
/** base64 of `***MASKED***`: typed clients still decode a Secret's `data`. */
export const MASKED_BASE64 = 'KioqTUFTS0VEKioq';
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

export type Obj = Record<string, unknown>;

export interface Run {
  masked: number;
  /** While masking a Table row: the original values replaced, so equal cells are masked too. */
  seen: Set<string> | undefined;
  resourceKind: string | undefined;
  resource: string | undefined;
  unknownNameMatches: boolean;
}

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Maps an array copy-on-write: the same array back when no element changed. */
export function mapArray(list: readonly unknown[], fn: (item: unknown) => unknown): readonly unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < list.length; i++) {
    const before = list[i];
    const after = fn(before);
    if (after !== before && out === undefined) out = list.slice(0, i);
    if (out !== undefined) out.push(after);
  }
  return out ?? list;
}

export function withField(node: Obj, key: string, value: unknown): Obj {
  return node[key] === value ? node : { ...node, [key]: value };
}

export function remember(run: Run, original: unknown, base64: boolean): void {
  if (run.seen === undefined || typeof original !== 'string' || original === '') return;
  run.seen.add(original);
  if (base64) run.seen.add(Buffer.from(original, 'base64').toString('utf8'));
}

/** Replaces the values of a `data`-like map (all keys, or those matching `keys`). */
export function maskMap(map: unknown, replacement: string, run: Run, keys?: RegExp): unknown {
  if (map === undefined || map === null) return map;
  if (!isObj(map)) {
    // A malformed map could still hold secret bytes: never let it through as is.
    if (keys !== undefined) return map;
    remember(run, map, false);
    run.masked++;
    return replacement;
  }
  let out: Obj | undefined;
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === null || value === undefined) continue;
    if (keys !== undefined && !keys.test(key)) continue;
    out ??= { ...map };
    remember(run, value, replacement === MASKED_BASE64);
    out[key] = replacement;
    run.masked++;
  }
  return out ?? map;
}

export function maskSecretValues(node: Obj, run: Run): Obj {
  let out = withField(node, 'data', maskMap(node.data, MASKED_BASE64, run));
  out = withField(out, 'stringData', maskMap(node.stringData, MASKED_TEXT, run));
  return out;
}

export function maskLeaf(value: unknown, run: Run): unknown {
  if (value === null || value === undefined) return value;
  remember(run, value, false);
  run.masked++;
  return MASKED_TEXT;
}

export function nameMatches(node: Obj, whenName: RegExp | undefined, run: Run): boolean {
  if (whenName === undefined) return true;
  if (typeof node.name !== 'string') return run.unknownNameMatches && node.name === undefined;
  return whenName.test(node.name);
}

export function applyPath(
  node: unknown,
  path: readonly PathSegment[],
  index: number,
  whenName: RegExp | undefined,
  run: Run,
): unknown {
  const segment = path[index];
  if (segment === undefined || !isObj(node) || !(segment.key in node)) return node;
  const child = node[segment.key];
  const last = index === path.length - 1;
  let next: unknown;
  if (segment.each) {
    if (!Array.isArray(child)) return node;
    next = last
      ? nameMatches(node, whenName, run)
        ? mapArray(child, (item) => maskLeaf(item, run))
        : child
      : mapArray(child, (item) => applyPath(item, path, index + 1, whenName, run));
  } else if (last) {
    next = nameMatches(node, whenName, run) ? maskLeaf(child, run) : child;
  } else {
    next = applyPath(child, path, index + 1, whenName, run);
  }
  return withField(node, segment.key, next);
}

export function applyRules(node: Obj, applicable: readonly CompiledRule[], isSecret: boolean, run: Run): Obj {
  let out = node;
  for (const rule of applicable) {
    if (rule.keys !== undefined) {
      out = withField(out, 'data', maskMap(out.data, isSecret ? MASKED_BASE64 : MASKED_TEXT, run, rule.keys));
      out = withField(out, 'binaryData', maskMap(out.binaryData, MASKED_BASE64, run, rule.keys));
      out = withField(out, 'stringData', maskMap(out.stringData, MASKED_TEXT, run, rule.keys));
    }
    for (const path of rule.paths) out = applyPath(out, path, 0, rule.whenName, run) as Obj;
  }
  return out;
}
