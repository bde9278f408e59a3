// The HTTP face of the simulated API server: authenticate the bearer token, classify the request,
// authorize it with RBAC, then route it to the non-resource paths (discovery, version, OpenAPI) or
// the resource paths (handler/crud.ts and what it calls); every response shaped (Status, Table,
// gzip, watch framing) like kube-apiserver's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, forbiddenMessage, type Attributes } from './rbac.js';
import { parseRequestInfo } from './request-info.js';
import { forbidden, internalError, SimStatusError, unauthorized } from './status.js';
import type { Ctx, SimHandlerDeps, SimRequestRecord } from './handler/context.js';
import { serveResource } from './handler/crud.js';
import { serveNonResource } from './handler/non-resource.js';
import { sendStatus } from './handler/respond.js';

export type { SimHandlerDeps, SimRequestRecord, VersionInfo } from './handler/context.js';

export interface SimHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  openStreams(): number;
  closeStreams(): void;
}

const anonymousPaths = new Set(['/healthz', '/livez', '/readyz', '/version', '/version/']);

/** Authenticates the bearer token, authorizes with RBAC (admin skips it), then dispatches. */
async function route(ctx: Ctx): Promise<void> {
  const header = ctx.req.headers['authorization'];
  if (header !== undefined) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(header);
    ctx.record.token = m?.[1] ?? null;
    const who = m?.[1] ? ctx.deps.authn.authenticate(m[1]) : undefined;
    if (!who) throw unauthorized();
    ctx.auth = who;
    ctx.record.identity = who.identity;
  } else if (!anonymousPaths.has(ctx.info.path)) throw unauthorized();

  if (ctx.auth && ctx.record.identity !== 'admin') {
    const i = ctx.info;
    const attrs: Attributes = {
      user: ctx.auth.user,
      verb: i.verb,
      isResourceRequest: i.isResourceRequest,
      path: i.path,
      namespace: i.namespace,
      apiGroup: i.apiGroup,
      resource: i.resource,
      subresource: i.subresource,
      name: i.name,
    };
    const d = authorize(ctx.deps.rbac, attrs);
    if (!d.allowed) {
      const why = forbiddenMessage(attrs) + (d.reason ? `: ${d.reason}` : '');
      throw forbidden(i.apiGroup, i.isResourceRequest ? i.resource : '', i.name, why);
    }
  }
  if (!ctx.info.isResourceRequest) return serveNonResource(ctx);
  return serveResource(ctx);
}

export function createSimHandler(deps: SimHandlerDeps): SimHandler {
  const streams = new Set<() => void>();
  return {
    handle(req, res) {
      const rawPath = req.url ?? '/';
      const record: SimRequestRecord = {
        time: deps.now(),
        method: req.method ?? 'GET',
        rawPath,
        identity: null,
        token: null,
        headers: { ...req.headers },
        status: 0,
      };
      deps.requests.push(record);
      const q = rawPath.indexOf('?');
      const ctx: Ctx = {
        req,
        res,
        record,
        query: new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1)),
        info: parseRequestInfo(req.method ?? 'GET', rawPath),
        auth: undefined,
        deps,
        streams,
      };
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
