// Round-trip-safe writes (issue #16): a write whose body still carries the mask placeholder in a
// masked field must never store it. Such a field keeps the stored value of the SAME field of the
// SAME object (same key; list items matched by `name`), or the write is refused. Pure: the caller
// reads the stored object with the write's own token and forwards what this module returns.
//
// What counts as "a masked field" is decided by the object masker itself: every placeholder in the
// body is swapped for a unique sentinel, the body is masked as a response would be, and the
// sentinels the masker replaced are exactly the placeholders that sit in masked fields. A
// placeholder anywhere else (a label reading `***MASKED***`) is ordinary text and left alone.
//
// Refused rather than guessed (fail closed):
// - a placeholder in a key the stored object does not have (or on create): 422, naming the keys;
// - a list item without a `name` to match it by, or a name that is not unique;
// - bodies the gateway cannot rewrite exactly: protobuf, YAML (send JSON), other media types (415),
//   integers beyond 2^53, a JSON patch that does not apply to the stored object, a JSON patch
//   `test` against a masked value (it would pass or fail on a value the client never saw), and a
//   JSON patch writing the last-applied annotation with placeholders in it.
import { parseAllDocuments } from 'yaml';
import type { MaskingConfig } from '../../config/types.js';
import { HoopError } from '../../lib/errors.js';
import { parseMediaType } from './accept.js';
import { createObjectMasker, LAST_APPLIED_ANNOTATION, MASKED_BASE64, MASKED_TEXT, type MaskHint } from './mask-object.js';
import { compileRules, ruleAppliesTo } from './rules.js';

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
  | { kind: 'pass' }
  | { kind: 'rewrite'; body: Buffer; kept: string[] }
  | { kind: 'refuse'; error: HoopError };

export type WriteAnalysis =
  | { kind: 'pass' }
  | { kind: 'refuse'; error: HoopError }
  /** Masked values to keep: read the stored object (same URL, same token) and call `restore`. */
  | { kind: 'restore'; restore: (stored: StoredObject) => WriteRestore };

export interface WriteRestorer {
  /** Cheap unless the body carries a placeholder for a resource the gateway masks. */
  analyse(request: WriteRequest): WriteAnalysis;
}

type Obj = Record<string, unknown>;
type Segment = string | number;
type Path = readonly Segment[];

