// Decodes the protobuf request bodies kubectl's typed clients send into their JSON form: reviews and
// TokenRequest (kubectl 1.33 posts SelfSubjectAccessReview as protobuf), and since kubectl 1.32 every
// `kubectl create secret|configmap|namespace|serviceaccount|role|…` body. Envelope: the magic `k8s\0`,
// then runtime.Unknown{typeMeta=1, raw=2}; field numbers from k8s.io/api generated.proto. A kind (or a
// field of a stored kind) the sim has no schema for is answered 415 as kube-apiserver answers protobuf for
// a kind without it (a custom resource), never stored with fields dropped. Responses are never protobuf.
import { badRequest, textMediaTypes, unsupportedMediaType } from './status.js';
import type { Obj } from './resources.js';

type Field =
  | { name: string; type: 'string' | 'int' | 'bool' | 'strings' | 'bytes' }
  /** Server-set on create (creationTimestamp, managedFields): read past, never copied. */
  | { name: string; type: 'ignored' }
  | { name: string; type: 'message' | 'messages'; of: Schema }
  | { name: string; type: 'map'; value: 'string' | 'bytes' | Schema };
type Schema = Record<number, Field>;

const ownerReference: Schema = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool' },
  7: { name: 'blockOwnerDeletion', type: 'bool' },
};
const objectMeta: Schema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  4: { name: 'selfLink', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'ignored' },
  8: { name: 'creationTimestamp', type: 'ignored' },
  9: { name: 'deletionTimestamp', type: 'ignored' },
  10: { name: 'deletionGracePeriodSeconds', type: 'int' },
  11: { name: 'labels', type: 'map', value: 'string' },
  12: { name: 'annotations', type: 'map', value: 'string' },
  13: { name: 'ownerReferences', type: 'messages', of: ownerReference },
  14: { name: 'finalizers', type: 'strings' },
  17: { name: 'managedFields', type: 'ignored' },
};
const policyRule: Schema = {
  1: { name: 'verbs', type: 'strings' },
  2: { name: 'apiGroups', type: 'strings' },
  3: { name: 'resources', type: 'strings' },
  4: { name: 'resourceNames', type: 'strings' },
  5: { name: 'nonResourceURLs', type: 'strings' },
};
const labelSelector: Schema = { 1: { name: 'matchLabels', type: 'map', value: 'string' } };
const subject: Schema = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'apiGroup', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'namespace', type: 'string' },
};
const roleRef: Schema = {
  1: { name: 'apiGroup', type: 'string' },
  2: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
};
const objectReference: Schema = {
  1: { name: 'kind', type: 'string' },
  2: { name: 'namespace', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'fieldPath', type: 'string' },
};
const metaOnly: Schema = { 1: { name: 'metadata', type: 'message', of: objectMeta } };

/** Kinds the sim stores, decoded strictly: a field without a schema entry makes the body undecodable. */
const storedSchemas: Record<string, Schema> = {
  '/Secret': {
    ...metaOnly,
    2: { name: 'data', type: 'map', value: 'bytes' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'map', value: 'string' },
    5: { name: 'immutable', type: 'bool' },
  },
  '/ConfigMap': {
    ...metaOnly,
    2: { name: 'data', type: 'map', value: 'string' },
    3: { name: 'binaryData', type: 'map', value: 'bytes' },
    4: { name: 'immutable', type: 'bool' },
  },
  '/Namespace': {
    ...metaOnly,
    2: { name: 'spec', type: 'message', of: { 1: { name: 'finalizers', type: 'strings' } } },
    3: { name: 'status', type: 'message', of: { 1: { name: 'phase', type: 'string' } } },
  },
  '/ServiceAccount': {
    ...metaOnly,
    2: { name: 'secrets', type: 'messages', of: objectReference },
    3: { name: 'imagePullSecrets', type: 'messages', of: { 1: { name: 'name', type: 'string' } } },
    4: { name: 'automountServiceAccountToken', type: 'bool' },
  },
  'rbac.authorization.k8s.io/Role': { ...metaOnly, 2: { name: 'rules', type: 'messages', of: policyRule } },
  'rbac.authorization.k8s.io/ClusterRole': {
    ...metaOnly,
    2: { name: 'rules', type: 'messages', of: policyRule },
    3: {
      name: 'aggregationRule',
      type: 'message',
      of: { 1: { name: 'clusterRoleSelectors', type: 'messages', of: labelSelector } },
    },
  },
  'rbac.authorization.k8s.io/RoleBinding': {
    ...metaOnly,
    2: { name: 'subjects', type: 'messages', of: subject },
    3: { name: 'roleRef', type: 'message', of: roleRef },
  },
  'rbac.authorization.k8s.io/ClusterRoleBinding': {
    ...metaOnly,
    2: { name: 'subjects', type: 'messages', of: subject },
    3: { name: 'roleRef', type: 'message', of: roleRef },
  },
};

