// The pure masker: finds Secrets (and config-rule matches) by OBJECT KIND wherever they sit — a single
// object, List items, watch events, Table rows and cells, PartialObjectMetadata — and replaces values.
// Copy-on-write: an input with nothing to mask is returned as the same reference with `masked: 0`.
import type { MaskingConfig } from '../../config/types.js';
import { kindToResource, resourceToKind } from './kinds.js';
import { compileRules, ruleAppliesTo, type CompiledRule, type PathSegment } from './rules.js';

/** What a masked text value reads. */
export const MASKED_TEXT = '***MASKED***';
/** base64 of `***MASKED***`: typed clients still decode a Secret's `data`. */
export const MASKED_BASE64 = 'KioqTUFTS0VEKioq';
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

export interface MaskResult {
  value: unknown;
  /** How many values were replaced; 0 means `value` is the input, untouched. */
  masked: number;
}

export interface MaskHint {
  /** The request's resource (`secrets`, `configmaps/status`): the kind of objects that carry none. */
  resource?: string;
  /**
   * For fragments without their siblings (JSON-patch values): a path rule with `whenName` masks
   * when the item's `name` is absent, since it cannot be checked.
   */
  unknownNameMatches?: boolean;
}

export interface ObjectMasker {
  /** Masks any decoded body: object, list, watch event, Table, request patch. */
  maskObject(value: unknown, hint?: MaskHint): MaskResult;
  /** One element of a streamed `items` array of a list of kind `listKind`. */
  maskListItem(listKind: string, item: unknown, hint?: MaskHint): MaskResult;
  /** One element of a streamed Table `rows` array. */
  maskTableRow(row: unknown, hint?: MaskHint): MaskResult;
  /** Secrets are masked and no config rule touches them: a SecretList item may take the byte-level path. */
  readonly secretsOnlyBuiltIn: boolean;
}

type Obj = Record<string, unknown>;

interface Run {
  masked: number;
  /** While masking a Table row: the original values replaced, so equal cells are masked too. */
  seen: Set<string> | undefined;
  resourceKind: string | undefined;
  resource: string | undefined;
  unknownNameMatches: boolean;
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Maps an array copy-on-write: the same array back when no element changed. */
function mapArray(list: readonly unknown[], fn: (item: unknown) => unknown): readonly unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < list.length; i++) {
    const before = list[i];
    const after = fn(before);
    if (after !== before && out === undefined) out = list.slice(0, i);
    if (out !== undefined) out.push(after);
  }
  return out ?? list;
}

function withField(node: Obj, key: string, value: unknown): Obj {
  return node[key] === value ? node : { ...node, [key]: value };
}

