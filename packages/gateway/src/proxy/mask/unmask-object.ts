// Restoring masked values in a one-object write (create, update, merge / strategic merge patch,
// server-side apply sent as JSON): each placeholder in a masked field takes the stored value of the
// same field, the last-applied annotation included; a Secret's stringData maps to its data.
import {
  annotationLabel,
  annotationPath,
  deepEqual,
  describePath,
  isObj,
  lastApplied,
  missingRefusal,
  parseJson,
  refusal,
  resolveStored,
  setAt,
  unsafeNumber,
  type MaskedFinder,
  type Obj,
  type WriteAnalysis,
  type WriteRequest,
} from './unmask-support.js';
import type { MaskHint } from './mask-object.js';

function isSecretBody(doc: Obj, resource: string): boolean {
  return doc.kind === 'Secret' || (doc.kind === undefined && resource === 'secrets');
}

/** Create, update, merge / strategic merge patch, server-side apply (as JSON): one object. */
export function analyseObject(
  finder: MaskedFinder,
  request: WriteRequest,
  doc: unknown,
  hint: MaskHint,
): WriteAnalysis {
  const paths = finder.maskedPlaceholders(doc, hint);
  const inAnnotation = finder.maskedInAnnotation(doc, hint);
  if (paths.length === 0 && inAnnotation === undefined) return { kind: 'pass' };
  const labels = [
    ...paths.map(describePath),
    ...(inAnnotation?.paths ?? []).map((p) => `${annotationLabel}.${describePath(p)}`),
  ];
  if (!isObj(doc))
    return refusal(
      `the body carries the mask placeholder in ${labels.join(', ')} and is not an object the gateway can rewrite`,
    );
  if (unsafeNumber(doc))
    return refusal(
      `the body carries the mask placeholder in ${labels.join(', ')} and numbers beyond 2^53 the gateway cannot rewrite exactly: send the real values`,
    );
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
        if (
          path.length === 2 &&
          path[0] === 'stringData' &&
          typeof key === 'string' &&
          isSecretBody(doc, request.resource) &&
          isObj(stored.data)
        ) {
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
          const found =
            resolveStored(path, inAnnotation.parsed, storedAnnotation).value ??
            resolveStored(path, inAnnotation.parsed, stored).value;
          if (found === undefined) missing.push(label);
          else {
            setAt(annotation, path, found);
            kept.push(label);
          }
        }
        const text =
          storedRaw !== undefined && deepEqual(annotation, storedAnnotation)
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
  else if (
    isObj(next.metadata) &&
    (next.metadata.resourceVersion === undefined || next.metadata.resourceVersion === '')
  )
    next.metadata.resourceVersion = version;
}
