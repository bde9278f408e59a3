// The Kubernetes API route: every path outside /hoop/. Reads the (bounded) request body, runs the
// shared admission pipeline, forwards with the ServiceAccount token, and streams the masked
// response back. Refusals are Kubernetes Status objects; nothing unmasked ever leaves.
import { Transform, pipeline, type Readable } from 'node:stream';
import type Koa from 'koa';
import { statusFromError } from '../kube/status.js';
import { HoopError, toHoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { requestLabels, type GatewayMetrics } from '../lib/metrics.js';
import { RecordedRefusal, type Admission, type Admitter } from '../proxy/admit.js';
import { discardUpstreamBody, forwardToUpstream } from '../proxy/forward.js';
import { buildClientResponseHeaders, buildUpstreamHeaders } from '../proxy/headers.js';
import type { MaskedWriteKeeper, PreparedWrite } from '../proxy/masked-writes.js';
import { maskCredentialFields, withoutCredentialQuery } from '../proxy/mask/credentials.js';
import type { GatewayMasker } from '../proxy/masking.js';

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

export function sendStatus(ctx: Koa.Context, error: HoopError, requestId?: string): void {
  const status = statusFromError(error);
  ctx.status = status.code;
  ctx.set('Content-Type', 'application/json');
  ctx.set('Cache-Control', 'no-store');
  if (requestId !== undefined) ctx.set('Audit-Id', requestId);
  const retryAfter = error.details?.['retryAfterSeconds'];
  if (typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
  ctx.body = JSON.stringify(status);
}

async function readBody(req: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) {
      throw new HoopError('ERR_BODY_TOO_LARGE', `request body exceeds ${limit} bytes (gateway.maxBodyBytes); the API server would refuse it too`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Keeps the first `limit` bytes that pass through, for the audit record. */
function createTap(limit: number): { stream: Transform; captured: () => string; bytes: () => number } {
  const kept: Buffer[] = [];
  let keptSize = 0;
  let total = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (keptSize < limit) {
        const part = chunk.subarray(0, limit - keptSize);
        kept.push(part);
        keptSize += part.length;
      }
      callback(null, chunk);
    },
  });
  return { stream, captured: () => Buffer.concat(kept).toString('utf8'), bytes: () => total };
}

export function createKubeRoute(deps: KubeRouteDeps): Koa.Middleware {
  const { admitter, masker, logger, metrics, clock } = deps;

  return async (ctx) => {
    const req = ctx.req;
    const receivedAt = clock();
    const controller = new AbortController();
    ctx.res.on('close', () => {
      if (!ctx.res.writableFinished) controller.abort();
    });
    req.on('aborted', () => controller.abort());

    let body: Buffer | undefined;
    let admission: Admission;
    try {
      const contentLength = Number(req.headers['content-length'] ?? 0);
      if (contentLength > deps.maxBodyBytes) {
        throw new HoopError('ERR_BODY_TOO_LARGE', `request body of ${contentLength} bytes exceeds ${deps.maxBodyBytes} bytes (gateway.maxBodyBytes)`);
      }
      body = ['GET', 'HEAD', 'OPTIONS'].includes(req.method ?? 'GET') ? undefined : await readBody(req, deps.maxBodyBytes);
    } catch (error) {
      // Body problems are refused before authentication; the refusal is recorded all the same.
      const refusal = await admitter.reject(incoming(), toHoopError(error));
      answerRefusal(ctx, refusal, controller, receivedAt);
      return;
    }

    function incoming() {
      return { method: req.method ?? 'GET', rawUrl: req.url ?? '/', rawHeaders: req.rawHeaders, headers: req.headers, signal: controller.signal };
    }

    try {
      admission = await admitter.admit({ ...incoming(), ...(body === undefined ? {} : { body }) });
    } catch (error) {
      const refusal = error instanceof RecordedRefusal ? error : new RecordedRefusal(toHoopError(error), 'unrecorded');
      answerRefusal(ctx, refusal, controller, receivedAt);
      return;
    }

    await forwardAdmitted(ctx, admission, body, controller);
  };

  function answerRefusal(ctx: Koa.Context, refusal: RecordedRefusal, controller: AbortController, receivedAt: number): void {
    logRequest(ctx, refusal.error.status, receivedAt, {
      requestId: refusal.requestId,
      ...(refusal.cluster === undefined ? {} : { cluster: refusal.cluster }),
      ...(refusal.identity === undefined ? {} : { identity: refusal.identity }),
      ...(refusal.subject === undefined ? {} : { subject: refusal.subject }),
      effect: 'deny',
      reason: refusal.reason,
      code: refusal.error.code,
      message: refusal.error.message,
    });
    metrics?.requests.inc({ cluster: refusal.cluster ?? '', effect: 'deny', ...requestLabels(refusal.identity !== undefined, refusal.verb, refusal.resource), code: String(refusal.error.status) });
    if (!controller.signal.aborted) sendStatus(ctx, refusal.error, refusal.requestId);
  }

  async function forwardAdmitted(ctx: Koa.Context, admission: Admission, received: Buffer | undefined, controller: AbortController): Promise<void> {
    const { info, cluster } = admission;
    // A write carrying masked values gets the stored ones back (or is refused) after it is recorded.
    let body = received;
    let kept: { keptMaskedValues?: string[] } = {};
    if (received !== undefined && received.length > 0) {
      let prepared: PreparedWrite;
      try {
        prepared = await deps.writes.prepare(admission, { method: ctx.req.method ?? 'GET', contentType: first(ctx.req.headers['content-type']), body: received }, controller.signal);
      } catch (error) {
        prepared = { kind: 'refuse', error: toHoopError(error) };
      }
      if (prepared.kind === 'refuse') {
        admission.audit.complete(outcome(admission, prepared.error.status, 0, { error: prepared.error.message }));
        logRequest(ctx, prepared.error.status, admission.startedAt, { ...decided(admission), code: prepared.error.code, message: prepared.error.message });
        if (!controller.signal.aborted) sendStatus(ctx, prepared.error, admission.requestId);
        return;
      }
      body = prepared.body;
      if (prepared.kept.length > 0) kept = { keptMaskedValues: prepared.kept };
    }
    const upstreamStarted = clock();
    metrics?.overheadSeconds.observe({ cluster: cluster.config.name }, (upstreamStarted - admission.startedAt) / 1000);
    const headers = buildUpstreamHeaders({
      rawHeaders: ctx.req.rawHeaders,
      token: admission.token,
      accept: masker.upstreamAccept(ctx.req.headers['accept'], info),
      ...(body === undefined ? {} : { contentLength: body.length }),
    });
    let upstream;
    try {
      upstream = await forwardToUpstream(cluster.upstream, {
        method: ctx.req.method ?? 'GET',
        path: admission.path,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: controller.signal,
      });
    } catch (error) {
      const hoopError = toHoopError(error);
      admission.audit.complete(outcome(admission, hoopError.status, 0, { ...kept, error: hoopError.message }));
      logRequest(ctx, hoopError.status, admission.startedAt, { ...decided(admission), message: hoopError.message });
      if (!controller.signal.aborted) sendStatus(ctx, hoopError, admission.requestId);
      return;
    }
    metrics?.upstreamSeconds.observe({ cluster: cluster.config.name }, (clock() - upstreamStarted) / 1000);

    const plan = masker.plan(
      {
        contentType: first(upstream.headers['content-type']),
        contentEncoding: first(upstream.headers['content-encoding']),
        status: upstream.status,
        method: ctx.req.method ?? 'GET',
      },
      info,
    );
    if (plan.kind === 'refuse') {
      discardUpstreamBody(upstream.body);
      admission.audit.complete(outcome(admission, plan.error.status, 0, { ...kept, error: plan.error.message }));
      logRequest(ctx, plan.error.status, admission.startedAt, { ...decided(admission), message: plan.error.message });
      sendStatus(ctx, plan.error, admission.requestId);
      return;
    }

    const responseHeaders = buildClientResponseHeaders(upstream.headers);
    if (plan.kind === 'mask') responseHeaders['content-type'] = plan.contentType;
    else if (upstream.headers['content-encoding'] !== undefined) responseHeaders['content-encoding'] = first(upstream.headers['content-encoding']) ?? '';
    if (admission.warning !== undefined) {
      const existing = responseHeaders['warning'];
      responseHeaders['warning'] = existing === undefined ? admission.warning : [...[existing].flat(), admission.warning];
    }
    responseHeaders['audit-id'] = admission.requestId;

    const tap = createTap(deps.auditBodies ? deps.maxAuditBodyBytes : 0);
    ctx.respond = false;
    ctx.res.writeHead(upstream.status, responseHeaders);
    // A streamed answer (watch, `logs -f`, anything the API server sends without a length) may not
    // send a byte for minutes: the status line and headers go out now, not with the first event,
    // or clients such as `kubectl wait` sit until the next event or bookmark (issue #16).
    if (info.verb === 'watch' || upstream.headers['content-length'] === undefined) ctx.res.flushHeaders();
    if (ctx.req.method === 'HEAD') {
      discardUpstreamBody(upstream.body);
      ctx.res.end();
      admission.audit.complete(outcome(admission, upstream.status, 0, kept));
      logRequest(ctx, upstream.status, admission.startedAt, decided(admission));
      return;
    }
    const stages: NodeJS.ReadWriteStream[] = plan.kind === 'mask' ? [plan.stream, tap.stream] : [tap.stream];
    await new Promise<void>((resolve) => {
      // pipeline destroys every stage on error or client abort, which closes the upstream request.
      (pipeline as (...streams: unknown[]) => unknown)(upstream.body, ...stages, ctx.res, (error: Error | null | undefined) => {
        const failure = error ?? undefined;
        if (failure !== undefined && !ctx.res.destroyed) ctx.res.destroy();
        const responseBody = plan.kind === 'mask' ? maskCredentialFields(tap.captured()) : undefined;
        if (plan.kind === 'mask') metrics?.maskedObjects.inc(plan.maskedObjects());
        admission.audit.complete(
          outcome(admission, upstream.status, tap.bytes(), {
            ...kept,
            ...(responseBody === undefined || responseBody === '' ? {} : { responseBody }),
            ...(failure === undefined ? {} : { error: controller.signal.aborted ? 'client went away' : `stream failed: ${toHoopError(failure).message}` }),
          }),
        );
        logRequest(ctx, upstream.status, admission.startedAt, {
          ...decided(admission),
          ...(failure === undefined ? {} : { streamError: controller.signal.aborted ? 'client went away' : toHoopError(failure).message }),
        });
        resolve();
      });
    });
  }

  function outcome(admission: Admission, status: number, bytesOut: number, extra: { error?: string; responseBody?: string; keptMaskedValues?: string[] }) {
    countForwarded(admission, status);
    return {
      status,
      bytesOut,
      durationMs: clock() - admission.startedAt,
      ...(admission.approval === undefined ? {} : { approval: admission.approval }),
      ...extra,
    };
  }

  function countForwarded(admission: Admission, status: number): void {
    metrics?.requests.inc({
      cluster: admission.cluster.config.name,
      effect: admission.decision.effect,
      ...requestLabels(true, admission.info.verb, admission.info.resource),
      code: String(status),
    });
  }

  /** The log line's view of an admitted request: who, as which account, and why it was let through. */
  function decided(admission: Admission): Record<string, unknown> {
    const { decision } = admission;
    return {
      requestId: admission.requestId,
      cluster: admission.cluster.config.name,
      identity: admission.identity.name,
      subject: admission.principal.subject,
      serviceAccount: admission.serviceAccount,
      effect: decision.effect,
      reason: decision.reason,
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      ...(admission.approval === undefined ? {} : { approval: admission.approval.id }),
    };
  }

  /** One JSON line per request; never a token or a body (a refused `?access_token=` keeps no query). */
  function logRequest(ctx: Koa.Context, status: number, startedAt: number, fields: Record<string, unknown>): void {
    logger.info({ method: ctx.req.method, path: withoutCredentialQuery(ctx.req.url ?? '/'), status, durationMs: clock() - startedAt, ...fields }, 'request');
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
