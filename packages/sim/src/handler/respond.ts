// Writing responses the way kube-apiserver does: its common headers, gzip above its threshold,
// Warning headers, Status bodies, and objects shaped for the negotiated target (object, Table,
// PartialObjectMetadata).
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import { contentTypeOf, type Negotiated } from '../negotiate.js';
import type { Obj, ResourceDef } from '../resources.js';
import type { SimStatus } from '../status.js';
import { buildTable, partialObjectMetadata, type IncludeObject } from '../table.js';
import type { Ctx } from './context.js';

// kube-apiserver gzips a response only above defaultGzipThresholdBytes (128 KiB), lists included
// (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/writers.go).
const gzipThresholdBytes = 128 * 1024;

function commonHeaders(): Record<string, string> {
  return {
    'Audit-Id': randomUUID(),
    'Cache-Control': 'no-cache, private',
    'X-Kubernetes-Pf-Flowschema-Uid': 'sim-flowschema',
    'X-Kubernetes-Pf-Prioritylevel-Uid': 'sim-prioritylevel',
  };
}

export function writeHead(ctx: Ctx, code: number, headers: Record<string, string | number>): void {
  ctx.record.status = code;
  ctx.res.writeHead(code, { ...commonHeaders(), ...headers });
}

export function sendRaw(
  ctx: Ctx,
  code: number,
  contentType: string,
  body: Buffer,
  options: { alwaysGzip?: boolean; warnings?: string[] } = {},
): void {
  const headers: Record<string, string | number> = { 'Content-Type': contentType };
  if (options.warnings?.length)
    headers['Warning'] = options.warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ');
  const acceptEncoding = String(ctx.req.headers['accept-encoding'] ?? '');
  let payload = body;
  if (/\bgzip\b/i.test(acceptEncoding) && (options.alwaysGzip || body.length > gzipThresholdBytes)) {
    payload = gzipSync(body);
    headers['Content-Encoding'] = 'gzip';
    headers['Vary'] = 'Accept-Encoding';
  }
  headers['Content-Length'] = payload.length;
  writeHead(ctx, code, headers);
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : payload);
}

export function sendStatus(ctx: Ctx, status: SimStatus): void {
  if (ctx.res.headersSent) {
    ctx.res.end();
    return;
  }
  sendRaw(ctx, status.code, 'application/json', Buffer.from(`${JSON.stringify(status)}\n`));
}

export function sendObject(
  ctx: Ctx,
  code: number,
  body: Obj,
  neg: Negotiated,
  options: { isList?: boolean; warnings?: string[] } = {},
): void {
  const text = neg.yaml ? toYaml(body) : `${JSON.stringify(body)}\n`;
  sendRaw(ctx, code, contentTypeOf(neg), Buffer.from(text), options.warnings ? { warnings: options.warnings } : {});
}

/** A JSON response that is never a Table (discovery, reviews, Status). */
export function sendPlain(ctx: Ctx, code: number, body: unknown, contentType = 'application/json'): void {
  sendRaw(ctx, code, contentType, Buffer.from(`${JSON.stringify(body)}\n`));
}

function includeObject(ctx: Ctx): IncludeObject {
  const v = ctx.query.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

/** Shapes an object or list for the negotiated target. */
export function present(
  ctx: Ctx,
  def: ResourceDef,
  neg: Negotiated,
  body: Obj,
  isList: boolean,
  noHeaders = false,
): Obj {
  const t = neg.target;
  if (t.as === 'object') return body;
  const items: Obj[] = isList
    ? (body['items'] as Obj[]).map((i) => ({ kind: def.kind, apiVersion: def.apiVersion, ...i }))
    : [body];
  const listMeta: Obj = isList ? body['metadata'] : { resourceVersion: body['metadata']?.['resourceVersion'] };
  if (t.as === 'Table')
    return buildTable(def.storeKey, items, {
      now: ctx.deps.now(),
      include: includeObject(ctx),
      noHeaders,
      tableVersion: t.version,
      listMeta,
    });
  if (isList)
    return {
      kind: 'PartialObjectMetadataList',
      apiVersion: `meta.k8s.io/${t.version}`,
      metadata: listMeta,
      items: items.map((i) => partialObjectMetadata(i, `meta.k8s.io/${t.version}`)),
    };
  return partialObjectMetadata(body, `meta.k8s.io/${t.version}`);
}
