// A call held for approval is answered outside Koa (issue #13: 10,000 held calls, memory per held
// call). The route sets `ctx.respond = false` and returns, so no middleware frame waits while the
// call is held; when the hold ends, the route's own steps run on the kept context under the same
// error answer as the top of the app (statusOnError), and the response goes out as Koa's would.
import { Readable, pipeline } from 'node:stream';
import type Koa from 'koa';

/** Bodiless statuses (Koa strips the body of these). */
const emptyStatuses = new Set([204, 205, 304]);

/**
 * Runs `steps` (which set ctx.status, headers and body as a Koa route does) on a context whose chain
 * has returned, under `onError` (the app's outermost middleware), then sends the response.
 */
export async function answerOutsideKoa(
  ctx: Koa.Context,
  onError: Koa.Middleware,
  steps: () => Promise<void>,
): Promise<void> {
  try {
    await onError(ctx, steps);
    respond(ctx);
  } catch {
    // onError answers every throw of the steps itself; only a failed write is left: cut the call.
    ctx.res.destroy();
  }
}

/** What Koa's `respond` does for the bodies the Kubernetes route sets (koa/lib/application.js). */
function respond(ctx: Koa.Context): void {
  const { res } = ctx;
  if (!ctx.writable) {
    res.end();
    return;
  }
  const code = ctx.status;
  if (emptyStatuses.has(code)) {
    ctx.body = null;
    res.end();
    return;
  }
  if (ctx.method === 'HEAD') {
    if (!res.headersSent && !res.hasHeader('content-length')) {
      const { length } = ctx.response;
      if (Number.isInteger(length)) ctx.length = length;
    }
    res.end();
    return;
  }
  const body: unknown = ctx.body;
  if (body === null || body === undefined) {
    const text = ctx.req.httpVersionMajor >= 2 ? String(code) : ctx.message || String(code);
    if (!res.headersSent) {
      ctx.type = 'text';
      ctx.length = Buffer.byteLength(text);
    }
    res.end(text);
    return;
  }
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    res.end(body);
    return;
  }
  if (body instanceof Readable) {
    pipeline(body, res, (error) => {
      if (error) ctx.onerror(error);
    });
    return;
  }
  const json = JSON.stringify(body);
  if (!res.headersSent) ctx.length = Buffer.byteLength(json);
  res.end(json);
}
