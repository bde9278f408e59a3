// The HTTP face of the simulated API server: authenticate the bearer token, classify the request,
// authorize it with RBAC, then route it to discovery, the object store, watch, logs or the review
// APIs; every response shaped (Status, Table, gzip, watch framing) like kube-apiserver's.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { defaultAudience, type Authenticated, type Authenticator } from './authn.js';
import { aggregatedDiscoveryMediaType, synthesizeResourceList, type DiscoveryDocuments } from './discovery.js';
import { contentTypeOf, negotiate, type Negotiated } from './negotiate.js';
import { canonical, rfc3339, type ObjectOps, type WriteOptions } from './objects.js';
import type { OpenApiDocs } from './openapi.js';
import { jsonPatch, mergePatch } from './patch.js';
import { decodeProtobufObject } from './protobuf.js';
import { authorize, forbiddenMessage, rulesFor, type Attributes, type RbacState, type UserInfo } from './rbac.js';
import { queryBool } from './query.js';
import { parseRequestInfo, type SimRequestInfo } from './request-info.js';
import { fieldLabelsOf, supportedFieldLabels, virtualResources, type Obj, type Registry, type ResourceDef } from './resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldRequirement, type LabelRequirement } from './selectors.js';
import {
  badRequest, expired, forbidden, internalError, invalid, methodNotAllowed, notFound, pathNotFound, SimStatusError, tooLarge, unauthorized,
  objectMediaTypes, unsupportedMediaType, type SimStatus,
} from './status.js';
import type { Store, StoreEvent } from './store.js';
import { buildTable, partialObjectMetadata, type IncludeObject } from './table.js';

export interface SimRequestRecord {
  time: number;
  method: string;
  /** Path and query exactly as received. */
  rawPath: string;
  /** 'admin' | 'system:serviceaccount:<ns>:<name>' | null for no or unknown token. */
  identity: string | null;
  token: string | null;
  headers: Record<string, string | string[] | undefined>;
  /** 0 until the response head is written. */
  status: number;
}

export interface VersionInfo { major: string; minor: string; gitVersion: string; gitCommit: string; gitTreeState: string; buildDate: string; goVersion: string; compiler: string; platform: string }

export interface SimHandlerDeps {
  registry: Registry;
  store: Store;
  ops: ObjectOps;
  authn: Authenticator;
  rbac: RbacState;
  discovery: DiscoveryDocuments;
  openapi: OpenApiDocs;
  version: VersionInfo;
  now: () => number;
  logLines: readonly string[];
  requests: SimRequestRecord[];
  /** TokenRequest's minimum spec.expirationSeconds (the real server's is 600). */
  minTokenExpirationSeconds: number;
  /** Interval of BOOKMARK events on watches that allow them. */
  bookmarkIntervalMs: number;
  /** Interval of new lines on a followed log. */
  logFollowIntervalMs: number;
}

export interface SimHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  openStreams(): number;
  closeStreams(): void;
}

const maxBodyBytes = 3 * 1024 * 1024;
// kube-apiserver gzips a response only above defaultGzipThresholdBytes (128 KiB), lists included
// (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/writers.go).
const gzipThresholdBytes = 128 * 1024;
const defaultWatchTimeoutMs = 30 * 60_000;
const anonymousPaths = new Set(['/healthz', '/livez', '/readyz', '/version', '/version/']);

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  record: SimRequestRecord;
  query: URLSearchParams;
  info: SimRequestInfo;
  auth: Authenticated | undefined;
}

