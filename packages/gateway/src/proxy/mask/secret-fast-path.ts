// Byte-level masking of one v1 Secret from a SecretList, without JSON.parse/stringify: the hot path for
// large lists. It rewrites only `data`/`stringData` values and declines (returns undefined, so the
// object masker takes over) on anything unusual: another kind, an escaped key, a metadata that may
// hold the last-applied annotation, a malformed value.
import { MASKED_BASE64, MASKED_TEXT } from './mask-object.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MASKED_BASE64_JSON = Buffer.from(JSON.stringify(MASKED_BASE64));
const MASKED_TEXT_JSON = Buffer.from(JSON.stringify(MASKED_TEXT));
const NULL = Buffer.from('null');
const LAST_APPLIED = Buffer.from('last-applied');
const UNICODE_ESCAPE = Buffer.from('\\u');

function skipSpace(buf: Buffer, i: number): number {
  while (i < buf.length) {
    const c = buf[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `i` at an opening quote → index just past the closing quote, or -1. */
function skipString(buf: Buffer, i: number): number {
  let at = i + 1;
  for (;;) {
    const q = buf.indexOf(QUOTE, at);
    if (q < 0) return -1;
    // The quote closes the string unless an odd run of backslashes precedes it.
    let run = 0;
    for (let k = q - 1; k > i && buf[k] === BACKSLASH; k--) run++;
    if (run % 2 === 0) return q + 1;
    at = q + 1;
  }
}

/** `i` at the first byte of a value → index just past it, or -1 when malformed. */
function skipValue(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === undefined) return -1;
  if (c === QUOTE) return skipString(buf, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    let at = i;
    while (at < buf.length) {
      const b = buf[at]!;
      if (b === QUOTE) {
        at = skipString(buf, at);
        if (at < 0) return -1;
        continue;
      }
      if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        depth--;
        if (depth === 0) return at + 1;
      }
      at++;
    }
    return -1;
  }
  let at = i;
  while (at < buf.length) {
    const b = buf[at]!;
    if (b === 0x2c || b === 0x7d || b === 0x5d || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) break;
    at++;
  }
  return at > i ? at : -1;
}

function equalsAscii(buf: Buffer, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (buf[start + k] !== text.charCodeAt(k)) return false;
  return true;
}

/**
 * Rewrites the values of the object at `i` (a data map) into `parts`; returns the index past it and
 * the count of masked values, or undefined to decline.
 */
function maskMapBytes(
  buf: Buffer,
  i: number,
  replacement: Buffer,
  parts: Buffer[],
): { end: number; masked: number } | undefined {
  if (buf[i] !== 0x7b) return undefined;
  let masked = 0;
  let copyFrom = i;
  let at = skipSpace(buf, i + 1);
  if (buf[at] === 0x7d) {
    parts.push(buf.subarray(copyFrom, at + 1));
    return { end: at + 1, masked };
  }
  for (;;) {
    if (buf[at] !== QUOTE) return undefined;
    at = skipString(buf, at);
    if (at < 0) return undefined;
    at = skipSpace(buf, at);
    if (buf[at] !== 0x3a) return undefined;
    const valueStart = skipSpace(buf, at + 1);
    const valueEnd = skipValue(buf, valueStart);
    if (valueEnd < 0) return undefined;
    if (!(valueEnd - valueStart === 4 && buf.subarray(valueStart, valueEnd).equals(NULL))) {
      parts.push(buf.subarray(copyFrom, valueStart), replacement);
      copyFrom = valueEnd;
      masked++;
    }
    at = skipSpace(buf, valueEnd);
    if (buf[at] === 0x2c) {
      at = skipSpace(buf, at + 1);
      continue;
    }
    if (buf[at] === 0x7d) {
      parts.push(buf.subarray(copyFrom, at + 1));
      return { end: at + 1, masked };
    }
    return undefined;
  }
}

/** The masked bytes of one Secret, or undefined when the object masker must handle it. */
export function maskSecretBytes(buf: Buffer): Buffer | undefined {
  let at = skipSpace(buf, 0);
  if (buf[at] !== 0x7b) return undefined;
  const parts: Buffer[] = [];
  let copyFrom = 0;
  at = skipSpace(buf, at + 1);
  if (buf[at] === 0x7d) return buf;
  for (;;) {
    if (buf[at] !== QUOTE) return undefined;
    const keyStart = at + 1;
    const keyEnd = skipString(buf, at);
    if (keyEnd < 0) return undefined;
    if (buf.subarray(keyStart, keyEnd - 1).includes(BACKSLASH)) return undefined;
    at = skipSpace(buf, keyEnd);
    if (buf[at] !== 0x3a) return undefined;
    const valueStart = skipSpace(buf, at + 1);
    const valueEnd = skipValue(buf, valueStart);
    if (valueEnd < 0) return undefined;
    const keyLast = keyEnd - 1;
    if (equalsAscii(buf, keyStart, keyLast, 'kind') && !equalsAscii(buf, valueStart, valueEnd, '"Secret"'))
      return undefined;
    if (equalsAscii(buf, keyStart, keyLast, 'apiVersion') && !equalsAscii(buf, valueStart, valueEnd, '"v1"'))
      return undefined;
    if (equalsAscii(buf, keyStart, keyLast, 'metadata')) {
      const metadata = buf.subarray(valueStart, valueEnd);
      if (metadata.includes(LAST_APPLIED) || metadata.includes(UNICODE_ESCAPE)) return undefined;
    }
    const isData = equalsAscii(buf, keyStart, keyLast, 'data');
    if (
      (isData || equalsAscii(buf, keyStart, keyLast, 'stringData')) &&
      !equalsAscii(buf, valueStart, valueEnd, 'null')
    ) {
      parts.push(buf.subarray(copyFrom, valueStart));
      const masked = maskMapBytes(buf, valueStart, isData ? MASKED_BASE64_JSON : MASKED_TEXT_JSON, parts);
      if (masked === undefined || masked.end !== valueEnd) return undefined;
      copyFrom = valueEnd;
    }
    at = skipSpace(buf, valueEnd);
    if (buf[at] === 0x2c) {
      at = skipSpace(buf, at + 1);
      continue;
    }
    if (buf[at] === 0x7d) break;
    return undefined;
  }
  if (skipSpace(buf, at + 1) !== buf.length) return undefined;
  if (parts.length === 0) return buf;
  parts.push(buf.subarray(copyFrom));
  return Buffer.concat(parts);
}
