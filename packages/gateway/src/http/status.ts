// Kubernetes Status answers from Koa, and the one error middleware at the top of the app.
import type Koa from 'koa';
import { statusFromError } from '../kube/status.js';
import type { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { boundPath, publicError } from '../pipeline/errors.js';
import { withoutCredentialQuery } from '../proxy/mask/credentials.js';
import { closeIfBodyUnread } from './unread-body.js';

/** Answers with the error's Status; `Audit-Id` only when it names a record that exists. */
export function sendStatus(ctx: Koa.Context, error: HoopError, requestId?: string): void {
  const status = statusFromError(error);
  ctx.status = status.code;
  ctx.set('Content-Type', 'application/json');
  ctx.set('Cache-Control', 'no-store');
  if (requestId !== undefined) ctx.set('Audit-Id', requestId);
  const retryAfter = error.details?.['retryAfterSeconds'];
  if (typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
  closeIfBodyUnread(ctx);
  ctx.body = JSON.stringify(status);
}

/**
 * The outermost middleware: a HoopError thrown below becomes its Status; anything else a generic
 * 500 Status, its detail only in the log. Once the status line is out, the connection is cut.
 */
export function statusOnError(logger: Logger): Koa.Middleware {
  return async function statusOnError(ctx, next) {
    try {
      await next();
    } catch (error) {
      const answer = publicError(error, logger, {
        method: ctx.method,
        path: boundPath(withoutCredentialQuery(ctx.url)),
      });
      if (ctx.headerSent || !ctx.writable) {
        ctx.res.destroy();
        return;
      }
      for (const name of ctx.response.headers === undefined ? [] : Object.keys(ctx.response.headers)) ctx.remove(name);
      sendStatus(ctx, answer);
    }
  };
}
