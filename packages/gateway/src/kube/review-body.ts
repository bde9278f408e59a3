// Reads the body of a SelfSubjectAccessReview or SelfSubjectRulesReview the gateway answers itself
// (issue #16 item 3). kubectl (1.32 and later) posts reviews as protobuf: the envelope is the magic `k8s\0`, then
// runtime.Unknown{typeMeta=1{apiVersion=1, kind=2}, raw=2}; field numbers are those of
// k8s.io/api/authorization/v1/generated.proto. Only the fields a review's spec carries are read.
import { HoopError } from '../lib/errors.js';
import type { AccessReviewSpec } from './authorization.js';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export interface ReviewBody {
  apiVersion: string;
  kind: string;
  /** SelfSubjectAccessReview: what is asked about. */
  access?: AccessReviewSpec;
  /** SelfSubjectRulesReview: the namespace asked about. */
  namespace?: string;
}

type Fields = Map<number, Buffer[]>;

function invalid(message: string): HoopError {
  return new HoopError('ERR_BAD_REQUEST', `the review could not be read: ${message}`);
}

function readVarint(buf: Buffer, start: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (let pos = start; pos < buf.length && shift < 35; pos += 1) {
    const byte = buf[pos] as number;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos + 1];
    shift += 7;
  }
  throw invalid('truncated or oversized protobuf varint');
}

/** Length-delimited fields by number; varint and fixed-width fields are read past. */
function readFields(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    pos = afterKey;
    if (wire === 0) pos = readVarint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [length, afterLength] = readVarint(buf, pos);
      const end = afterLength + length;
      if (end > buf.length) throw invalid('truncated protobuf field');
      fields.set(field, [...(fields.get(field) ?? []), buf.subarray(afterLength, end)]);
      pos = end;
    } else throw invalid(`unsupported protobuf wire type ${wire}`);
  }
  if (pos > buf.length) throw invalid('truncated protobuf field');
  return fields;
}

function strings(fields: Fields, names: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [number, name] of Object.entries(names)) {
    const value = fields.get(Number(number))?.at(-1);
    if (value !== undefined && value.length > 0) out[name] = value.toString('utf8');
  }
  return out;
}

const RESOURCE_ATTRIBUTES = {
  1: 'namespace',
  2: 'verb',
  3: 'group',
  4: 'version',
  5: 'resource',
  6: 'subresource',
  7: 'name',
};
const NON_RESOURCE_ATTRIBUTES = { 1: 'path', 2: 'verb' };

function fromProtobuf(body: Buffer): ReviewBody {
  const envelope = readFields(body.subarray(MAGIC.length));
  const typeMeta = envelope.get(1)?.at(-1);
  const { apiVersion = '', kind = '' } =
    typeMeta === undefined ? {} : strings(readFields(typeMeta), { 1: 'apiVersion', 2: 'kind' });
  const object = readFields(envelope.get(2)?.at(-1) ?? Buffer.alloc(0));
  const spec = readFields(object.get(2)?.at(-1) ?? Buffer.alloc(0));
  if (kind === 'SelfSubjectRulesReview')
    return { apiVersion, kind, namespace: strings(spec, { 1: 'namespace' })['namespace'] ?? '' };
  const access: AccessReviewSpec = {};
  const resource = spec.get(1)?.at(-1);
  const nonResource = spec.get(2)?.at(-1);
  if (resource !== undefined) access.resourceAttributes = strings(readFields(resource), RESOURCE_ATTRIBUTES);
  if (nonResource !== undefined)
    access.nonResourceAttributes = strings(readFields(nonResource), NON_RESOURCE_ATTRIBUTES);
  return { apiVersion, kind, access };
}

function fromJson(body: Buffer): ReviewBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('the body is neither JSON nor a Kubernetes protobuf envelope');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid('the body is not a JSON object');
  const object = parsed as { apiVersion?: unknown; kind?: unknown; spec?: unknown };
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
  const kind = typeof object.kind === 'string' ? object.kind : '';
  const spec = (typeof object.spec === 'object' && object.spec !== null ? object.spec : {}) as Record<string, unknown>;
  if (kind === 'SelfSubjectRulesReview')
    return { apiVersion, kind, namespace: typeof spec['namespace'] === 'string' ? spec['namespace'] : '' };
  return { apiVersion, kind, access: spec as AccessReviewSpec };
}

/** The review in a request body, JSON or protobuf. */
export function readReviewBody(body: Buffer): ReviewBody {
  return body.length >= MAGIC.length && body.subarray(0, MAGIC.length).equals(MAGIC)
    ? fromProtobuf(body)
    : fromJson(body);
}