export function createSimHandler(deps: SimHandlerDeps): SimHandler {
  const streams = new Set<() => void>();

  function commonHeaders(): Record<string, string> {
    return { 'Audit-Id': randomUUID(), 'Cache-Control': 'no-cache, private', 'X-Kubernetes-Pf-Flowschema-Uid': 'sim-flowschema', 'X-Kubernetes-Pf-Prioritylevel-Uid': 'sim-prioritylevel' };
  }

  function writeHead(ctx: Ctx, code: number, headers: Record<string, string | number>): void {
    ctx.record.status = code;
    ctx.res.writeHead(code, { ...commonHeaders(), ...headers });
  }

  function sendRaw(ctx: Ctx, code: number, contentType: string, body: Buffer, options: { alwaysGzip?: boolean; warnings?: string[] } = {}): void {
    const headers: Record<string, string | number> = { 'Content-Type': contentType };
    if (options.warnings?.length) headers['Warning'] = options.warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ');
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

  function sendStatus(ctx: Ctx, status: SimStatus): void {
    if (ctx.res.headersSent) {
      ctx.res.end();
      return;
    }
    sendRaw(ctx, status.code, 'application/json', Buffer.from(`${JSON.stringify(status)}\n`));
  }

  function sendObject(ctx: Ctx, code: number, body: Obj, neg: Negotiated, options: { isList?: boolean; warnings?: string[] } = {}): void {
    const text = neg.yaml ? toYaml(body) : `${JSON.stringify(body)}\n`;
    sendRaw(ctx, code, contentTypeOf(neg), Buffer.from(text), options.warnings ? { warnings: options.warnings } : {});
  }

  /** A JSON response that is never a Table (discovery, reviews, Status). */
  function sendPlain(ctx: Ctx, code: number, body: unknown, contentType = 'application/json'): void {
    sendRaw(ctx, code, contentType, Buffer.from(`${JSON.stringify(body)}\n`));
  }

  async function readBytes(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > maxBodyBytes) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    return (await readBytes(req)).toString('utf8');
  }

  async function readObjectBody(ctx: Ctx): Promise<unknown> {
    const bytes = await readBytes(ctx.req);
    const type = String(ctx.req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/vnd.kubernetes.protobuf') return decodeProtobufObject(bytes);
    const text = bytes.toString('utf8');
    if (text.trim() === '') throw badRequest('the body of the request was empty');
    try {
      if (type === 'application/json' || type === '') return JSON.parse(text);
      if (type === 'application/yaml') return parseYaml(text);
    } catch (e) {
      throw badRequest(`the object provided is unrecognized (${(e as Error).message})`);
    }
    throw unsupportedMediaType(objectMediaTypes);
  }

  function userOf(ctx: Ctx): UserInfo {
    return ctx.auth?.user ?? { name: 'system:anonymous', groups: ['system:unauthenticated'] };
  }

  function writeOptions(ctx: Ctx): WriteOptions {
    const dryRun = ctx.query.getAll('dryRun');
    if (dryRun.some((d) => d !== 'All')) throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(dryRun.find((d) => d !== 'All'))}: supported values: "All"`);
    const fv = ctx.query.get('fieldValidation') ?? 'Warn';
    const fieldValidation = fv === 'Strict' || fv === 'Ignore' ? fv : 'Warn';
    const manager = ctx.query.get('fieldManager') ?? String(ctx.req.headers['user-agent'] ?? 'unknown').split('/')[0]!;
    return { dryRun: dryRun.length > 0, fieldManager: manager, fieldValidation };
  }

  function selectors(ctx: Ctx, def: ResourceDef): { labels: LabelRequirement[]; fields: FieldRequirement[] } {
    const ls = ctx.query.get('labelSelector') ?? '';
    const fs = ctx.query.get('fieldSelector') ?? '';
    const labels = parseLabelSelector(ls);
    const fields = parseFieldSelector(fs);
    const supported = supportedFieldLabels(def.storeKey);
    const bad = fields.find((f) => !supported.includes(f.field));
    if (bad) {
      throw badRequest(`Unable to find "${def.group}/${def.version}, Resource=${def.resource}" that match label selector "${ls}", field selector "${fs}": field label not supported: ${bad.field}`);
    }
    return { labels, fields };
  }

  function includeObject(ctx: Ctx): IncludeObject {
    const v = ctx.query.get('includeObject');
    return v === 'None' || v === 'Object' ? v : 'Metadata';
  }

  /** Shapes an object or list for the negotiated target. */
  function present(ctx: Ctx, def: ResourceDef, neg: Negotiated, body: Obj, isList: boolean, noHeaders = false): Obj {
    const t = neg.target;
    if (t.as === 'object') return body;
    const items: Obj[] = isList ? (body['items'] as Obj[]).map((i) => ({ kind: def.kind, apiVersion: def.apiVersion, ...i })) : [body];
    const listMeta: Obj = isList ? body['metadata'] : { resourceVersion: body['metadata']?.['resourceVersion'] };
    if (t.as === 'Table') return buildTable(def.storeKey, items, { now: deps.now(), include: includeObject(ctx), noHeaders, tableVersion: t.version, listMeta });
    if (isList) return { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${t.version}`, metadata: listMeta, items: items.map((i) => partialObjectMetadata(i, `meta.k8s.io/${t.version}`)) };
    return partialObjectMetadata(body, `meta.k8s.io/${t.version}`);
  }

  // ---- non-resource paths ----

  function serveNonResource(ctx: Ctx): void {
    const method = ctx.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('', '');
    const path = ctx.info.path.length > 1 ? ctx.info.path.replace(/\/+$/, '') : ctx.info.path;
    const accept = String(ctx.req.headers['accept'] ?? '');
    const d = deps.discovery;
    if (path === '/apis' && accept.split(',').some((a) => a.replace(/\s/g, '').toLowerCase().startsWith('application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist'))) {
      return sendRaw(ctx, 200, aggregatedDiscoveryMediaType, d.aggregated);
    }
    const legacy = d.legacy.get(path);
    if (legacy) return sendRaw(ctx, 200, 'application/json', legacy);
    let m: RegExpExecArray | null;
    if ((m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path))) {
      const gv = `${m[1]}/${m[2]}`;
      if (d.listedGroupVersions.includes(gv) || deps.registry.all().some((r) => r.group === m![1] && r.version === m![2])) {
        return sendRaw(ctx, 200, 'application/json', synthesizeResourceList(gv, deps.registry.all()));
      }
      throw pathNotFound();
    }
    if ((m = /^\/apis\/([^/]+)$/.exec(path))) {
      const apis = JSON.parse(d.legacy.get('/apis')?.toString('utf8') ?? '{"groups":[]}') as { groups: Obj[] };
      const group = apis.groups.find((g) => g['name'] === m![1]);
      if (!group) throw pathNotFound();
      return sendPlain(ctx, 200, { kind: 'APIGroup', apiVersion: 'v1', ...group });
    }
    if (path === '/version') return sendPlain(ctx, 200, deps.version);
    if (path === '/healthz' || path === '/livez' || path === '/readyz') return sendRaw(ctx, 200, 'text/plain; charset=utf-8', Buffer.from('ok'));
    if (path === '/openapi/v2') {
      if (/application\/com\.github\.proto-openapi\.spec\.v2[^,]*\+protobuf/.test(accept)) return sendRaw(ctx, 200, 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', deps.openapi.v2Protobuf);
      return sendRaw(ctx, 200, 'application/json', deps.openapi.v2Json);
    }
    if (path === '/openapi/v3') return sendRaw(ctx, 200, 'application/json', deps.openapi.root);
    if (path.startsWith('/openapi/v3/')) {
      const doc = deps.openapi.byGroupVersion.get(path.slice('/openapi/v3/'.length));
      if (!doc) throw pathNotFound();
      return sendRaw(ctx, 200, 'application/json', doc);
    }
    throw pathNotFound();
  }

  // ---- review APIs ----

  function attributesFromSpec(spec: Obj, user: UserInfo): Attributes {
    const ra = spec['resourceAttributes'];
    if (ra) {
      return { user, verb: ra['verb'] ?? '', isResourceRequest: true, path: '', namespace: ra['namespace'] ?? '', apiGroup: ra['group'] ?? '', resource: ra['resource'] ?? '', subresource: ra['subresource'] ?? '', name: ra['name'] ?? '' };
    }
    const nra = spec['nonResourceAttributes'] ?? {};
    return { user, verb: nra['verb'] ?? '', isResourceRequest: false, path: nra['path'] ?? '', namespace: '', apiGroup: '', resource: '', subresource: '', name: '' };
  }

  function accessStatus(a: Attributes): Obj {
    const d = authorize(deps.rbac, a);
    const status: Obj = { allowed: d.allowed };
    if (d.reason) status['reason'] = d.reason;
    return status;
  }

  async function serveReview(ctx: Ctx, def: ResourceDef): Promise<void> {
    if (ctx.info.verb !== 'create') throw methodNotAllowed(def.group, def.resource);
    const body = await readObjectBody(ctx);
    if (typeof body !== 'object' || body === null) throw badRequest('the object provided is not a JSON object');
    const review = body as Obj;
    const spec: Obj = review['spec'] ?? {};
    const base = { kind: def.kind, apiVersion: def.apiVersion, metadata: { creationTimestamp: null } };
    const needsOneOf = () => {
      if (!spec['resourceAttributes'] === !spec['nonResourceAttributes']) {
        throw invalid(def.group, def.kind, '', [{ type: 'Invalid', field: 'spec.resourceAttributes', value: 'null', detail: 'exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
      }
    };
    switch (def.resource) {
      case 'subjectaccessreviews':
      case 'localsubjectaccessreviews': {
        needsOneOf();
        if (!spec['user'] && !(spec['groups'] ?? []).length) {
          throw invalid(def.group, def.kind, '', [{ type: 'Invalid', field: 'spec.user', value: '', detail: 'at least one of user or group must be specified' }]);
        }
        if (def.resource === 'localsubjectaccessreviews' && spec['resourceAttributes']?.['namespace'] !== ctx.info.namespace) {
          throw invalid(def.group, def.kind, '', [{ type: 'Invalid', field: 'spec.resourceAttributes.namespace', value: spec['resourceAttributes']?.['namespace'] ?? '', detail: 'must match metadata.namespace' }]);
        }
        const user: UserInfo = { name: spec['user'] ?? '', groups: spec['groups'] ?? [] };
        const meta = def.resource === 'localsubjectaccessreviews' ? { namespace: ctx.info.namespace, creationTimestamp: null } : base.metadata;
        return sendPlain(ctx, 201, { ...base, metadata: meta, spec, status: accessStatus(attributesFromSpec(spec, user)) });
      }
      case 'selfsubjectaccessreviews':
        needsOneOf();
        return sendPlain(ctx, 201, { ...base, spec, status: accessStatus(attributesFromSpec(spec, userOf(ctx))) });
      case 'selfsubjectrulesreviews': {
        const rules = rulesFor(deps.rbac, userOf(ctx), spec['namespace'] ?? '');
        const status: Obj = { resourceRules: rules.resourceRules, nonResourceRules: rules.nonResourceRules, incomplete: false };
        if (rules.errors.length) status['evaluationError'] = rules.errors.join(', ');
        return sendPlain(ctx, 201, { ...base, spec, status });
      }
      case 'tokenreviews': {
        const who = typeof spec['token'] === 'string' ? deps.authn.authenticate(spec['token']) : undefined;
        const status: Obj = who
          ? { authenticated: true, user: userInfoJson(who.user), audiences: spec['audiences']?.length ? spec['audiences'] : [defaultAudience] }
          : { user: {}, error: '[invalid bearer token, token lookup failed]' };
        return sendPlain(ctx, 201, { ...base, spec, status });
      }
      case 'selfsubjectreviews':
        return sendPlain(ctx, 201, { ...base, status: { userInfo: userInfoJson(userOf(ctx)) } });
      default:
        throw methodNotAllowed(def.group, def.resource);
    }
  }

  function userInfoJson(u: UserInfo): Obj {
    const out: Obj = { username: u.name };
    if (u.uid) out['uid'] = u.uid;
    out['groups'] = u.groups;
    return out;
  }

  // ---- subresources ----

  async function serveTokenRequest(ctx: Ctx, def: ResourceDef): Promise<void> {
    if (ctx.info.verb !== 'create') throw methodNotAllowed(def.group, 'serviceaccounts/token');
    const { namespace, name } = ctx.info;
    const body = (await readObjectBody(ctx)) as Obj;
    const sa = deps.store.get('/serviceaccounts', namespace, name);
    if (!sa) throw notFound('', 'serviceaccounts', name);
    const spec: Obj = body?.['spec'] ?? {};
    const seconds = spec['expirationSeconds'] === undefined ? 3600 : Number(spec['expirationSeconds']);
    if (!Number.isInteger(seconds) || seconds < deps.minTokenExpirationSeconds) {
      throw invalid('authentication.k8s.io', 'TokenRequest', name, [{ type: 'Invalid', field: 'spec.expirationSeconds', value: spec['expirationSeconds'], detail: 'may not specify a duration less than 10 minutes' }]);
    }
    if (seconds > 2 ** 32) throw invalid('authentication.k8s.io', 'TokenRequest', name, [{ type: 'Invalid', field: 'spec.expirationSeconds', value: seconds, detail: 'may not specify a duration larger than 2^32 seconds' }]);
    const audiences: string[] = Array.isArray(spec['audiences']) && spec['audiences'].length ? spec['audiences'] : [defaultAudience];
    const minted = deps.authn.mint({ namespace, name, uid: sa['metadata']['uid'] }, seconds, audiences);
    sendPlain(ctx, 201, {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { name, namespace, creationTimestamp: null },
      spec: { audiences, expirationSeconds: seconds, boundObjectRef: spec['boundObjectRef'] ?? null },
      status: { token: minted.token, expirationTimestamp: rfc3339(minted.expiresAt) },
    });
  }

  function serveLog(ctx: Ctx): void {
    const { namespace, name } = ctx.info;
    const pod = deps.store.get('/pods', namespace, name);
    if (!pod) throw notFound('', 'pods', name);
    const containers: string[] = [...(pod['spec']?.['initContainers'] ?? []), ...(pod['spec']?.['containers'] ?? [])].map((c: Obj) => c['name']);
    const main: string[] = (pod['spec']?.['containers'] ?? []).map((c: Obj) => c['name']);
    let container = ctx.query.get('container') ?? '';
    if (container === '') {
      const preferred = pod['metadata']?.['annotations']?.['kubectl.kubernetes.io/default-container'];
      if (main.length === 1) container = main[0]!;
      else if (preferred && main.includes(preferred)) container = preferred;
      else throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${main.join(' ')}]`);
    } else if (!containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    // The sim's containers never restart: there is no previous instance (the kubelet's message).
    if (queryBool(ctx.query, 'previous')) throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
    const timestamps = queryBool(ctx.query, 'timestamps');
    const stamp = (line: string) => (timestamps ? `${new Date(deps.now()).toISOString().replace('Z', '000000Z')} ${line}` : line);
    let lines = deps.logLines.map(stamp);
    const tail = ctx.query.get('tailLines');
    if (tail !== null && Number(tail) >= 0) lines = Number(tail) === 0 ? [] : lines.slice(-Number(tail));
    let text = lines.map((l) => `${l}\n`).join('');
    const limit = Number(ctx.query.get('limitBytes') ?? NaN);
    if (Number.isFinite(limit) && limit > 0) text = text.slice(0, limit);
    const follow = queryBool(ctx.query, 'follow');
    if (!follow) return sendRaw(ctx, 200, 'text/plain', Buffer.from(text));
    writeHead(ctx, 200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    ctx.res.write(text);
    let n = 0;
    const timer = setInterval(() => {
      n += 1;
      ctx.res.write(`${stamp(`heartbeat ${n} from ${name}/${container}`)}\n`);
    }, deps.logFollowIntervalMs);
    const close = () => {
      clearInterval(timer);
      if (streams.delete(close)) ctx.res.end();
    };
    streams.add(close);
    ctx.req.on('close', close);
    ctx.res.on('close', close);
  }

  function scaleOf(d: Obj): Obj {
    const sel = Object.entries((d['spec']?.['selector']?.['matchLabels'] ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
    return {
      kind: 'Scale', apiVersion: 'autoscaling/v1',
      metadata: { name: d['metadata']['name'], namespace: d['metadata']['namespace'], uid: d['metadata']['uid'], resourceVersion: d['metadata']['resourceVersion'], creationTimestamp: d['metadata']['creationTimestamp'] },
      spec: { replicas: d['spec']?.['replicas'] ?? 1 }, status: { replicas: d['status']?.['replicas'] ?? 0, selector: sel },
    };
  }

  async function serveSubresource(ctx: Ctx, def: ResourceDef, neg: Negotiated): Promise<void> {
    const { subresource, verb, namespace, name } = ctx.info;
    const verbs = def.subresources.get(subresource);
    if (!verbs) throw pathNotFound();
    if (def.storeKey === '/pods' && subresource === 'log' && verb === 'get') return serveLog(ctx);
    if (def.storeKey === '/serviceaccounts' && subresource === 'token') return serveTokenRequest(ctx, def);
    if (['exec', 'attach', 'portforward'].includes(subresource)) throw badRequest('Upgrade request required');
    if (!verbs.includes(verb)) throw methodNotAllowed(def.group, `${def.resource}/${subresource}`);
    if (subresource === 'status') {
      if (verb === 'get') {
        const o = deps.store.get(def.storeKey, def.namespaced ? namespace : '', name);
        if (!o) throw notFound(def.group, def.resource, name);
        return sendObject(ctx, 200, present(ctx, def, neg, o, false), neg);
      }
      const opts: WriteOptions = { ...writeOptions(ctx), subresource: 'status' };
      const r = verb === 'update'
        ? deps.ops.update(def, namespace, name, await readObjectBody(ctx), opts)
        : deps.ops.patch(def, namespace, name, String(ctx.req.headers['content-type'] ?? ''), await readBody(ctx.req), { ...opts, force: queryBool(ctx.query, 'force') });
      return sendObject(ctx, 200, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
    }
    if (subresource === 'scale' && def.storeKey === 'apps/deployments') {
      const d = deps.store.get(def.storeKey, namespace, name);
      if (!d) throw notFound(def.group, `${def.resource}`, name);
      if (verb === 'get') return sendPlain(ctx, 200, scaleOf(d));
      const current = scaleOf(d);
      let next: Obj;
      if (verb === 'update') next = (await readObjectBody(ctx)) as Obj;
      else {
        const type = String(ctx.req.headers['content-type'] ?? '').split(';')[0];
        const patchBody = JSON.parse(await readBody(ctx.req)) as unknown;
        next = (type === 'application/json-patch+json' ? jsonPatch(current, patchBody) : mergePatch(current, patchBody)) as Obj;
      }
      const replicas = Number(next?.['spec']?.['replicas']);
      if (!Number.isInteger(replicas) || replicas < 0) throw invalid('autoscaling', 'Scale', name, [{ type: 'Invalid', field: 'spec.replicas', value: next?.['spec']?.['replicas'], detail: 'must be greater than or equal to 0' }]);
      const r = deps.ops.patch(def, namespace, name, 'application/merge-patch+json', JSON.stringify({ spec: { replicas } }), { ...writeOptions(ctx), force: false });
      return sendPlain(ctx, 200, scaleOf(r.object));
    }
    throw methodNotAllowed(def.group, `${def.resource}/${subresource}`);
  }

  // ---- list & watch ----

  function serveList(ctx: Ctx, def: ResourceDef, neg: Negotiated): void {
    const { labels, fields } = selectors(ctx, def);
    const namespace = def.namespaced && ctx.info.namespace ? ctx.info.namespace : undefined;
    let items = deps.store.list(def.storeKey, namespace).filter((o) => matchesLabels(labels, o['metadata']['labels']) && matchesFields(fields, fieldLabelsOf(def.storeKey, o)));
    const rv = deps.store.currentRv();
    const meta: Obj = { resourceVersion: String(rv) };
    const token = ctx.query.get('continue');
    if (token) {
      let start: string;
      try {
        const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { v?: string; start?: string };
        if (parsed.v !== 'meta.k8s.io/v1' || typeof parsed.start !== 'string') throw new Error('bad token');
        start = parsed.start;
      } catch {
        throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      }
      items = items.filter((o) => `${o['metadata']['namespace'] ?? ''}/${o['metadata']['name']}` >= start);
    }
    const limit = Number(ctx.query.get('limit') ?? '0');
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const next = items[limit]!;
      meta['continue'] = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: `${next['metadata']['namespace'] ?? ''}/${next['metadata']['name']}` })).toString('base64');
      if (labels.length === 0 && fields.length === 0) meta['remainingItemCount'] = items.length - limit;
      items = items.slice(0, limit);
    }
    // Typed lists carry no kind/apiVersion on their items.
    const list = { kind: def.listKind, apiVersion: def.apiVersion, metadata: meta, items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest) };
    sendObject(ctx, 200, present(ctx, def, neg, list, true), neg, { isList: true });
  }

  function serveWatch(ctx: Ctx, def: ResourceDef, neg: Negotiated): void {
    const { labels, fields } = selectors(ctx, def);
    const namespace = def.namespaced && ctx.info.namespace ? ctx.info.namespace : undefined;
    const name = ctx.info.name;
    const matches = (o: Obj | undefined) => o !== undefined
      && (namespace === undefined || (o['metadata']['namespace'] ?? '') === namespace)
      && (name === '' || o['metadata']['name'] === name)
      && matchesLabels(labels, o['metadata']['labels']) && matchesFields(fields, fieldLabelsOf(def.storeKey, o));
    const rvParam = ctx.query.get('resourceVersion') ?? '';
    const sendInitial = queryBool(ctx.query, 'sendInitialEvents');
    const bookmarks = queryBool(ctx.query, 'allowWatchBookmarks');
    if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`resourceVersion: Invalid value: ${JSON.stringify(rvParam)}: must be a non-negative integer`);
    const timeoutSeconds = Number(ctx.query.get('timeoutSeconds') ?? NaN);
    const timeoutMs = Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : defaultWatchTimeoutMs;

    writeHead(ctx, 200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    ctx.res.flushHeaders();
    let headersSent = false;
    const write = (type: string, object: Obj) => {
      let out = object;
      if (type !== 'ERROR' && type !== 'BOOKMARK' && neg.target.as !== 'object') {
        // Only the first Table event carries column definitions (watchEmbeddedEncoder's NoHeaders).
        out = present(ctx, def, neg, object, false, headersSent);
        headersSent = true;
      }
      ctx.res.write(`${JSON.stringify({ type, object: out })}\n`);
    };
    const bookmark = (annotations?: Record<string, string>) => {
      const metadata: Obj = { resourceVersion: String(deps.store.currentRv()), creationTimestamp: null };
      if (annotations) metadata['annotations'] = annotations;
      write('BOOKMARK', { kind: def.kind, apiVersion: def.apiVersion, metadata });
    };
    const deliver = (e: StoreEvent) => {
      if (e.storeKey !== def.storeKey) return;
      const was = matches(e.previous);
      const is = matches(e.object);
      const object = canonical(def, e.object);
      if (e.type === 'ADDED' && is) write('ADDED', object);
      else if (e.type === 'MODIFIED') {
        if (was && is) write('MODIFIED', object);
        else if (!was && is) write('ADDED', object);
        else if (was && !is) write('DELETED', object);
      } else if (e.type === 'DELETED' && (was || is)) write('DELETED', object);
    };

    if (rvParam === '' || rvParam === '0' || sendInitial) {
      for (const o of deps.store.list(def.storeKey, namespace)) if (matches(o)) write('ADDED', canonical(def, o));
      if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
    } else {
      const since = Number(rvParam);
      if (since < deps.store.oldestRv() - 1) {
        write('ERROR', expired(`too old resource version: ${since} (${deps.store.oldestRv()})`).status as unknown as Obj);
        ctx.res.end();
        return;
      }
      for (const e of deps.store.eventsSince(since)) deliver(e);
    }
    const unsubscribe = deps.store.subscribe(deliver);
    const bookmarkTimer = bookmarks ? setInterval(() => bookmark(), deps.bookmarkIntervalMs) : undefined;
    const close = () => {
      if (!streams.delete(close)) return;
      unsubscribe();
      clearTimeout(timeout);
      if (bookmarkTimer) clearInterval(bookmarkTimer);
      ctx.res.end();
    };
    const timeout = setTimeout(close, timeoutMs);
    streams.add(close);
    ctx.req.on('close', close);
    ctx.res.on('close', close);
  }

  // ---- resources ----

  function deleteOptionsFrom(ctx: Ctx, body: string): { preconditions?: { uid?: string; resourceVersion?: string }; gracePeriodSeconds?: number; propagationPolicy?: string } {
    let opts: Obj = {};
    if (body.trim() !== '') {
      try {
        opts = JSON.parse(body) as Obj;
      } catch {
        throw badRequest('the body of the request was in an unknown format - accepted media types include: application/json, application/yaml');
      }
    }
    const grace = ctx.query.get('gracePeriodSeconds') ?? opts['gracePeriodSeconds'];
    const out: { preconditions?: { uid?: string; resourceVersion?: string }; gracePeriodSeconds?: number; propagationPolicy?: string } = {};
    if (opts['preconditions']) out.preconditions = opts['preconditions'];
    if (grace !== undefined && grace !== null) out.gracePeriodSeconds = Number(grace);
    const policy = ctx.query.get('propagationPolicy') ?? opts['propagationPolicy'];
    if (policy) out.propagationPolicy = String(policy);
    if (Array.isArray(opts['dryRun']) && opts['dryRun'].includes('All') && !ctx.query.has('dryRun')) ctx.query.append('dryRun', 'All');
    return out;
  }

  async function serveResource(ctx: Ctx): Promise<void> {
    const { apiGroup, apiVersion, resource, namespace, name, verb } = ctx.info;
    const def = deps.registry.lookup(apiGroup, apiVersion, resource);
    if (!def) throw pathNotFound();
    const namespacePath = namespace !== '' && resource !== 'namespaces';
    if (!def.namespaced && namespacePath) throw pathNotFound();
    if (def.namespaced && !namespacePath && (name !== '' && verb !== 'list' && verb !== 'watch' || verb === 'create' || verb === 'deletecollection')) throw pathNotFound();
    if (virtualResources.has(def.storeKey)) return serveReview(ctx, def);
    const neg = negotiate(ctx.req.headers['accept']);
    if (ctx.info.subresource) return serveSubresource(ctx, def, neg);
    const allowed = verb === 'watch' ? def.verbs.includes('watch') : def.verbs.includes(verb);
    if (!allowed) throw methodNotAllowed(def.group, def.resource);
    const ns = def.namespaced ? namespace : '';
    switch (verb) {
      case 'get': {
        const o = deps.store.get(def.storeKey, ns, name);
        if (!o) throw notFound(def.group, def.resource, name);
        return sendObject(ctx, 200, present(ctx, def, neg, canonical(def, o), false), neg);
      }
      case 'list': return serveList(ctx, def, neg);
      case 'watch': return serveWatch(ctx, def, neg);
      case 'create': {
        const r = deps.ops.create(def, namespace, await readObjectBody(ctx), writeOptions(ctx));
        return sendObject(ctx, 201, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
      }
      case 'update': {
        const r = deps.ops.update(def, namespace, name, await readObjectBody(ctx), writeOptions(ctx));
        return sendObject(ctx, r.created ? 201 : 200, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
      }
      case 'patch': {
        const contentType = String(ctx.req.headers['content-type'] ?? '');
        const body = await readBody(ctx.req);
        const opts = { ...writeOptions(ctx), force: queryBool(ctx.query, 'force') };
        // Apply needs an explicit manager; other writes default it from the User-Agent.
        if (contentType.startsWith('application/apply-patch') && !ctx.query.get('fieldManager')) opts.fieldManager = '';
        const r = deps.ops.patch(def, namespace, name, contentType, body, opts);
        return sendObject(ctx, r.created ? 201 : 200, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
      }
      case 'delete': {
        const options = deleteOptionsFrom(ctx, await readBody(ctx.req));
        const out = deps.ops.remove(def, namespace, name, options, writeOptions(ctx).dryRun);
        if (out['kind'] === 'Status') return sendPlain(ctx, 200, out);
        return sendObject(ctx, 200, present(ctx, def, neg, out, false), neg);
      }
      case 'deletecollection': {
        deleteOptionsFrom(ctx, await readBody(ctx.req));
        const { labels, fields } = selectors(ctx, def);
        const list = deps.ops.removeCollection(def, def.namespaced ? namespace : undefined, labels, fields, writeOptions(ctx).dryRun);
        return sendObject(ctx, 200, present(ctx, def, neg, list, true), neg, { isList: true });
      }
      default:
        throw methodNotAllowed(def.group, def.resource);
    }
  }

  async function route(ctx: Ctx): Promise<void> {
    const header = ctx.req.headers['authorization'];
    if (header !== undefined) {
      const m = /^bearer\s+(\S+)\s*$/i.exec(header);
      ctx.record.token = m?.[1] ?? null;
      const who = m?.[1] ? deps.authn.authenticate(m[1]) : undefined;
      if (!who) throw unauthorized();
      ctx.auth = who;
      ctx.record.identity = who.identity;
    } else if (!anonymousPaths.has(ctx.info.path)) throw unauthorized();

    if (ctx.auth && ctx.record.identity !== 'admin') {
      const i = ctx.info;
      const attrs: Attributes = {
        user: ctx.auth.user, verb: i.verb, isResourceRequest: i.isResourceRequest, path: i.path, namespace: i.namespace,
        apiGroup: i.apiGroup, resource: i.resource, subresource: i.subresource, name: i.name,
      };
      const d = authorize(deps.rbac, attrs);
      if (!d.allowed) {
        const why = forbiddenMessage(attrs) + (d.reason ? `: ${d.reason}` : '');
        throw forbidden(i.apiGroup, i.isResourceRequest ? i.resource : '', i.name, why);
      }
    }
    if (!ctx.info.isResourceRequest) return serveNonResource(ctx);
    return serveResource(ctx);
  }

  return {
    handle(req, res) {
      const rawPath = req.url ?? '/';
      const record: SimRequestRecord = { time: deps.now(), method: req.method ?? 'GET', rawPath, identity: null, token: null, headers: { ...req.headers }, status: 0 };
      deps.requests.push(record);
      const q = rawPath.indexOf('?');
      const ctx: Ctx = { req, res, record, query: new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1)), info: parseRequestInfo(req.method ?? 'GET', rawPath), auth: undefined };
      route(ctx).catch((e: unknown) => {
        if (e instanceof SimStatusError) sendStatus(ctx, e.status);
        else sendStatus(ctx, internalError(e instanceof Error ? e.message : String(e)).status);
      });
    },
    openStreams: () => streams.size,
    closeStreams: () => {
      for (const close of [...streams]) close();
    },
  };
}
