// Forward and mask, for a request admitted by the pipeline: a write still carrying masked values
// gets the stored ones back (or is refused), the request goes upstream with the ServiceAccount
// token, and the answer is planned: a refusal, or a status, headers and a (masked) body — a stream,
// or one buffer for a small answer (relayWhole). Transport-neutral: http/kube-route.ts hands the body
// to Koa; completion.ts ends the record.
import { Readable, Transform, pipeline } from 'node:stream';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { discardUpstreamBody, forwardToUpstream, type UpstreamResponse } from '../proxy/forward.js';
import { buildClientResponseHeaders, buildUpstreamHeaders } from '../proxy/headers.js';
import type { MaskedWriteKeeper, PreparedWrite } from '../proxy/masked-writes.js';
import { maskCredentialFields } from '../proxy/mask/credentials.js';
import type { GatewayMasker } from '../proxy/masking.js';
import type { Completion, RequestLine } from './completion.js';
import { detailOf, publicError } from './errors.js';
import type { Admission } from './types.js';

export interface RespondDeps {
  masker: GatewayMasker;
  /** Keeps stored values where a write still carries the mask placeholder (issue #16). */
  writes: MaskedWriteKeeper;
  completion: Completion;
  logger: Logger;
  metrics?: GatewayMetrics;
  auditBodies: boolean;
  maxAuditBodyBytes: number;
  clock: () => number;
}

export interface ForwardRequest extends RequestLine {
  rawHeaders: readonly string[];
  headers: Readonly<Record<string, string | string[] | undefined>>;
  signal: AbortSignal;
}

/** What to answer: a refusal (already recorded and logged), or the upstream's answer to relay. */
export type Answer =
  | { kind: 'refusal'; error: HoopError }
  | {
      kind: 'relay';
      status: number;
      headers: Record<string, string | string[]>;
      /** Send the status and headers now: a watch may not send a byte for minutes (issue #16). */
      flush: boolean;
      /** The (masked) body: whole when small, else a stream; undefined when there is none (HEAD, 204, 304). */
      body?: Readable | Buffer;
    };

/** HTTP statuses that carry no body. */
const emptyStatuses = new Set([204, 205, 304]);

/**
 * An answer with a declared length up to this size (a single object, a short list) is read whole,
 * masked in one call and sent as one buffer with its length: no stream pipeline, Transform or
 * chunked encoding per request (#13). Bigger or unbounded answers (lists, watches, logs) stream.
 */
export const WHOLE_BODY_BYTES = 64 * 1024;