const writeMethods = new Set(['POST', 'PUT', 'PATCH']);
const placeholderBytes = [Buffer.from(MASKED_TEXT), Buffer.from(MASKED_BASE64)];
const yamlTypes = new Set(['application/yaml', 'application/x-yaml', 'text/yaml']);

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPlaceholder(value: unknown): value is string {
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

function valueAt(root: unknown, path: Path): unknown {
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

function setAt(root: unknown, path: Path, value: unknown): void {
  const parent = valueAt(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (typeof last === 'number' && Array.isArray(parent)) parent[last] = value;
  else if (typeof last === 'string' && isObj(parent)) parent[last] = value;
}

function unsafeNumber(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.some(unsafeNumber);
  if (isObj(value)) return Object.values(value).some(unsafeNumber);
  return false;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isObj(a) && isObj(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && deepEqual(a[key], b[key]));
  }
  return false;
}

interface Mark {
  path: Path;
  sentinel: string;
  original: string;
}

/** A copy of `value` with every placeholder string replaced by a unique sentinel. */
function markPlaceholders(value: unknown, marks: Mark[], path: Segment[] = []): unknown {
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

function refusal(message: string, details?: Record<string, unknown>): WriteAnalysis & { kind: 'refuse' } {
  return { kind: 'refuse', error: new HoopError('ERR_MASKED_VALUE', message, details === undefined ? undefined : { details }) };
}

function missingRefusal(describe: string, keys: readonly string[], exists: boolean): { kind: 'refuse'; error: HoopError } {
  const where = exists ? `${describe} has no stored value for ${keys.length === 1 ? 'it' : 'them'}` : `${describe} does not exist yet`;
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

interface Resolved {
  value: string | undefined;
}

/**
 * The stored value at `path`, walking the body and the stored object side by side: keys by name,
 * list items by their `name` field (never by position: a list may have been reordered).
 */
function resolveStored(path: Path, body: unknown, stored: unknown): Resolved {
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

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function lastApplied(doc: unknown): string | undefined {
  const annotations = isObj(doc) && isObj(doc.metadata) ? doc.metadata.annotations : undefined;
  const raw = isObj(annotations) ? annotations[LAST_APPLIED_ANNOTATION] : undefined;
  return typeof raw === 'string' ? raw : undefined;
}

const annotationPath: Path = ['metadata', 'annotations', LAST_APPLIED_ANNOTATION];
const annotationLabel = `metadata.annotations[${LAST_APPLIED_ANNOTATION}]`;

/** RFC 6901 pointer → tokens (array indices stay strings until resolved against a document). */
function pointerTokens(pointer: unknown): string[] | undefined {
  if (typeof pointer !== 'string') return undefined;
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

class PatchFailure extends Error {}

/** Resolves pointer tokens against `doc` to a concrete path (`-` = one past the end of a list). */
function concretePath(doc: unknown, tokens: readonly string[]): Segment[] {
  const path: Segment[] = [];
  let node = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      const index = token === '-' ? node.length : /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : -1;
      if (index < 0 || index > node.length) throw new PatchFailure(`bad list index "${token}"`);
      path.push(index);
      node = node[index];
    } else if (isObj(node)) {
      path.push(token);
      node = node[token];
    } else {
      throw new PatchFailure(`path does not exist at "${token}"`);
    }
  }
  return path;
}

/** Applies one RFC 6902 operation in place (`doc` is a wrapper {root}); enough to follow where values go. */
function applyOperation(wrapper: { root: unknown }, op: Obj): void {
  const tokens = pointerTokens(op.path);
  if (tokens === undefined) throw new PatchFailure('invalid path');
  const parentOf = (path: Segment[]) => (path.length === 0 ? undefined : valueAt(wrapper.root, path.slice(0, -1)));
  const remove = (path: Segment[]): unknown => {
    if (path.length === 0) throw new PatchFailure('cannot remove the whole object');
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent) && typeof last === 'number' && last < parent.length) return parent.splice(last, 1)[0];
    if (isObj(parent) && typeof last === 'string' && last in parent) {
      const value = parent[last];
      delete parent[last];
      return value;
    }
    throw new PatchFailure('path does not exist');
  };
  const add = (path: Segment[], value: unknown, insert: boolean) => {
    if (path.length === 0) {
      wrapper.root = value;
      return;
    }
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent) && typeof last === 'number') {
      if (insert) parent.splice(last, 0, value);
      else if (last < parent.length) parent[last] = value;
      else throw new PatchFailure('path does not exist');
    } else if (isObj(parent) && typeof last === 'string') {
      if (!insert && !(last in parent)) throw new PatchFailure('path does not exist');
      parent[last] = value;
    } else {
      throw new PatchFailure('path does not exist');
    }
  };
  switch (op.op) {
    case 'add':
      add(concretePath(wrapper.root, tokens), structuredClone(op.value), true);
      return;
    case 'replace':
      add(concretePath(wrapper.root, tokens), structuredClone(op.value), false);
      return;
    case 'remove':
      remove(concretePath(wrapper.root, tokens));
      return;
    case 'test':
      return;
    case 'move':
    case 'copy': {
      const from = pointerTokens(op.from);
      if (from === undefined) throw new PatchFailure('invalid from');
      const fromPath = concretePath(wrapper.root, from);
      const value = op.op === 'move' ? remove(fromPath) : structuredClone(valueAt(wrapper.root, fromPath));
      add(concretePath(wrapper.root, tokens), value, true);
      return;
    }
    default:
      throw new PatchFailure(`unknown operation ${JSON.stringify(op.op)}`);
  }
}

/** `copies` / `moves` when a JSON patch body has such an operation. */
function copyOrMove(request: WriteRequest): string | undefined {
  if (parseMediaType(request.contentType)?.essence !== 'application/json-patch+json') return undefined;
  const parsed = parseJson(request.body.toString('utf8'));
  if (!parsed.ok || !Array.isArray(parsed.value)) return undefined;
  const op = parsed.value.find((operation): operation is Obj => isObj(operation) && (operation.op === 'copy' || operation.op === 'move'));
  return op === undefined ? undefined : `${op.op === 'copy' ? 'copies' : 'moves'} (from ${JSON.stringify(op.from)})`;
}

