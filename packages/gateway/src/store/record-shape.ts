// A record's data as a shape and values (issue #17), shared by both stores' compact layouts: the
// shape is its canonical JSON with the per-call members cut out (stored once per distinct shape), the
// values are the cut-out members' canonical texts (stored with the record). fillShape(shape, values)
// gives the hashed text back byte for byte; splitData refuses any record for which it would not.
// Also the compact forms of the gateway's event and session ids.
import type { AuditRecordKind } from './types.js';

/** Separates the holes of a shape and their values: canonical JSON never holds a raw control character. */
export const HOLE = '\u0001';

/**
 * Members that repeat from call to call stay in the shape; every other member (ids, paths, timings,
 * bodies, anything unknown) is a hole. Before authentication only what the gateway itself wrote is
 * kept in the shape: the caller's path, headers and classification are values of the row, so a
 * stranger's requests cannot grow the shape table and each refusal costs the same.
 */
const SHAPED: Readonly<Record<string, ReadonlySet<string>>> = {
  request: new Set(['cluster', 'decision', 'info', 'kubectlCommand', 'method', 'principal', 'userAgent']),
  anonymousRequest: new Set(['cluster', 'decision', 'method']),
  outcome: new Set(['status', 'error']),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX32 = /^[0-9a-f]{32}$/;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

function uuidText(bytes: Buffer, offset: number): string {
  const h = bytes.toString('hex', offset, offset + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A lowercase UUID as 16 bytes; anything else as it is. */
export function encodeEventId(id: string | undefined): Buffer | string | null {
  if (id === undefined) return null;
  return UUID.test(id) ? uuidBytes(id) : id;
}

export function decodeEventId(value: Buffer | string | null): string | undefined {
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  return uuidText(value, 0);
}

/** The gateway's session ids (`k-` + 32 hex, `s-` + a UUID) as a marker byte and 16 bytes. */
export function encodeSessionId(id: string | undefined): Buffer | string | null {
  if (id === undefined) return null;
  if (id.startsWith('k-') && HEX32.test(id.slice(2)))
    return Buffer.concat([Buffer.of(0x6b), Buffer.from(id.slice(2), 'hex')]);
  if (id.startsWith('s-') && UUID.test(id.slice(2))) return Buffer.concat([Buffer.of(0x73), uuidBytes(id.slice(2))]);
  return id;
}

export function decodeSessionId(value: Buffer | string | null): string | undefined {
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  return value[0] === 0x6b ? `k-${value.toString('hex', 1)}` : `s-${uuidText(value, 1)}`;
}

/** canonicalJson of a plain object whose members are already canonical texts, keys in canonical order. */
function shapeOf(
  kind: AuditRecordKind,
  data: Record<string, unknown>,
  memberText: (value: unknown) => string,
): { shape: string; holes: string[] } | undefined {
  const shaped =
    kind === 'request'
      ? data['principal'] === undefined
        ? SHAPED['anonymousRequest']
        : SHAPED['request']
      : SHAPED[kind];
  if (shaped === undefined) return undefined;
  const keys = Object.keys(data)
    .filter((key) => data[key] !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const holes: string[] = [];
  let shape = '{';
  keys.forEach((key, index) => {
    const text = memberText(data[key]);
    shape += `${index === 0 ? '' : ','}${JSON.stringify(key)}:`;
    if (shaped.has(key)) shape += text;
    else {
      shape += HOLE;
      holes.push(text);
    }
  });
  return { shape: `${shape}}`, holes };
}

const isHole = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.keys(value).length === 1 &&
  (value as Record<string, unknown>)['\u0001'] === 0;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Fills a shape's holes (its text split at HOLE) with the row's values. */
export function fillShape(parts: readonly string[], values: string): string {
  if (parts.length === 1) return parts[0] as string;
  const filled = values.split(HOLE);
  let text = parts[0] as string;
  for (let i = 1; i < parts.length; i++) text += (filled[i - 1] ?? '') + (parts[i] as string);
  return text;
}

/** The shape and joined values of a record's data, or undefined when it is kept whole. */
export function splitData(
  kind: AuditRecordKind,
  data: Record<string, unknown>,
  canonicalData: string,
  canonical: (value: unknown) => string,
): { shape: string; values: string } | undefined {
  const split = shapeOf(kind, data, canonical);
  if (split === undefined || split.holes.some((hole) => hole.includes(HOLE))) return undefined;
  const values = split.holes.join(HOLE);
  return fillShape(split.shape.split(HOLE), values) === canonicalData ? { shape: split.shape, values } : undefined;
}

/** A shape as read: its text split at the holes, and its members parsed once (deep-frozen: records share them). */
export interface LoadedShape {
  parts: string[];
  /** [key, value] of every member in canonical order; a hole's value is undefined. */
  members: [string, unknown][];
}

export function parseShape(text: string): LoadedShape {
  const parsed = JSON.parse(text.replaceAll(HOLE, '{"\\u0001":0}')) as Record<string, unknown>;
  const members = Object.entries(parsed).map(([key, value]): [string, unknown] => [
    key,
    isHole(value) ? undefined : deepFreeze(value),
  ]);
  return { parts: text.split(HOLE), members };
}

/** A record's data as an object: the shape's members (shared, frozen) and the values parsed alone. */
export function dataFromShape(shape: LoadedShape, values: string): Record<string, unknown> {
  const texts = values.split(HOLE);
  const data: Record<string, unknown> = {};
  let hole = 0;
  for (const [key, value] of shape.members)
    data[key] = value === undefined ? JSON.parse(texts[hole++] as string) : value;
  return data;
}