class UndecodableField extends Error {}
const resourceAttributes: Schema = {
  1: { name: 'namespace', type: 'string' },
  2: { name: 'verb', type: 'string' },
  3: { name: 'group', type: 'string' },
  4: { name: 'version', type: 'string' },
  5: { name: 'resource', type: 'string' },
  6: { name: 'subresource', type: 'string' },
  7: { name: 'name', type: 'string' },
};
const nonResourceAttributes: Schema = { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } };
const extraValue: Schema = { 1: { name: 'items', type: 'strings' } };
const accessSpec: Schema = {
  1: { name: 'resourceAttributes', type: 'message', of: resourceAttributes },
  2: { name: 'nonResourceAttributes', type: 'message', of: nonResourceAttributes },
  3: { name: 'user', type: 'string' },
  4: { name: 'groups', type: 'strings' },
  5: { name: 'extra', type: 'map', value: extraValue },
  6: { name: 'uid', type: 'string' },
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
  'authentication.k8s.io/TokenReview': withMeta({
    1: { name: 'token', type: 'string' },
    2: { name: 'audiences', type: 'strings' },
  }),
  'authentication.k8s.io/TokenRequest': withMeta({
    1: { name: 'audiences', type: 'strings' },
    4: { name: 'expirationSeconds', type: 'int' },
    3: {
      name: 'boundObjectRef',
      type: 'message',
      of: {
        1: { name: 'kind', type: 'string' },
        2: { name: 'apiVersion', type: 'string' },
        3: { name: 'name', type: 'string' },
        4: { name: 'uid', type: 'string' },
      },
    },
  }),
};

interface Raw {
  field: number;
  wire: number;
  value: bigint | Buffer;
}

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

function decodeMessage(buf: Buffer, schema: Schema, strict = false, path = ''): Obj {
  const out: Obj = {};
  for (const raw of readFields(buf)) {
    const f = schema[raw.field];
    if (!f) {
      if (strict) throw new UndecodableField(`field ${raw.field} of ${path || 'the object'}`);
      continue;
    }
    const bytes = raw.value instanceof Buffer ? raw.value : undefined;
    const here = path ? `${path}.${f.name}` : f.name;
    switch (f.type) {
      case 'ignored':
        break;
      // Go's generated marshalers write every non-pointer string, empty ones too; JSON omits them (omitempty).
      case 'string':
        if (bytes && bytes.length > 0) out[f.name] = bytes.toString('utf8');
        break;
      case 'bytes':
        if (bytes) out[f.name] = bytes.toString('base64');
        break;
      case 'int':
        if (typeof raw.value === 'bigint') out[f.name] = Number(BigInt.asIntN(64, raw.value));
        break;
      case 'bool':
        if (typeof raw.value === 'bigint') out[f.name] = raw.value !== 0n;
        break;
      case 'strings':
        if (bytes) (out[f.name] ??= []).push(bytes.toString('utf8'));
        break;
      case 'message':
        if (bytes) out[f.name] = decodeMessage(bytes, f.of, strict, here);
        break;
      case 'messages':
        if (bytes) (out[f.name] ??= []).push(decodeMessage(bytes, f.of, strict, here));
        break;
      case 'map': {
        if (!bytes) break;
        const entry = readFields(bytes);
        const k = entry.find((e) => e.field === 1)?.value;
        const v = entry.find((e) => e.field === 2)?.value;
        if (!(k instanceof Buffer)) break;
        const text = v instanceof Buffer ? v : Buffer.alloc(0);
        const value =
          f.value === 'string'
            ? text.toString('utf8')
            : f.value === 'bytes'
              ? text.toString('base64')
              : (decodeMessage(text, f.value, strict, here)['items'] ?? []);
        (out[f.name] ??= {})[k.toString('utf8')] = value;
        break;
      }
    }
  }
  return out;
}

export function decodeProtobufObject(body: Buffer): Obj {
  const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);
  if (body.length < 4 || !body.subarray(0, 4).equals(magic))
    throw badRequest('the body of the request was in an unknown format: protobuf without the k8s envelope');
  let unknown: Obj;
  let raw: Buffer | undefined;
  try {
    const fields = readFields(body.subarray(4));
    const typeMeta = fields.find((f) => f.field === 1)?.value;
    raw = fields.find((f) => f.field === 2)?.value as Buffer | undefined;
    unknown =
      typeMeta instanceof Buffer
        ? decodeMessage(typeMeta, { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } })
        : {};
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
  const apiVersion = String(unknown['apiVersion'] ?? '');
  const kind = String(unknown['kind'] ?? '');
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const stored = storedSchemas[`${group}/${kind}`];
  const schema = stored ?? schemas[`${group}/${kind}`];
  if (!schema) throw unsupportedMediaType(textMediaTypes);
  try {
    return { apiVersion, kind, ...decodeMessage(raw ?? Buffer.alloc(0), schema, stored !== undefined) };
  } catch (e) {
    if (e instanceof UndecodableField) throw unsupportedMediaType(textMediaTypes);
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
}
