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
import { createObjectMasker, type MaskHint } from './mask-object.js';
import { compileRules, ruleAppliesTo } from './rules.js';
import { analyseJsonPatch } from './unmask-json-patch.js';
import { analyseObject } from './unmask-object.js';
import {
  isObj,
  lastApplied,
  markPlaceholders,
  parseJson,
  placeholderBytes,
  refusal,
  valueAt,
  type Mark,
  type MaskedFinder,
  type Obj,
  type Path,
  type WriteAnalysis,
  type WriteRequest,
} from './unmask-support.js';

export {
  describePath,
  type StoredObject,
  type WriteAnalysis,
  type WriteRequest,
  type WriteRestore,
} from './unmask-support.js';

export interface WriteRestorer {
  /** Cheap unless the body carries a placeholder for a resource the gateway masks. */
  analyse(request: WriteRequest): WriteAnalysis;
}

const writeMethods = new Set(['POST', 'PUT', 'PATCH']);
const yamlTypes = new Set(['application/yaml', 'application/x-yaml', 'text/yaml']);

/** `copies` / `moves` when a JSON patch body has such an operation. */
function copyOrMove(request: WriteRequest): string | undefined {
  if (parseMediaType(request.contentType)?.essence !== 'application/json-patch+json') return undefined;
  const parsed = parseJson(request.body.toString('utf8'));
  if (!parsed.ok || !Array.isArray(parsed.value)) return undefined;
  const op = parsed.value.find(
    (operation): operation is Obj => isObj(operation) && (operation.op === 'copy' || operation.op === 'move'),
  );
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
  function maskedInAnnotation(
    doc: unknown,
    hint: MaskHint,
  ): { parsed: unknown; paths: Path[]; raw: string } | undefined {
    const raw = lastApplied(doc);
    if (raw === undefined || !placeholderBytes.some((p) => raw.includes(p.toString()))) return undefined;
    const parsed = parseJson(raw);
    if (!parsed.ok || !isObj(parsed.value)) return undefined; // an unparseable annotation is a leaf: see maskedPlaceholders
    const paths = maskedPlaceholders(parsed.value, hint);
    return paths.length === 0 ? undefined : { parsed: parsed.value, paths, raw };
  }

  const finder: MaskedFinder = {
    maskedPlaceholders,
    maskedInAnnotation,
    maskObject: (doc, hint) => masker.maskObject(doc, hint),
  };

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
      const hint: MaskHint = {
        resource: request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`,
      };
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
        return parsed.ok
          ? analyseObject(finder, request, parsed.value, hint)
          : analyseYaml(text, hint, unsupported('YAML'));
      }
      if (essence !== undefined && yamlTypes.has(essence)) return analyseYaml(text, hint, unsupported('YAML'));
      if (essence === undefined || !(essence === 'application/json' || essence.endsWith('+json')))
        return unsupported(essence ?? 'untyped')();
      const parsed = parseJson(text);
      if (!parsed.ok) return { kind: 'pass' }; // the API server refuses it; nothing can be stored
      if (essence === 'application/json-patch+json') {
        if (!Array.isArray(parsed.value)) return { kind: 'pass' };
        return analyseJsonPatch(finder, request, parsed.value, hint);
      }
      return analyseObject(finder, request, parsed.value, hint);
    },
  };
}