export function createObjectMasker(config: MaskingConfig): ObjectMasker {
  const rules: readonly CompiledRule[] = compileRules(config.rules);
  const maskSecrets = config.secrets;

  function rulesFor(resource: string): CompiledRule[] {
    return rules.filter((rule) => ruleAppliesTo(rule, resource));
  }

  function remember(run: Run, original: unknown, base64: boolean): void {
    if (run.seen === undefined || typeof original !== 'string' || original === '') return;
    run.seen.add(original);
    if (base64) run.seen.add(Buffer.from(original, 'base64').toString('utf8'));
  }

  /** Replaces the values of a `data`-like map (all keys, or those matching `keys`). */
  function maskMap(map: unknown, replacement: string, run: Run, keys?: RegExp): unknown {
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

  function maskSecretValues(node: Obj, run: Run): Obj {
    let out = withField(node, 'data', maskMap(node.data, MASKED_BASE64, run));
    out = withField(out, 'stringData', maskMap(node.stringData, MASKED_TEXT, run));
    return out;
  }

  function maskLeaf(value: unknown, run: Run): unknown {
    if (value === null || value === undefined) return value;
    remember(run, value, false);
    run.masked++;
    return MASKED_TEXT;
  }

  function nameMatches(node: Obj, whenName: RegExp | undefined, run: Run): boolean {
    if (whenName === undefined) return true;
    if (typeof node.name !== 'string') return run.unknownNameMatches && node.name === undefined;
    return whenName.test(node.name);
  }

  function applyPath(node: unknown, path: readonly PathSegment[], index: number, whenName: RegExp | undefined, run: Run): unknown {
    const segment = path[index];
    if (segment === undefined || !isObj(node) || !(segment.key in node)) return node;
    const child = node[segment.key];
    const last = index === path.length - 1;
    let next: unknown;
    if (segment.each) {
      if (!Array.isArray(child)) return node;
      next = last
        ? (nameMatches(node, whenName, run) ? mapArray(child, (item) => maskLeaf(item, run)) : child)
        : mapArray(child, (item) => applyPath(item, path, index + 1, whenName, run));
    } else if (last) {
      next = nameMatches(node, whenName, run) ? maskLeaf(child, run) : child;
    } else {
      next = applyPath(child, path, index + 1, whenName, run);
    }
    return withField(node, segment.key, next);
  }

  function applyRules(node: Obj, applicable: readonly CompiledRule[], isSecret: boolean, run: Run): Obj {
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

  /**
   * The last-applied annotation is the JSON of the applied object: masked as that object and
   * re-serialised. `asSecret` masks it as a Secret whatever kind it claims; an annotation that cannot
   * be parsed is replaced when the object may hold masked values (`mustMask`).
   */
  function maskLastApplied(node: Obj, asSecret: boolean, kindHint: string | undefined, mustMask: boolean, run: Run): Obj {
    const metadata = node.metadata;
    if (!isObj(metadata) || !isObj(metadata.annotations)) return node;
    const raw = metadata.annotations[LAST_APPLIED_ANNOTATION];
    if (raw === undefined || raw === null) return node;
    let replacement: string | undefined;
    let parsed: unknown;
    let parseable = typeof raw === 'string';
    if (parseable) {
      try {
        parsed = JSON.parse(raw as string);
      } catch {
        parseable = false;
      }
    }
    if (!parseable || !isObj(parsed)) {
      if (mustMask) replacement = MASKED_TEXT;
    } else {
      const before = run.masked;
      const masked = asSecret ? maskTyped(parsed, 'Secret', undefined, run) : maskNode(parsed, kindHint, run);
      if (run.masked !== before) replacement = JSON.stringify(masked) + ((raw as string).endsWith('\n') ? '\n' : '');
    }
    if (replacement === undefined) return node;
    if (!parseable || !isObj(parsed)) run.masked++;
    const annotations = { ...metadata.annotations, [LAST_APPLIED_ANNOTATION]: replacement };
    return { ...node, metadata: { ...metadata, annotations } };
  }

  /** A kind-less object with nothing else to say what it is: data maps are treated as secret (fail closed). */
  function looksLikeSecret(node: Obj): boolean {
    return isObj(node.data) || isObj(node.stringData);
  }

  function isWatchEvent(node: Obj): boolean {
    return typeof node.type === 'string' && 'object' in node && node.kind === undefined;
  }

  function itemKindOf(listKind: string): string | undefined {
    return listKind === 'List' ? undefined : listKind.slice(0, -'List'.length);
  }

  function maskTableRow(row: unknown, run: Run): unknown {
    if (!isObj(row)) return row;
    const outer = run.seen;
    const seen = new Set<string>();
    run.seen = seen;
    let out = row;
    try {
      if (row.object !== undefined) out = withField(out, 'object', maskNode(row.object, undefined, run));
    } finally {
      run.seen = outer;
    }
    // A Secret's table shows TYPE and DATA count, yet any cell equal to a masked value is masked too.
    if (seen.size > 0 && Array.isArray(out.cells)) {
      out = withField(out, 'cells', mapArray(out.cells, (cell) => {
        if (typeof cell !== 'string' || !seen.has(cell)) return cell;
        run.masked++;
        return MASKED_TEXT;
      }));
    }
    if (outer !== undefined) for (const value of seen) outer.add(value);
    return out;
  }

  /** Masks an object whose kind is known (its own, or implied by its list or the request). */
  function maskTyped(node: Obj, kind: string | undefined, apiVersion: unknown, run: Run): Obj {
    if (kind === 'Table' && (apiVersion === undefined || (typeof apiVersion === 'string' && apiVersion.startsWith('meta.k8s.io/')))) {
      if (!Array.isArray(node.rows)) return node;
      return withField(node, 'rows', mapArray(node.rows, (row) => maskTableRow(row, run)));
    }
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(node.items)) {
      const itemKind = itemKindOf(kind);
      return withField(node, 'items', mapArray(node.items, (item) => maskNode(item, itemKind, run)));
    }
    if (kind === 'PartialObjectMetadata') {
      // Only metadata is left, but the last-applied annotation of a Secret holds its values.
      const underlying = run.resourceKind;
      const resource = run.resource?.split('/')[0]?.toLowerCase();
      const mustMask = resource === undefined || underlying === 'Secret' || rulesFor(resource).length > 0;
      return maskLastApplied(node, maskSecrets && underlying === 'Secret', underlying, mustMask, run);
    }
    if (kind === undefined) return maskLastApplied(node, false, undefined, false, run);
    const isSecret = kind === 'Secret' && (apiVersion === undefined || apiVersion === 'v1');
    let out = node;
    if (isSecret && maskSecrets) out = maskSecretValues(out, run);
    const applicable = rulesFor(kindToResource(kind));
    if (applicable.length > 0) out = applyRules(out, applicable, isSecret, run);
    return maskLastApplied(out, isSecret && maskSecrets, kind, (isSecret && maskSecrets) || applicable.length > 0, run);
  }

  function maskNode(node: unknown, kindHint: string | undefined, run: Run): unknown {
    if (!isObj(node)) return node;
    if (typeof node.kind === 'string') return maskTyped(node, node.kind, node.apiVersion, run);
    if (isWatchEvent(node)) return withField(node, 'object', maskNode(node.object, kindHint, run));
    // API lists omit each item's kind: take the list's, then the request's, then the shape's.
    const implied = kindHint ?? run.resourceKind ?? (maskSecrets && looksLikeSecret(node) ? 'Secret' : undefined);
    return maskTyped(node, implied, undefined, run);
  }

  function newRun(hint: MaskHint | undefined): Run {
    return {
      masked: 0,
      seen: undefined,
      resource: hint?.resource,
      resourceKind: resourceToKind(hint?.resource),
      unknownNameMatches: hint?.unknownNameMatches ?? false,
    };
  }

  function finish(input: unknown, output: unknown, run: Run): MaskResult {
    return run.masked === 0 ? { value: input, masked: 0 } : { value: output, masked: run.masked };
  }

  return {
    secretsOnlyBuiltIn: maskSecrets && rulesFor('secrets').length === 0,
    maskObject(value, hint) {
      const run = newRun(hint);
      return finish(value, maskNode(value, undefined, run), run);
    },
    maskListItem(listKind, item, hint) {
      const run = newRun(hint);
      return finish(item, maskNode(item, itemKindOf(listKind), run), run);
    },
    maskTableRow(row, hint) {
      const run = newRun(hint);
      return finish(row, maskTableRow(row, run), run);
    },
  };
}
