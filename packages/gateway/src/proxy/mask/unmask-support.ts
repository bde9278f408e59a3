// What the masked-write modules share: the request and result types, paths into a JSON document,
// placeholder sentinels, resolving a masked field against the stored object, and the refusals.
import { HoopError } from '../../lib/errors.js';
import { LAST_APPLIED_ANNOTATION, MASKED_BASE64, MASKED_TEXT, type MaskHint } from './mask-object.js';

export interface WriteRequest {
  method: string;
  contentType: string | undefined;
  body: Buffer;
  /** The request's resource and subresource (`secrets`, ``). */
  resource: string;
  subresource: string;
  /** For messages: `secret staging/db-credentials`. */
  describe: string;
}

/** The object as stored, read with the write's own token; `undefined` when it does not exist. */
export type StoredObject = Record<string, unknown> | undefined;

export type WriteRestore =
  { kind: 'pass' } | { kind: 'rewrite'; body: Buffer; kept: string[] } | { kind: 'refuse'; error: HoopError };

export type WriteAnalysis =
  | { kind: 'pass' }
  | { kind: 'refuse'; error: HoopError }
  /** Masked values to keep: read the stored object (same URL, same token) and call `restore`. */
  | { kind: 'restore'; restore: (stored: StoredObject) => WriteRestore };

/** Which placeholders of a body sit in masked fields: what the object masker itself would mask. */
export interface MaskedFinder {
  /** Paths of the placeholders that sit in fields the masker masks. */
  maskedPlaceholders(doc: unknown, hint: MaskHint): Path[];
  /** The parsed last-applied annotation when it carries placeholders in masked fields. */
  maskedInAnnotation(doc: unknown, hint: MaskHint): { parsed: unknown; paths: Path[]; raw: string } | undefined;
  maskObject(doc: unknown, hint: MaskHint): { value: unknown };
}

export type Obj = Record<string, unknown>;
export type Segment = string | number;
export type Path = readonly Segment[];

export const placeholderBytes = [Buffer.from(MASKED_TEXT), Buffer.from(MASKED_BASE64)];

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isPlaceholder(value: unknown): value is string {
  return value === MASKED_TEXT || value === MASKED_BASE64;
}

/** `data.password`, `data[tls.crt]`, `spec.containers[0].env[1].value`. */
export function describePath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_$-]+$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${segment}]`;
  }
  return out;
}

export function valueAt(root: unknown, path: Path): unknown {
  let node = root;
  for (const segment of path) {
    if (typeof segment === 'number') {
      if (!Array.isArray(node)) return undefined;
      node = node[segment];
    } else {
      if (!isObj(node)) return undefined;
      node = node[segment];
    }
  }
  return node;
}

export function setAt(root: unknown, path: Path, value: unknown): void {
  const parent = valueAt(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (typeof last === 'number' && Array.isArray(parent)) parent[last] = value;
  else if (typeof last === 'string' && isObj(parent)) parent[last] = value;
}

export function unsafeNumber(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.some(unsafeNumber);
  if (isObj(value)) return Object.values(value).some(unsafeNumber);
  return false;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isObj(a) && isObj(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && deepEqual(a[key], b[key]));
  }
  return false;
}

export interface Mark {
  path: Path;
  sentinel: string;
  original: string;
}

/** A copy of `value` with every placeholder string replaced by a unique sentinel. */
export function markPlaceholders(value: unknown, marks: Mark[], path: Segment[] = []): unknown {
  if (isPlaceholder(value)) {
    const sentinel = `\u0000hoopgate-placeholder-${marks.length}\u0000`;
    marks.push({ path: [...path], sentinel, original: value });
    return sentinel;
  }
  if (Array.isArray(value)) return value.map((item, i) => markPlaceholders(item, marks, [...path, i]));
  if (isObj(value)) {
    const out: Obj = {};
    for (const [key, child] of Object.entries(value)) out[key] = markPlaceholders(child, marks, [...path, key]);
    return out;
  }
  return value;
}

export function refusal(message: string, details?: Record<string, unknown>): WriteAnalysis & { kind: 'refuse' } {
  return {
    kind: 'refuse',
    error: new HoopError('ERR_MASKED_VALUE', message, details === undefined ? undefined : { details }),
  };
}

export function missingRefusal(
  describe: string,
  keys: readonly string[],
  exists: boolean,
): { kind: 'refuse'; error: HoopError } {
  const where = exists
    ? `${describe} has no stored value for ${keys.length === 1 ? 'it' : 'them'}`
    : `${describe} does not exist yet`;
  // One cause per key: `kubectl edit` and `kubectl replace` print them beside the field.
  const causes = keys.map((field) => ({
    reason: 'FieldValueInvalid',
    field,
    message: `hoopgate: the mask placeholder has no stored value to keep here; send the real value or leave the key out`,
  }));
  return refusal(
    `the body carries the mask placeholder in ${keys.join(', ')}, but ${where}; the gateway keeps a masked value only for a key the stored object already has: send the real value${keys.length === 1 ? '' : 's'} for ${keys.length === 1 ? 'this key' : 'these keys'}, or leave ${keys.length === 1 ? 'it' : 'them'} out`,
    { causes },
  );
}

export interface Resolved {
  value: string | undefined;
}

/**
 * The stored value at `path`, walking the body and the stored object side by side: keys by name,
 * list items by their `name` field (never by position: a list may have been reordered).
 */
export function resolveStored(path: Path, body: unknown, stored: unknown): Resolved {
  let b = body;
  let s = stored;
  for (const segment of path) {
    if (typeof segment === 'number') {
      if (!Array.isArray(b) || !Array.isArray(s)) return { value: undefined };
      const item: unknown = b[segment];
      if (!isObj(item) || typeof item.name !== 'string') return { value: undefined };
      const matches = s.filter((candidate) => isObj(candidate) && candidate.name === item.name);
      if (matches.length !== 1) return { value: undefined };
      b = item;
      s = matches[0];
    } else {
      b = isObj(b) ? b[segment] : undefined;
      s = isObj(s) ? s[segment] : undefined;
    }
  }
  return { value: typeof s === 'string' ? s : undefined };
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export function lastApplied(doc: unknown): string | undefined {
  const annotations = isObj(doc) && isObj(doc.metadata) ? doc.metadata.annotations : undefined;
  const raw = isObj(annotations) ? annotations[LAST_APPLIED_ANNOTATION] : undefined;
  return typeof raw === 'string' ? raw : undefined;
}

export const annotationPath: Path = ['metadata', 'annotations', LAST_APPLIED_ANNOTATION];
export const annotationLabel = `metadata.annotations[${LAST_APPLIED_ANNOTATION}]`;
