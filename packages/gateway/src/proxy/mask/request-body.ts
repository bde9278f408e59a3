// Masks request bodies for the audit store and Slack (docs/reference.md §6): created/applied objects, merge and
// strategic patches (kind-less: the request's resource says what they patch), JSON patches, YAML
// apply bodies. What cannot be parsed is withheld, never shown raw.
import { parseAllDocuments, stringify } from 'yaml';
import type { MaskingConfig } from '../../config/types.js';
import { parseMediaType } from './accept.js';
import { createObjectMasker, type MaskHint, type ObjectMasker } from './mask-object.js';

export interface RequestBodyOptions {
  /** The request's resource (`secrets`): a patch carries no kind of its own. */
  resource?: string;
}

export type RequestBodyMasker = (body: Buffer, contentType: string | undefined, options?: RequestBodyOptions) => string;

const yamlTypes = new Set(['application/apply-patch+yaml', 'application/yaml', 'application/x-yaml', 'text/yaml']);
const jsonPatchType = 'application/json-patch+json';

function withheld(body: Buffer): string {
  return `<unparseable body withheld: ${body.length} bytes>`;
}

function isJsonType(essence: string | undefined): boolean {
  return essence === undefined || essence === 'application/json' || essence.endsWith('+json');
}

/** RFC 6901 pointer → its reference tokens. */
function pointerTokens(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function isIndexToken(token: string): boolean {
  return token === '-' || /^(0|[1-9][0-9]*)$/.test(token);
}

/** Places `value` at `tokens` in an otherwise empty object, so the object masker sees where it goes. */
function embed(tokens: readonly string[], value: unknown): unknown {
  return tokens.reduceRight<unknown>((child, token) => (isIndexToken(token) ? [child] : { [token]: child }), value);
}

function extract(tokens: readonly string[], root: unknown): unknown {
  let node = root;
  for (const token of tokens) {
    if (Array.isArray(node)) node = node[0];
    else if (typeof node === 'object' && node !== null) node = (node as Record<string, unknown>)[token];
    else return undefined;
  }
  return node;
}

/** Masks each operation's `value` as if it sat at its `path` in the patched object. */
function maskJsonPatch(
  masker: ObjectMasker,
  operations: readonly unknown[],
  hint: MaskHint,
): { value: unknown; masked: number } {
  let masked = 0;
  const value = operations.map((operation) => {
    if (typeof operation !== 'object' || operation === null || !('value' in operation)) return operation;
    const op = operation as Record<string, unknown>;
    const tokens = typeof op.path === 'string' ? pointerTokens(op.path) : undefined;
    if (tokens === undefined) {
      // No usable path: the value cannot be placed, so it is not shown.
      masked++;
      return { ...op, value: '***MASKED***' };
    }
    const result = masker.maskObject(embed(tokens, op.value), { ...hint, unknownNameMatches: true });
    if (result.masked === 0) return operation;
    masked += result.masked;
    return { ...op, value: extract(tokens, result.value) };
  });
  return { value, masked };
}

export function createRequestBodyMasker(config: MaskingConfig): RequestBodyMasker {
  const masker = createObjectMasker(config);

  return (body, contentType, options = {}) => {
    if (body.length === 0) return '';
    const essence = parseMediaType(contentType)?.essence;
    const hint: MaskHint = options.resource === undefined ? {} : { resource: options.resource };
    const text = body.toString('utf8');

    if (essence !== undefined && yamlTypes.has(essence)) {
      const documents = parseAllDocuments(text);
      if (!Array.isArray(documents) || documents.some((doc) => doc.errors.length > 0)) return withheld(body);
      let masked = 0;
      const values = documents.map((doc) => {
        const result = masker.maskObject(doc.toJS({ maxAliasCount: 100 }), hint);
        masked += result.masked;
        return result.value;
      });
      return masked === 0 ? text : values.map((value) => stringify(value)).join('---\n');
    }

    if (!isJsonType(essence)) return withheld(body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return withheld(body);
    }
    const result =
      essence === jsonPatchType && Array.isArray(parsed)
        ? maskJsonPatch(masker, parsed, hint)
        : masker.maskObject(parsed, hint);
    return result.masked === 0 ? text : JSON.stringify(result.value);
  };
}

const cache = new WeakMap<MaskingConfig, RequestBodyMasker>();

/** One-call form; the compiled masker is cached per (frozen) config object. */
export function maskRequestBody(
  body: Buffer,
  contentType: string | undefined,
  config: MaskingConfig,
  options: RequestBodyOptions = {},
): string {
  let masker = cache.get(config);
  if (masker === undefined) {
    masker = createRequestBodyMasker(config);
    cache.set(config, masker);
  }
  return masker(body, contentType, options);
}
