// The top-level object of a scanned document, held as raw field bytes: masked and written out as the
// head of a streamed list (its fields before `items` / `rows`), or whole when nothing is streamed —
// byte for byte as received when nothing in it was masked.
import type { MaskHint, ObjectMasker } from './mask-object.js';

export type RawFields = ReadonlyMap<string, Buffer>;
type Parse = (raw: Buffer) => unknown;

function parsed(fields: RawFields, parse: Parse): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [name, raw] of fields) object[name] = parse(raw);
  return object;
}

/** The masked fields before the streamed array, up to and including `"key":[`; and the list's kind. */
export function envelopeHead(
  fields: RawFields,
  key: string,
  masker: ObjectMasker,
  hint: MaskHint | undefined,
  parse: Parse,
): { bytes: Buffer; kind: string } {
  const head = parsed(fields, parse);
  const headJson = JSON.stringify(masker.maskObject(head, hint).value);
  const separator = fields.size > 0 ? ',' : '';
  const bytes = Buffer.from(`${headJson.slice(0, -1)}${separator}${JSON.stringify(key)}:[`, 'utf8');
  return { bytes, kind: typeof head.kind === 'string' ? head.kind : 'List' };
}

/** The whole object, masked; the original bytes when nothing was masked. */
export function wholeObject(
  fields: RawFields,
  masker: ObjectMasker,
  hint: MaskHint | undefined,
  parse: Parse,
): { bytes: Buffer; masked: boolean } {
  const masked = masker.maskObject(parsed(fields, parse), hint);
  if (masked.masked > 0) return { bytes: Buffer.from(JSON.stringify(masked.value), 'utf8'), masked: true };
  const parts: Buffer[] = [Buffer.from('{')];
  let first = true;
  for (const [name, raw] of fields) {
    parts.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(name)}:`), raw);
    first = false;
  }
  parts.push(Buffer.from('}'));
  return { bytes: Buffer.concat(parts), masked: false };
}
