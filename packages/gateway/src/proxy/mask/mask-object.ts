// The pure masker: finds Secrets (and config-rule matches) by OBJECT KIND wherever they sit — a single
// object, List items, watch events, Table rows and cells, PartialObjectMetadata — and replaces values.
// Copy-on-write: an input with nothing to mask is returned as the same reference with `masked: 0`.
// The field-level steps live in mask-fields.ts.
import type { MaskingConfig } from '../../config/types.js';
import { kindToResource, resourceToKind } from './kinds.js';
import {
  applyRules,
  isObj,
  LAST_APPLIED_ANNOTATION,
  mapArray,
  MASKED_TEXT,
  maskSecretValues,
  withField,
  type Obj,
  type Run,
} from './mask-fields.js';
import { compileRules, ruleAppliesTo, type CompiledRule } from './rules.js';

export { LAST_APPLIED_ANNOTATION, MASKED_BASE64, MASKED_TEXT } from './mask-fields.js';

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

/**
 * A Table row: its embedded object masked by `maskNode`, then every cell equal to a value that was
 * masked in it (a Secret's table shows TYPE and DATA count, yet a cell could repeat a value).
 */
function maskRow(
  row: unknown,
  run: Run,
  maskNode: (node: unknown, kindHint: string | undefined, run: Run) => unknown,
): unknown {
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
    out = withField(
      out,
      'cells',
      mapArray(out.cells, (cell) => {
        if (typeof cell !== 'string' || !seen.has(cell)) return cell;
        run.masked++;
        return MASKED_TEXT;
      }),
    );
  }
  if (outer !== undefined) for (const value of seen) outer.add(value);
  return out;
}

export function createObjectMasker(config: MaskingConfig): ObjectMasker {
  const rules: readonly CompiledRule[] = compileRules(config.rules);
  const maskSecrets = config.secrets;

  function rulesFor(resource: string): CompiledRule[] {
    return rules.filter((rule) => ruleAppliesTo(rule, resource));
  }

  /**
   * The last-applied annotation is the JSON of the applied object: masked as that object and
   * re-serialised. `asSecret` masks it as a Secret whatever kind it claims; an annotation that cannot
   * be parsed is replaced when the object may hold masked values (`mustMask`).
   */
  function maskLastApplied(
    node: Obj,
    asSecret: boolean,
    kindHint: string | undefined,
    mustMask: boolean,
    run: Run,
  ): Obj {
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

  /** Masks an object whose kind is known (its own, or implied by its list or the request). */
  function maskTyped(node: Obj, kind: string | undefined, apiVersion: unknown, run: Run): Obj {
    if (
      kind === 'Table' &&
      (apiVersion === undefined || (typeof apiVersion === 'string' && apiVersion.startsWith('meta.k8s.io/')))
    ) {
      if (!Array.isArray(node.rows)) return node;
      return withField(
        node,
        'rows',
        mapArray(node.rows, (row) => maskRow(row, run, maskNode)),
      );
    }
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(node.items)) {
      const itemKind = itemKindOf(kind);
      return withField(
        node,
        'items',
        mapArray(node.items, (item) => maskNode(item, itemKind, run)),
      );
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
      return finish(row, maskRow(row, run, maskNode), run);
    },
  };
}