export function createWriteRestorer(config: MaskingConfig): WriteRestorer {
  const masker = createObjectMasker(config);
  const rules = compileRules(config.rules);

  function resourceMayBeMasked(resource: string): boolean {
    return (config.secrets && resource === 'secrets') || rules.some((rule) => ruleAppliesTo(rule, resource));
  }

  /** Paths of the placeholders that sit in fields the masker masks. */
  function maskedPlaceholders(doc: unknown, hint: MaskHint): Path[] {
    const marks: Mark[] = [];
    const marked = markPlaceholders(doc, marks);
    if (marks.length === 0) return [];
    const masked = masker.maskObject(marked, hint).value;
    return marks.filter((mark) => valueAt(masked, mark.path) !== mark.sentinel).map((mark) => mark.path);
  }

  /** The parsed last-applied annotation when it carries placeholders in masked fields. */
  function maskedInAnnotation(doc: unknown, hint: MaskHint): { parsed: unknown; paths: Path[]; raw: string } | undefined {
    const raw = lastApplied(doc);
    if (raw === undefined || !placeholderBytes.some((p) => raw.includes(p.toString()))) return undefined;
    const parsed = parseJson(raw);
    if (!parsed.ok || !isObj(parsed.value)) return undefined; // an unparseable annotation is a leaf: see maskedPlaceholders
    const paths = maskedPlaceholders(parsed.value, hint);
    return paths.length === 0 ? undefined : { parsed: parsed.value, paths, raw };
  }

  function isSecretBody(doc: Obj, resource: string): boolean {
    return doc.kind === 'Secret' || (doc.kind === undefined && resource === 'secrets');
  }

  /** Create, update, merge / strategic merge patch, server-side apply (as JSON): one object. */
  function analyseObject(request: WriteRequest, doc: unknown, hint: MaskHint): WriteAnalysis {
    const paths = maskedPlaceholders(doc, hint);
    const inAnnotation = maskedInAnnotation(doc, hint);
    if (paths.length === 0 && inAnnotation === undefined) return { kind: 'pass' };
    const labels = [...paths.map(describePath), ...(inAnnotation?.paths ?? []).map((p) => `${annotationLabel}.${describePath(p)}`)];
    if (!isObj(doc)) return refusal(`the body carries the mask placeholder in ${labels.join(', ')} and is not an object the gateway can rewrite`);
    if (unsafeNumber(doc)) return refusal(`the body carries the mask placeholder in ${labels.join(', ')} and numbers beyond 2^53 the gateway cannot rewrite exactly: send the real values`);
    if (request.method === 'POST') return missingRefusal(request.describe, labels, false);

    return {
      kind: 'restore',
      restore(stored) {
        if (stored === undefined) return missingRefusal(request.describe, labels, false);
        const next = structuredClone(doc);
        const kept: string[] = [];
        const missing: string[] = [];
        for (const path of paths) {
          const label = describePath(path);
          const found = resolveStored(path, doc, stored).value;
          if (found !== undefined) {
            setAt(next, path, found);
            kept.push(label);
            continue;
          }
          // A Secret's stringData is write-only: its stored form is the same key of `data`.
          const key = path[1];
          if (path.length === 2 && path[0] === 'stringData' && typeof key === 'string' && isSecretBody(doc, request.resource) && isObj(stored.data)) {
            const value = stored.data[key];
            const data = next.data ?? {};
            if (typeof value === 'string' && isObj(data) && isObj(next.stringData)) {
              delete next.stringData[key];
              next.data = { ...data, [key]: value };
              kept.push(label);
              continue;
            }
          }
          missing.push(label);
        }
        if (inAnnotation !== undefined) {
          const storedRaw = lastApplied(stored);
          const storedParsed = storedRaw === undefined ? undefined : parseJson(storedRaw);
          const storedAnnotation = storedParsed?.ok === true ? storedParsed.value : undefined;
          const annotation = structuredClone(inAnnotation.parsed);
          for (const path of inAnnotation.paths) {
            const label = `${annotationLabel}.${describePath(path)}`;
            // The annotation as last applied, else the object itself: kubectl writes it from the object.
            const found = resolveStored(path, inAnnotation.parsed, storedAnnotation).value ?? resolveStored(path, inAnnotation.parsed, stored).value;
            if (found === undefined) missing.push(label);
            else {
              setAt(annotation, path, found);
              kept.push(label);
            }
          }
          const text = storedRaw !== undefined && deepEqual(annotation, storedAnnotation)
            ? storedRaw
            : JSON.stringify(annotation) + (inAnnotation.raw.endsWith('\n') ? '\n' : '');
          setAt(next, annotationPath, text);
        }
        if (missing.length > 0) return missingRefusal(request.describe, missing, true);
        addResourceVersion(next, stored);
        return { kind: 'rewrite', body: Buffer.from(JSON.stringify(next)), kept };
      },
    };
  }

  /**
   * With a value substituted, the write must not land on a newer version of the object (it would
   * put back a value someone just changed): without a resourceVersion of its own, it gets the one read.
   */
  function addResourceVersion(next: Obj, stored: Obj): void {
    const version = isObj(stored.metadata) ? stored.metadata.resourceVersion : undefined;
    if (typeof version !== 'string' || version === '') return;
    if (next.metadata === undefined) next.metadata = { resourceVersion: version };
    else if (isObj(next.metadata) && (next.metadata.resourceVersion === undefined || next.metadata.resourceVersion === '')) next.metadata.resourceVersion = version;
  }

  /** RFC 6902: placeholders in `value`s, followed through the operations against the stored object. */
  function analyseJsonPatch(request: WriteRequest, operations: unknown[], hint: MaskHint): WriteAnalysis {
    const cannot = (why: string) => refusal(`the JSON patch carries the mask placeholder and ${why}; send the real values, or use a merge patch`);
    let candidates = 0;
    for (const operation of operations) {
      if (!isObj(operation) || typeof operation.op !== 'string' || pointerTokens(operation.path) === undefined) return cannot('has an operation the gateway cannot follow');
      // Also a placeholder inside a string (the last-applied annotation holds JSON text).
      const text = 'value' in operation ? JSON.stringify(operation.value) ?? '' : '';
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
            if (lastApplied(trial.root) !== lastApplied(working.root) && maskedInAnnotation(trial.root, hint) !== undefined) {
              return cannot(`writes ${annotationLabel} with masked values (operation ${index})`);
            }
            if (marks.length === 0) {
              applyOperation(working, op);
              continue;
            }
            const masked = masker.maskObject(trial.root, hint).value;
            // What the operation's target held before: nothing when it inserts into a list.
            const inserts = op.op === 'add' && Array.isArray(valueAt(working.root, target.slice(0, -1)));
            const prior = op.op === 'test' || inserts ? undefined : valueAt(working.root, target);
            const value = structuredClone(op.value);
            let substituted = value;
            for (const mark of marks) {
              const absolute = [...target, ...mark.path];
              if (valueAt(masked, absolute) === mark.sentinel) continue;
              const label = describePath(absolute);
              if (op.op === 'test') return cannot(`tests the masked value ${label} (operation ${index}): a test against a value the client never saw cannot be checked`);
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
        const guarded = typeof version === 'string' && version !== '' ? [{ op: 'test', path: '/metadata/resourceVersion', value: version }, ...out] : out;
        return { kind: 'rewrite', body: Buffer.from(JSON.stringify(guarded)), kept };
      },
    };
  }

  /** YAML is parsed only to find out whether it needs a rewrite; it is never re-serialised. */
  function analyseYaml(text: string, hint: MaskHint, refuse: () => WriteAnalysis): WriteAnalysis {
    const documents = parseAllDocuments(text);
    if (!Array.isArray(documents) || documents.some((doc) => doc.errors.length > 0)) return refuse();
    for (const document of documents) {
      const value: unknown = document.toJS({ maxAliasCount: 100 });
      if (maskedPlaceholders(value, hint).length > 0 || maskedInAnnotation(value, hint) !== undefined) return refuse();
    }
    return { kind: 'pass' };
  }

  return {
    analyse(request) {
      if (!writeMethods.has(request.method) || request.body.length === 0) return { kind: 'pass' };
      if (request.resource === '' || !resourceMayBeMasked(request.resource)) return { kind: 'pass' };
      const copied = copyOrMove(request);
      if (copied !== undefined) {
        // A copy or move from a masked field into one that is shown (a label, an annotation) would let
        // an agent that may patch an object read what the gateway masks; followed op by op it could
        // be allowed, but a masked kind's fields are never copied by kubectl, so it is refused outright.
        return refusal(
          `the JSON patch ${copied} a field of ${request.describe}, whose values hoopgate masks: a copy could show a masked value elsewhere; use add, replace or remove with the values you mean`,
        );
      }
      if (!placeholderBytes.some((p) => request.body.includes(p))) return { kind: 'pass' };
      const hint: MaskHint = { resource: request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}` };
      const essence = parseMediaType(request.contentType)?.essence;
      const unsupported = (what: string) => (): WriteAnalysis => ({
        kind: 'refuse',
        error: new HoopError(
          'ERR_UNSUPPORTED_MEDIA_TYPE',
          `the ${what} body carries the mask placeholder for ${request.describe} and the gateway can only keep masked values in JSON bodies; send it as JSON (application/json or a JSON patch type), with the real values or without those keys`,
        ),
      });
      const text = request.body.toString('utf8');

      if (essence === 'application/apply-patch+yaml') {
        // kubectl apply --server-side sends JSON under this type; YAML proper is not rewritten.
        const parsed = parseJson(text);
        return parsed.ok ? analyseObject(request, parsed.value, hint) : analyseYaml(text, hint, unsupported('YAML'));
      }
      if (essence !== undefined && yamlTypes.has(essence)) return analyseYaml(text, hint, unsupported('YAML'));
      if (essence === undefined || !(essence === 'application/json' || essence.endsWith('+json'))) return unsupported(essence ?? 'untyped')();
      const parsed = parseJson(text);
      if (!parsed.ok) return { kind: 'pass' }; // the API server refuses it; nothing can be stored
      if (essence === 'application/json-patch+json') {
        if (!Array.isArray(parsed.value)) return { kind: 'pass' };
        return analyseJsonPatch(request, parsed.value, hint);
      }
      return analyseObject(request, parsed.value, hint);
    },
  };
}
