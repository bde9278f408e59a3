// Resource requests: check the path's scope, then get / list / watch / create / update / patch /
// delete / deletecollection, or hand off to the review APIs and subresources.
import { negotiate } from '../negotiate.js';
import { canonical } from '../objects.js';
import { queryBool } from '../query.js';
import { virtualResources } from '../resources.js';
import { methodNotAllowed, notFound, pathNotFound } from '../status.js';
import type { Ctx } from './context.js';
import { serveList, serveWatch } from './list-watch.js';
import { deleteOptionsFrom, readBody, readObjectBody, selectors, writeOptions } from './request.js';
import { present, sendObject, sendPlain } from './respond.js';
import { serveReview } from './reviews.js';
import { serveSubresource } from './subresources.js';

export async function serveResource(ctx: Ctx): Promise<void> {
  const { apiGroup, apiVersion, resource, namespace, name, verb } = ctx.info;
  const def = ctx.deps.registry.lookup(apiGroup, apiVersion, resource);
  if (!def) throw pathNotFound();
  const namespacePath = namespace !== '' && resource !== 'namespaces';
  if (!def.namespaced && namespacePath) throw pathNotFound();
  if (
    def.namespaced &&
    !namespacePath &&
    ((name !== '' && verb !== 'list' && verb !== 'watch') || verb === 'create' || verb === 'deletecollection')
  )
    throw pathNotFound();
  if (virtualResources.has(def.storeKey)) return serveReview(ctx, def);
  const neg = negotiate(ctx.req.headers['accept']);
  if (ctx.info.subresource) return serveSubresource(ctx, def, neg);
  const allowed = verb === 'watch' ? def.verbs.includes('watch') : def.verbs.includes(verb);
  if (!allowed) throw methodNotAllowed(def.group, def.resource);
  const ns = def.namespaced ? namespace : '';
  switch (verb) {
    case 'get': {
      const o = ctx.deps.store.get(def.storeKey, ns, name);
      if (!o) throw notFound(def.group, def.resource, name);
      return sendObject(ctx, 200, present(ctx, def, neg, canonical(def, o), false), neg);
    }
    case 'list':
      return serveList(ctx, def, neg);
    case 'watch':
      return serveWatch(ctx, def, neg);
    case 'create': {
      const r = ctx.deps.ops.create(def, namespace, await readObjectBody(ctx), writeOptions(ctx));
      return sendObject(ctx, 201, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
    }
    case 'update': {
      const r = ctx.deps.ops.update(def, namespace, name, await readObjectBody(ctx), writeOptions(ctx));
      return sendObject(ctx, r.created ? 201 : 200, present(ctx, def, neg, r.object, false), neg, {
        warnings: r.warnings,
      });
    }
    case 'patch': {
      const contentType = String(ctx.req.headers['content-type'] ?? '');
      const body = await readBody(ctx.req);
      const opts = { ...writeOptions(ctx), force: queryBool(ctx.query, 'force') };
      // Apply needs an explicit manager; other writes default it from the User-Agent.
      if (contentType.startsWith('application/apply-patch') && !ctx.query.get('fieldManager')) opts.fieldManager = '';
      const r = ctx.deps.ops.patch(def, namespace, name, contentType, body, opts);
      return sendObject(ctx, r.created ? 201 : 200, present(ctx, def, neg, r.object, false), neg, {
        warnings: r.warnings,
      });
    }
    case 'delete': {
      const options = deleteOptionsFrom(ctx, await readBody(ctx.req));
      const out = ctx.deps.ops.remove(def, namespace, name, options, writeOptions(ctx).dryRun);
      if (out['kind'] === 'Status') return sendPlain(ctx, 200, out);
      return sendObject(ctx, 200, present(ctx, def, neg, out, false), neg);
    }
    case 'deletecollection': {
      deleteOptionsFrom(ctx, await readBody(ctx.req));
      const { labels, fields } = selectors(ctx, def);
      const list = ctx.deps.ops.removeCollection(
        def,
        def.namespaced ? namespace : undefined,
        labels,
        fields,
        writeOptions(ctx).dryRun,
      );
      return sendObject(ctx, 200, present(ctx, def, neg, list, true), neg, { isList: true });
    }
    default:
      throw methodNotAllowed(def.group, def.resource);
  }
}
