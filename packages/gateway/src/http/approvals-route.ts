// The Koa binding of the approvals and grants API (approvals/http-api.ts): a Koa request in, the
// handler's answer out as JSON; paths it does not serve go on to the next middleware.
import type Koa from 'koa';
import { createApprovalsApi, type ApprovalsApiDeps } from '../approvals/http-api.js';

export function createApprovalsRoute(deps: ApprovalsApiDeps): Koa.Middleware {
  const handle = createApprovalsApi(deps);
  return async function approvalsRoute(ctx, next) {
    const answer = await handle({
      method: ctx.method,
      path: ctx.path,
      query: ctx.query,
      get: (name) => ctx.get(name),
      body: ctx.req,
      raw: { headers: ctx.req.headers, rawHeaders: ctx.req.rawHeaders, url: ctx.req.url ?? '' },
      scope: ctx.req,
    });
    if (answer === undefined) return next();
    for (const [name, value] of Object.entries(answer.headers ?? {})) ctx.set(name, value);
    ctx.status = answer.status;
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(answer.body);
  };
}
