// The Kubernetes API route: every path outside /hoop/. Two named middleware: admitRequest runs the
// pipeline (pipeline/index.ts) and puts the admission on ctx.state; relayUpstream forwards it,
// masks the answer and streams it back through ctx.body. Refusals are Kubernetes Status objects.
// A watch's headers go out at once with ctx.flushHeaders(), and a stream that fails mid-way is cut
// by Koa's own pipeline. Only a call held for approval sets `ctx.respond = false`: Koa's chain
// returns while it waits, and it is answered outside Koa when the hold ends (http/parked.ts, #13).
// Upgrades (exec/attach/port-forward) never reach Koa: node hands them to http/upgrade.ts.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type Koa from 'koa';
import { ClientGone } from '../lib/client-gone.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { createCompletion, type RequestLine } from '../pipeline/completion.js';
import type { Admission, AdmitResult, Admitter } from '../pipeline/index.js';
import { createResponder } from '../pipeline/respond.js';
import type { MaskedWriteKeeper } from '../proxy/masked-writes.js';
import type { GatewayMasker } from '../proxy/masking.js';
import { answerOutsideKoa } from './parked.js';
import { sendStatus, statusOnError } from './status.js';

export { sendStatus } from './status.js';

export interface KubeRouteDeps {
  admitter: Admitter;
  masker: GatewayMasker;
  /** Keeps stored values where a write still carries the mask placeholder (issue #16). */
  writes: MaskedWriteKeeper;
  logger: Logger;
  metrics?: GatewayMetrics;
  maxBodyBytes: number;
  auditBodies: boolean;
  maxAuditBodyBytes: number;
  clock: () => number;
}

/** What the Kubernetes route keeps on ctx.state. */
export interface KubeState {
  admission?: Admission;
  /** The client going away: cancels a hold; its signal closes the upstream request. */
  gone: ClientGone;
}

export function createKubeRoute(deps: KubeRouteDeps): Koa.Middleware {
  const { admitter, clock } = deps;
  const completion = createCompletion(deps);
  const responder = createResponder({ ...deps, completion });
  const onError = statusOnError(deps.logger);

  /** Runs the pipeline; a refusal is answered here, an admission goes on ctx.state. */
  async function admitRequest(ctx: Koa.Context, next: Koa.Next): Promise<void> {
    const req = ctx.req;
    const receivedAt = clock();
    // A held call listens to `gone`; its AbortSignal is created only when asked for (lib/client-gone.ts:
    // ~1 KB less per held call).
    const gone = new ClientGone();
    ctx.res.on('close', () => {
      if (!ctx.res.writableFinished) gone.abort();
    });
    req.on('aborted', () => gone.abort());
    const state = ctx.state as KubeState;
    state.gone = gone;

    const method = req.method ?? 'GET';
    const result = await admitter.admitOrPark({
      method,
      rawUrl: req.url ?? '/',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      get signal() {
        return gone.signal;
      },
      leaving: gone,
      scope: req,
      // Read only after authentication (pipeline stage 6): an unknown caller's body is never buffered.
      ...(['GET', 'HEAD', 'OPTIONS'].includes(method)
        ? {}
        : { readBody: () => readBody(req, req.headers['content-length'], deps.maxBodyBytes) }),
    });
    if ('parked' in result) {
      // Held for approval: Koa's chain returns now, and the call is answered outside Koa when its
      // hold ends (http/parked.ts; issue #13, memory per held call).
      ctx.respond = false;
      // A hold that ends in a throw is answered as any throw of the route (a 500 Status), never left
      // as an unhandled rejection, which would end the process.
      void result.parked.then(
        (ended) => answerOutsideKoa(ctx, onError, () => settle(ctx, ended, receivedAt, next)),
        (error: unknown) => answerOutsideKoa(ctx, onError, () => Promise.reject(error)),
      );
      return;
    }
    await settle(ctx, result, receivedAt, next);
  }

  /** A refusal is answered here, an admission goes on ctx.state and on to the next step. */
  async function settle(ctx: Koa.Context, result: AdmitResult, receivedAt: number, next: Koa.Next): Promise<void> {
    const state = ctx.state as KubeState;
    if (!result.ok) {
      const { refusal } = result;
      completion.refused(refusal, line(ctx), receivedAt);
      if (!state.gone.aborted) sendStatus(ctx, refusal.error, refusal.recorded ? refusal.requestId : undefined);
      return;
    }
    state.admission = result.admission;
    await next();
  }

  /** Forwards the admitted request and relays the (masked) answer through ctx.body. */
  async function relayUpstream(ctx: Koa.Context): Promise<void> {
    const { admission, gone } = ctx.state as KubeState;
    if (admission === undefined) throw new HoopError('ERR_INTERNAL', 'relayUpstream ran without an admission');
    const answer = await responder.respond(admission, {
      ...line(ctx),
      rawHeaders: ctx.req.rawHeaders,
      headers: ctx.req.headers,
      signal: gone.signal,
    });
    if (answer.kind === 'refusal') {
      if (!gone.aborted) sendStatus(ctx, answer.error, admission.requestId);
      return;
    }
    ctx.status = answer.status;
    const { headers } = answer;
    for (const name of Object.keys(headers)) ctx.set(name, headers[name] as string | string[]);
    if (Buffer.isBuffer(answer.body) && !answer.flush && sendWholeOverHttp2(ctx, answer.status, answer.body)) return;
    if (answer.body !== undefined) {
      // Set after the headers: Koa types only an untyped body (as octet-stream), and that type is not
      // the upstream's. A buffer gets its Content-Length here.
      ctx.body = answer.body;
      if (headers['content-type'] === undefined) ctx.remove('Content-Type');
    }
    if (answer.flush) ctx.flushHeaders();
  }

  // The end of the chain: nothing runs after the Kubernetes API route.
  return async function kubeRoute(ctx) {
    await admitRequest(ctx, () => relayUpstream(ctx));
  };
}

