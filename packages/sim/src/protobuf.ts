// Decodes the few protobuf request bodies kubectl's typed clients send (reviews and TokenRequest;
// kubectl 1.33 posts SelfSubjectAccessReview as application/vnd.kubernetes.protobuf) into their JSON
// form. Envelope: the magic `k8s\0`, then runtime.Unknown{typeMeta=1, raw=2}; field numbers from
// k8s.io/api generated.proto. Responses are never protobuf (see negotiate.ts).
import { badRequest, unsupportedMediaType } from './status.js';
import type { Obj } from './resources.js';

type Field =
  | { name: string; type: 'string' | 'int' | 'bool' | 'strings' }
  | { name: string; type: 'message'; of: Schema }
  | { name: string; type: 'map'; value: 'string' | Schema };
type Schema = Record<number, Field>;

const objectMeta: Schema = {
  1: { name: 'name', type: 'string' }, 2: { name: 'generateName', type: 'string' }, 3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' }, 6: { name: 'resourceVersion', type: 'string' },
  11: { name: 'labels', type: 'map', value: 'string' }, 12: { name: 'annotations', type: 'map', value: 'string' },
};
const resourceAttributes: Schema = {
  1: { name: 'namespace', type: 'string' }, 2: { name: 'verb', type: 'string' }, 3: { name: 'group', type: 'string' }, 4: { name: 'version', type: 'string' },
  5: { name: 'resource', type: 'string' }, 6: { name: 'subresource', type: 'string' }, 7: { name: 'name', type: 'string' },
};
const nonResourceAttributes: Schema = { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } };
const extraValue: Schema = { 1: { name: 'items', type: 'strings' } };
const accessSpec: Schema = {
  1: { name: 'resourceAttributes', type: 'message', of: resourceAttributes }, 2: { name: 'nonResourceAttributes', type: 'message', of: nonResourceAttributes },
  3: { name: 'user', type: 'string' }, 4: { name: 'groups', type: 'strings' }, 5: { name: 'extra', type: 'map', value: extraValue }, 6: { name: 'uid', type: 'string' },
};
const withMeta = (spec?: Schema): Schema => {
  const s: Schema = { 1: { name: 'metadata', type: 'message', of: objectMeta } };
  if (spec) s[2] = { name: 'spec', type: 'message', of: spec };
  return s;
};

const schemas: Record<string, Schema> = {
  'authorization.k8s.io/SelfSubjectAccessReview': withMeta(accessSpec),
  'authorization.k8s.io/SubjectAccessReview': withMeta(accessSpec),
  'authorization.k8s.io/LocalSubjectAccessReview': withMeta(accessSpec),
  'authorization.k8s.io/SelfSubjectRulesReview': withMeta({ 1: { name: 'namespace', type: 'string' } }),
  'authentication.k8s.io/SelfSubjectReview': withMeta(),
  'authentication.k8s.io/TokenReview': withMeta({ 1: { name: 'token', type: 'string' }, 2: { name: 'audiences', type: 'strings' } }),
  'authentication.k8s.io/TokenRequest': withMeta({
    1: { name: 'audiences', type: 'strings' }, 4: { name: 'expirationSeconds', type: 'int' },
    3: { name: 'boundObjectRef', type: 'message', of: { 1: { name: 'kind', type: 'string' }, 2: { name: 'apiVersion', type: 'string' }, 3: { name: 'name', type: 'string' }, 4: { name: 'uid', type: 'string' } } },
  }),
};

interface Raw { field: number; wire: number; value: bigint | Buffer }

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function readFields(buf: Buffer): Raw[] {
  const out: Raw[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    pos = p1;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ field, wire, value: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ field, wire, value: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

function decodeMessage(buf: Buffer, schema: Schema): Obj {
  const out: Obj = {};
  for (const raw of readFields(buf)) {
    const f = schema[raw.field];
    if (!f) continue;
    const bytes = raw.value instanceof Buffer ? raw.value : undefined;
    switch (f.type) {
      case 'string': if (bytes) out[f.name] = bytes.toString('utf8'); break;
      case 'int': if (typeof raw.value === 'bigint') out[f.name] = Number(BigInt.asIntN(64, raw.value)); break;
      case 'bool': if (typeof raw.value === 'bigint') out[f.name] = raw.value !== 0n; break;
      case 'strings': if (bytes) (out[f.name] ??= []).push(bytes.toString('utf8')); break;
      case 'message': if (bytes) out[f.name] = decodeMessage(bytes, f.of); break;
      case 'map': {
        if (!bytes) break;
        const entry = readFields(bytes);
        const k = entry.find((e) => e.field === 1)?.value;
        const v = entry.find((e) => e.field === 2)?.value;
        if (!(k instanceof Buffer)) break;
        const value = f.value === 'string' ? (v instanceof Buffer ? v.toString('utf8') : '') : v instanceof Buffer ? decodeMessage(v, f.value)['items'] ?? [] : [];
        (out[f.name] ??= {})[k.toString('utf8')] = value;
        break;
      }
    }
  }
  return out;
}

export function decodeProtobufObject(body: Buffer): Obj {
  const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);
  if (body.length < 4 || !body.subarray(0, 4).equals(magic)) throw badRequest('the body of the request was in an unknown format: protobuf without the k8s envelope');
  let unknown: Obj;
  let raw: Buffer | undefined;
  try {
    const fields = readFields(body.subarray(4));
    const typeMeta = fields.find((f) => f.field === 1)?.value;
    raw = fields.find((f) => f.field === 2)?.value as Buffer | undefined;
    unknown = typeMeta instanceof Buffer ? decodeMessage(typeMeta, { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } }) : {};
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
  const apiVersion = String(unknown['apiVersion'] ?? '');
  const kind = String(unknown['kind'] ?? '');
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const schema = schemas[`${group}/${kind}`];
  if (!schema) throw unsupportedMediaType('application/vnd.kubernetes.protobuf');
  try {
    return { apiVersion, kind, ...decodeMessage(raw ?? Buffer.alloc(0), schema) };
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
}