export function createResponder(deps: RespondDeps) {
  const { masker, completion, metrics, clock } = deps;

  async function respond(admission: Admission, request: ForwardRequest): Promise<Answer> {
    const { info, cluster } = admission;
    if (admission.answer !== undefined) return answerLocally(deps, admission, request, admission.answer);
    const refuse = (
      error: HoopError,
      extra: { keptMaskedValues?: string[] } = {},
      logFields: Record<string, unknown> = {},
    ): Answer => {
      completion.finished(
        admission,
        request,
        { status: error.status, bytesOut: 0, ...extra, error: error.message },
        { ...(error.operatorDetail === undefined ? {} : { detail: error.operatorDetail }), ...logFields },
      );
      return { kind: 'refusal', error };
    };

    // A write carrying masked values gets the stored ones back (or is refused) after it is recorded.
    let body = admission.body;
    let kept: { keptMaskedValues?: string[] } = {};
    if (body !== undefined && body.length > 0) {
      let prepared: PreparedWrite;
      try {
        prepared = await deps.writes.prepare(
          admission,
          { method: request.method, contentType: first(request.headers['content-type']), body },
          request.signal,
        );
      } catch (error) {
        prepared = { kind: 'refuse', error: publicError(error, deps.logger, { requestId: admission.requestId }) };
      }
      if (prepared.kind === 'refuse') return refuse(prepared.error, {}, { code: prepared.error.code });
      body = prepared.body;
      if (prepared.kept.length > 0) kept = { keptMaskedValues: prepared.kept };
    }

    const upstreamStarted = clock();
    metrics?.overheadSeconds.observe({ cluster: cluster.config.name }, (upstreamStarted - admission.startedAt) / 1000);
    const headers = buildUpstreamHeaders({
      rawHeaders: request.rawHeaders,
      token: admission.token,
      accept: masker.upstreamAccept(first(request.headers['accept']), info),
      ...(body === undefined ? {} : { contentLength: body.length }),
    });
    let upstream: UpstreamResponse;
    try {
      upstream = await forwardToUpstream(cluster.upstream, {
        method: request.method,
        path: admission.path,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: request.signal,
      });
    } catch (error) {
      return refuse(publicError(error, deps.logger, { requestId: admission.requestId }), kept);
    }
    metrics?.upstreamSeconds.observe({ cluster: cluster.config.name }, (clock() - upstreamStarted) / 1000);

    const plan = masker.plan(
      {
        contentType: first(upstream.headers['content-type']),
        contentEncoding: first(upstream.headers['content-encoding']),
        status: upstream.status,
        method: request.method,
      },
      info,
    );
    if (plan.kind === 'refuse') {
      discardUpstreamBody(upstream.body);
      return refuse(plan.error, kept);
    }

    const responseHeaders = clientHeaders(admission, upstream, plan.kind === 'mask' ? plan.contentType : undefined);
    // A streamed answer (watch, `logs -f`, anything sent without a length) may not send a byte for
    // minutes: the status line and headers go out at once, or `kubectl wait` sits until the next event.
    const flush = info.verb === 'watch' || upstream.headers['content-length'] === undefined;
    const relay = { kind: 'relay' as const, status: upstream.status, headers: responseHeaders, flush };

    if (request.method === 'HEAD' || emptyStatuses.has(upstream.status)) {
      discardUpstreamBody(upstream.body);
      completion.finished(admission, request, { status: upstream.status, bytesOut: 0, ...kept });
      return relay;
    }
    const declared = declaredLength(upstream.headers['content-length']);
    // Identity-encoded only: a small gzip body may inflate to far more than WHOLE_BODY_BYTES.
    const whole = !flush && declared !== undefined && declared <= WHOLE_BODY_BYTES;
    if (whole && upstream.headers['content-encoding'] === undefined)
      return relayWhole(deps, admission, request, { upstream, plan, relay, kept, refuse });
    const tap = createTap(deps.auditBodies ? deps.maxAuditBodyBytes : 0);
    const stages: NodeJS.ReadWriteStream[] = plan.kind === 'mask' ? [plan.stream, tap.stream] : [tap.stream];
    // pipeline destroys every stage on error or client abort (the transport destroys the last
    // stage), which closes the upstream request.
    (pipeline as (...streams: unknown[]) => unknown)(upstream.body, ...stages, (error: Error | null | undefined) => {
      const failure = error ?? undefined;
      const responseBody = plan.kind === 'mask' ? maskCredentialFields(tap.captured()) : undefined;
      if (plan.kind === 'mask') metrics?.maskedObjects.inc(plan.maskedObjects());
      const broke = failure === undefined ? undefined : request.signal.aborted ? 'client went away' : detailOf(failure);
      completion.finished(admission, request, {
        status: upstream.status,
        bytesOut: tap.bytes(),
        ...kept,
        ...(responseBody === undefined || responseBody === '' ? {} : { responseBody }),
        ...(broke === undefined
          ? {}
          : { error: broke === 'client went away' ? broke : `stream failed: ${broke}`, streamError: broke }),
      });
    });
    return { ...relay, body: tap.stream };
  }

  return { respond };
}

export type Responder = ReturnType<typeof createResponder>;

