// Subresources other than the upgrade ones: status, deployments' scale, serviceaccounts' token
// (TokenRequest) and pods' log.
import { defaultAudience } from '../authn.js';
import type { Negotiated } from '../negotiate.js';
import { rfc3339, type WriteOptions } from '../objects.js';
import { jsonPatch, mergePatch } from '../patch.js';
import { queryBool } from '../query.js';
import type { Obj, ResourceDef } from '../resources.js';
import { badRequest, invalid, methodNotAllowed, notFound, pathNotFound } from '../status.js';
import type { Ctx } from './context.js';
import { serveLog } from './logs.js';
import { readBody, readObjectBody, writeOptions } from './request.js';
import { present, sendObject, sendPlain } from './respond.js';

async function serveTokenRequest(ctx: Ctx, def: ResourceDef): Promise<void> {
  if (ctx.info.verb !== 'create') throw methodNotAllowed(def.group, 'serviceaccounts/token');
  const { namespace, name } = ctx.info;
  const body = (await readObjectBody(ctx)) as Obj;
  const sa = ctx.deps.store.get('/serviceaccounts', namespace, name);
  if (!sa) throw notFound('', 'serviceaccounts', name);
  const spec: Obj = body?.['spec'] ?? {};
  const seconds = spec['expirationSeconds'] === undefined ? 3600 : Number(spec['expirationSeconds']);
  if (!Number.isInteger(seconds) || seconds < ctx.deps.minTokenExpirationSeconds) {
    throw invalid('authentication.k8s.io', 'TokenRequest', name, [
      {
        type: 'Invalid',
        field: 'spec.expirationSeconds',
        value: spec['expirationSeconds'],
        detail: 'may not specify a duration less than 10 minutes',
      },
    ]);
  }
  if (seconds > 2 ** 32)
    throw invalid('authentication.k8s.io', 'TokenRequest', name, [
      {
        type: 'Invalid',
        field: 'spec.expirationSeconds',
        value: seconds,
        detail: 'may not specify a duration larger than 2^32 seconds',
      },
    ]);
  const audiences: string[] =
    Array.isArray(spec['audiences']) && spec['audiences'].length ? spec['audiences'] : [defaultAudience];
  const minted = ctx.deps.authn.mint({ namespace, name, uid: sa['metadata']['uid'] }, seconds, audiences);
  sendPlain(ctx, 201, {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name, namespace, creationTimestamp: null },
    spec: { audiences, expirationSeconds: seconds, boundObjectRef: spec['boundObjectRef'] ?? null },
    status: { token: minted.token, expirationTimestamp: rfc3339(minted.expiresAt) },
  });
}

function scaleOf(d: Obj): Obj {
  const sel = Object.entries((d['spec']?.['selector']?.['matchLabels'] ?? {}) as Record<string, string>)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: d['metadata']['name'],
      namespace: d['metadata']['namespace'],
      uid: d['metadata']['uid'],
      resourceVersion: d['metadata']['resourceVersion'],
      creationTimestamp: d['metadata']['creationTimestamp'],
    },
    spec: { replicas: d['spec']?.['replicas'] ?? 1 },
    status: { replicas: d['status']?.['replicas'] ?? 0, selector: sel },
  };
}

export async function serveSubresource(ctx: Ctx, def: ResourceDef, neg: Negotiated): Promise<void> {
  const { subresource, verb, namespace, name } = ctx.info;
  const verbs = def.subresources.get(subresource);
  if (!verbs) throw pathNotFound();
  if (def.storeKey === '/pods' && subresource === 'log' && verb === 'get') return serveLog(ctx);
  if (def.storeKey === '/serviceaccounts' && subresource === 'token') return serveTokenRequest(ctx, def);
  if (['exec', 'attach', 'portforward'].includes(subresource)) throw badRequest('Upgrade request required');
  if (!verbs.includes(verb)) throw methodNotAllowed(def.group, `${def.resource}/${subresource}`);
  if (subresource === 'status') {
    if (verb === 'get') {
      const o = ctx.deps.store.get(def.storeKey, def.namespaced ? namespace : '', name);
      if (!o) throw notFound(def.group, def.resource, name);
      return sendObject(ctx, 200, present(ctx, def, neg, o, false), neg);
    }
    const opts: WriteOptions = { ...writeOptions(ctx), subresource: 'status' };
    const r =
      verb === 'update'
        ? ctx.deps.ops.update(def, namespace, name, await readObjectBody(ctx), opts)
        : ctx.deps.ops.patch(
            def,
            namespace,
            name,
            String(ctx.req.headers['content-type'] ?? ''),
            await readBody(ctx.req),
            { ...opts, force: queryBool(ctx.query, 'force') },
          );
    return sendObject(ctx, 200, present(ctx, def, neg, r.object, false), neg, { warnings: r.warnings });
  }
  if (subresource === 'scale' && def.storeKey === 'apps/deployments') {
    const d = ctx.deps.store.get(def.storeKey, namespace, name);
    if (!d) throw notFound(def.group, `${def.resource}`, name);
    if (verb === 'get') return sendPlain(ctx, 200, scaleOf(d));
    const current = scaleOf(d);
    let next: Obj;
    if (verb === 'update') next = (await readObjectBody(ctx)) as Obj;
    else {
      const type = String(ctx.req.headers['content-type'] ?? '').split(';')[0];
      const patchBody = JSON.parse(await readBody(ctx.req)) as unknown;
      next = (
        type === 'application/json-patch+json' ? jsonPatch(current, patchBody) : mergePatch(current, patchBody)
      ) as Obj;
    }
    const replicas = Number(next?.['spec']?.['replicas']);
    if (!Number.isInteger(replicas) || replicas < 0)
      throw invalid('autoscaling', 'Scale', name, [
        {
          type: 'Invalid',
          field: 'spec.replicas',
          value: next?.['spec']?.['replicas'],
          detail: 'must be greater than or equal to 0',
        },
      ]);
    const r = ctx.deps.ops.patch(
      def,
      namespace,
      name,
      'application/merge-patch+json',
      JSON.stringify({ spec: { replicas } }),
      { ...writeOptions(ctx), force: false },
    );
    return sendPlain(ctx, 200, scaleOf(r.object));
  }
  throw methodNotAllowed(def.group, `${def.resource}/${subresource}`);
}
