// A minimal /openapi/v3: per group version, one PATCH operation per kind that carries
// x-kubernetes-group-version-kind and the `fieldValidation` query parameter. That is what kubectl reads
// to decide that the server validates fields itself (so it sends fieldValidation=Strict); without a
// requestBody, kubectl computes apply patches from its built-in types. components.schemas
// (openapi-schemas.ts) give every kind its GVK and top-level fields, for `kubectl explain`.
import { createHash } from 'node:crypto';
import { kindSchemas } from './openapi-schemas.js';
import type { ResourceDef } from './resources.js';

export interface OpenApiDocs {
  /** /openapi/v2 as JSON and as gnostic protobuf (kubectl 1.27 reads only the protobuf one, before validating). */
  v2Json: Buffer;
  v2Protobuf: Buffer;
  root: Buffer;
  /** By path after /openapi/v3/ (`api/v1`, `apis/apps/v1`). */
  byGroupVersion: Map<string, Buffer>;
}

export function buildOpenApi(defs: readonly ResourceDef[], gitVersion: string): OpenApiDocs {
  const groups = new Map<string, ResourceDef[]>();
  for (const d of defs) {
    const key = d.group ? `apis/${d.group}/${d.version}` : `api/${d.version}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const byGroupVersion = new Map<string, Buffer>();
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [gvPath, list] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const docPaths: Record<string, unknown> = {};
    for (const d of list) {
      if (!d.verbs.includes('patch')) continue;
      const base = `/${gvPath}${d.namespaced ? '/namespaces/{namespace}' : ''}/${d.resource}/{name}`;
      docPaths[base] = {
        patch: {
          description: `partially update the specified ${d.kind}`,
          operationId: `patch${d.kind}`,
          parameters: [
            { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
            { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
            { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
            { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
          ],
          responses: { '200': { description: 'OK' } },
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: d.group, version: d.version, kind: d.kind },
        },
      };
    }
    const doc = Buffer.from(
      JSON.stringify({
        openapi: '3.0.0',
        info: { title: 'Kubernetes', version: gitVersion },
        paths: docPaths,
        components: { schemas: kindSchemas(list) },
      }),
    );
    byGroupVersion.set(gvPath, doc);
    const hash = createHash('sha512').update(doc).digest('hex').slice(0, 128).toUpperCase();
    paths[gvPath] = { serverRelativeURL: `/openapi/v3/${gvPath}?hash=${hash}` };
  }
  const v2 = buildOpenApiV2(defs, gitVersion);
  return { ...v2, root: Buffer.from(JSON.stringify({ paths })), byGroupVersion };
}

// ---- /openapi/v2 ----
// The same PATCH operations in Swagger 2.0 (no definitions: kubectl then skips client-side schema
// validation and computes apply patches from its built-in types). The protobuf encoding follows
// gnostic's openapiv2.proto: Document{swagger=1, info=2, paths=8}, Paths{path=2}, NamedPathItem{name=1,
// value=2}, PathItem{patch=8}, Operation{operation_id=5, parameters=8, responses=9, vendor_extension=13},
// ParametersItem{parameter=1}, Parameter{non_body_parameter=2}, NonBodyParameter{query_parameter_sub_schema=3},
// QueryParameterSubSchema{in=2, name=4, type=6}, NamedAny{name=1, value=2}, Any{yaml=2}.

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function field(no: number, value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([varint((no << 3) | 2), varint(bytes.length), bytes]);
}

function buildOpenApiV2(defs: readonly ResourceDef[], gitVersion: string): { v2Json: Buffer; v2Protobuf: Buffer } {
  const json: Record<string, unknown> = {};
  const pathItems: Buffer[] = [];
  for (const d of defs) {
    if (!d.verbs.includes('patch')) continue;
    const path = `/${d.group ? `apis/${d.group}` : 'api'}/${d.version}${d.namespaced ? '/namespaces/{namespace}' : ''}/${d.resource}/{name}`;
    const params = ['dryRun', 'fieldManager', 'fieldValidation', 'force'];
    json[path] = {
      patch: {
        operationId: `patch${d.kind}`,
        parameters: params.map((name) => ({ name, in: 'query', type: 'string', uniqueItems: true })),
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: d.group, kind: d.kind, version: d.version },
      },
    };
    const operation = Buffer.concat([
      field(5, `patch${d.kind}`),
      ...params.map((name) =>
        field(8, field(1, field(2, field(3, Buffer.concat([field(2, 'query'), field(4, name), field(6, 'string')]))))),
      ),
      field(9, field(1, Buffer.concat([field(1, '200'), field(2, field(2, field(1, 'OK')))]))),
      field(13, Buffer.concat([field(1, 'x-kubernetes-action'), field(2, field(2, 'patch\n'))])),
      field(
        13,
        Buffer.concat([
          field(1, 'x-kubernetes-group-version-kind'),
          field(2, field(2, `group: "${d.group}"\nkind: ${d.kind}\nversion: ${d.version}\n`)),
        ]),
      ),
    ]);
    pathItems.push(field(2, Buffer.concat([field(1, path), field(2, field(8, operation))])));
  }
  const v2Protobuf = Buffer.concat([
    field(1, '2.0'),
    field(2, Buffer.concat([field(1, 'Kubernetes'), field(2, gitVersion)])),
    field(8, Buffer.concat(pathItems)),
  ]);
  const v2Json = Buffer.from(
    JSON.stringify({
      swagger: '2.0',
      info: { title: 'Kubernetes', version: gitVersion },
      paths: json,
      definitions: {},
    }),
  );
  return { v2Json, v2Protobuf };
}