/** The gateway's own answer (`kubectl auth can-i`): JSON, recorded like a relayed one, never forwarded. */
function answerLocally(
  deps: RespondDeps,
  admission: Admission,
  request: ForwardRequest,
  answer: NonNullable<Admission['answer']>,
): Answer {
  const body = Buffer.from(JSON.stringify(answer.body));
  deps.completion.finished(admission, request, {
    status: answer.status,
    bytesOut: body.length,
    ...(deps.auditBodies ? { responseBody: body.subarray(0, deps.maxAuditBodyBytes).toString('utf8') } : {}),
  });
  const headers = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'audit-id': admission.requestId,
  };
  return { kind: 'relay', status: answer.status, headers, flush: false, body: Readable.from([body]) };
}

/** The upstream's headers as the client gets them: the masked type, the admission's warning, the audit id. */
function clientHeaders(
  admission: Admission,
  upstream: UpstreamResponse,
  maskedContentType: string | undefined,
): Record<string, string | string[]> {
  const responseHeaders = buildClientResponseHeaders(upstream.headers);
  if (maskedContentType !== undefined) responseHeaders['content-type'] = maskedContentType;
  else if (upstream.headers['content-encoding'] !== undefined)
    responseHeaders['content-encoding'] = first(upstream.headers['content-encoding']) ?? '';
  if (admission.warning !== undefined) {
    const existing = responseHeaders['warning'];
    responseHeaders['warning'] = existing === undefined ? admission.warning : [...[existing].flat(), admission.warning];
  }
  responseHeaders['audit-id'] = admission.requestId;
  return responseHeaders;
}

type Plan = ReturnType<GatewayMasker['plan']>;

/** What relayWhole needs of respond(): the upstream answer, its plan, and respond's refusal path. */
interface WholeRelay {
  upstream: UpstreamResponse;
  plan: Exclude<Plan, { kind: 'refuse' }>;
  relay: Extract<Answer, { kind: 'relay' }>;
  kept: { keptMaskedValues?: string[] };
  refuse: (error: HoopError, extra?: { keptMaskedValues?: string[] }) => Answer;
}

/**
 * A small answer (WHOLE_BODY_BYTES) read whole, then masked and recorded before a byte is sent. Nothing
 * has reached the client when the upstream breaks off or the body cannot be masked, so the client gets
 * a Status instead of a cut body; a client that went away is recorded as such and gets nothing.
 */
async function relayWhole(
  deps: RespondDeps,
  admission: Admission,
  request: ForwardRequest,
  { upstream, plan, relay, kept, refuse }: WholeRelay,
): Promise<Answer> {
  let body: Buffer;
  try {
    body = Buffer.from(await upstream.body.arrayBuffer());
  } catch (error) {
    if (!request.signal.aborted) {
      const detail = detailOf(error);
      return refuse(
        new HoopError(
          'ERR_UPSTREAM_UNREACHABLE',
          `the API server of cluster "${admission.cluster.config.name}" broke off its answer (${detail}); nothing of it was relayed; run the call again`,
          { cause: error },
        ),
        kept,
      );
    }
    const gone = 'client went away';
    deps.completion.finished(admission, request, {
      status: upstream.status,
      bytesOut: 0,
      ...kept,
      error: gone,
      streamError: gone,
    });
    return { kind: 'refusal', error: new HoopError('ERR_BAD_REQUEST', gone) };
  }
  if (plan.kind === 'mask') {
    try {
      body = plan.whole(body);
    } catch (error) {
      return refuse(publicError(error, deps.logger, { requestId: admission.requestId }), kept);
    }
    deps.metrics?.maskedObjects.inc(plan.maskedObjects());
  }
  const limit = deps.auditBodies ? deps.maxAuditBodyBytes : 0;
  const responseBody =
    plan.kind === 'mask' && limit > 0 ? maskCredentialFields(body.subarray(0, limit).toString('utf8')) : '';
  deps.completion.finished(admission, request, {
    status: upstream.status,
    bytesOut: body.length,
    ...kept,
    ...(responseBody === '' ? {} : { responseBody }),
  });
  return { ...relay, body };
}

function declaredLength(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
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

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
