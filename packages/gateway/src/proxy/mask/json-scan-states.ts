// The vocabulary of the streaming JSON scanner (json-stream.ts): its phases outside a captured value,
// what a completed capture is, and the byte classes it scans by.

// Phases of the scanner outside a captured value.
export const DOC_START = 0;
export const OBJ_FIRST = 1; // after the top-level `{`
export const OBJ_KEY = 2; // after `,` in the top-level object
export const OBJ_COLON = 3;
export const OBJ_VALUE = 4;
export const OBJ_AFTER = 5;
export const ARR_FIRST = 6; // after the `[` of a streamed array
export const ARR_ELEM = 7; // after `,` in a streamed array
export const ARR_AFTER = 8;
export const TRAILING = 9;
export const SEQUENCE = 10;
export const CAPTURE = 11;

// What a completed capture is.
export const CAP_WHOLE = 0;
export const CAP_KEY = 1;
export const CAP_FIELD = 2;
export const CAP_ELEMENT = 3;
export const CAP_EVENT = 4;

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = Buffer.from(',');
export const NEWLINE = Buffer.from('\n');

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Bytes that may appear in a JSON number, `true`, `false` or `null`. */
export function isScalarByte(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    c === 0x2d ||
    c === 0x2b ||
    c === 0x2e
  );
}
