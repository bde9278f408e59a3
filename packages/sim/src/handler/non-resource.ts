// Non-resource paths: discovery (aggregated and legacy), /version, health checks and OpenAPI.
import { aggregatedDiscoveryMediaType, synthesizeResourceList } from '../discovery.js';
import type { Obj } from '../resources.js';
import { methodNotAllowed, pathNotFound } from '../status.js';
import type { Ctx } from './context.js';
import { sendPlain, sendRaw } from './respond.js';

export function serveNonResource(ctx: Ctx): void {
  const method = ctx.req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('', '');
  const path = ctx.info.path.length > 1 ? ctx.info.path.replace(/\/+$/, '') : ctx.info.path;
  const accept = String(ctx.req.headers['accept'] ?? '');
  const d = ctx.deps.discovery;
  if (
    path === '/apis' &&
    accept
      .split(',')
      .some((a) =>
        a
          .replace(/\s/g, '')
          .toLowerCase()
          .startsWith('application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist'),
      )
  ) {
    return sendRaw(ctx, 200, aggregatedDiscoveryMediaType, d.aggregated);
  }
  const legacy = d.legacy.get(path);
  if (legacy) return sendRaw(ctx, 200, 'application/json', legacy);
  let m: RegExpExecArray | null;
  if ((m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path))) {
    const gv = `${m[1]}/${m[2]}`;
    if (
      d.listedGroupVersions.includes(gv) ||
      ctx.deps.registry.all().some((r) => r.group === m![1] && r.version === m![2])
    ) {
      return sendRaw(ctx, 200, 'application/json', synthesizeResourceList(gv, ctx.deps.registry.all()));
    }
    throw pathNotFound();
  }
  if ((m = /^\/apis\/([^/]+)$/.exec(path))) {
    const apis = JSON.parse(d.legacy.get('/apis')?.toString('utf8') ?? '{"groups":[]}') as { groups: Obj[] };
    const group = apis.groups.find((g) => g['name'] === m![1]);
    if (!group) throw pathNotFound();
    return sendPlain(ctx, 200, { kind: 'APIGroup', apiVersion: 'v1', ...group });
  }
  if (path === '/version') return sendPlain(ctx, 200, ctx.deps.version);
  if (path === '/healthz' || path === '/livez' || path === '/readyz')
    return sendRaw(ctx, 200, 'text/plain; charset=utf-8', Buffer.from('ok'));
  if (path === '/openapi/v2') {
    if (/application\/com\.github\.proto-openapi\.spec\.v2[^,]*\+protobuf/.test(accept))
      return sendRaw(
        ctx,
        200,
        'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
        ctx.deps.openapi.v2Protobuf,
      );
    return sendRaw(ctx, 200, 'application/json', ctx.deps.openapi.v2Json);
  }
  if (path === '/openapi/v3') return sendRaw(ctx, 200, 'application/json', ctx.deps.openapi.root);
  if (path.startsWith('/openapi/v3/')) {
    const doc = ctx.deps.openapi.byGroupVersion.get(path.slice('/openapi/v3/'.length));
    if (!doc) throw pathNotFound();
    return sendRaw(ctx, 200, 'application/json', doc);
  }
  throw pathNotFound();
}