/**
 * A whole answer to an HTTP/2 stream as one HEADERS and one DATA frame carrying END_STREAM: one TLS
 * write (#13). Node's compatibility response (what Koa writes to) asks for trailers on every stream, so
 * `res.end(body)` sends the end of the stream as a frame and a socket write of its own (two writes and
 * four epoll_ctl calls per answer instead of one and two). The response still emits 'finish' and
 * 'close' (the per-client limits and the abort watch listen for them). False (Koa answers) for
 * HTTP/1.1 or a stream already gone.
 */
function sendWholeOverHttp2(ctx: Koa.Context, status: number, body: Buffer): boolean {
  const stream = (ctx.res as unknown as Partial<Http2ServerResponse>).stream;
  if (ctx.req.httpVersionMajor !== 2 || stream === undefined || stream.destroyed || stream.headersSent) return false;
  const headers: OutgoingHttpHeaders = { ...ctx.res.getHeaders(), 'content-length': body.length, ':status': status };
  ctx.respond = false;
  stream.respond(headers);
  stream.end(body);
  return true;
}

function line(ctx: Koa.Context): RequestLine {
  return {
    transport: 'request',
    method: ctx.req.method ?? 'GET',
    rawUrl: ctx.req.url ?? '/',
    httpVersion: ctx.req.httpVersion,
  };
}

async function readBody(req: Readable, declared: string | undefined, limit: number): Promise<Buffer> {
  const contentLength = Number(declared ?? 0);
  if (contentLength > limit) {
    throw new HoopError(
      'ERR_BODY_TOO_LARGE',
      `request body of ${contentLength} bytes exceeds the gateway's limit of ${limit} bytes; send a smaller body (e.g. split the change)`,
      { operatorDetail: 'limited by gateway.maxBodyBytes' },
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) {
      throw new HoopError(
        'ERR_BODY_TOO_LARGE',
        `request body exceeds the gateway's limit of ${limit} bytes; the API server would refuse it too`,
        { operatorDetail: 'limited by gateway.maxBodyBytes' },
      );
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
