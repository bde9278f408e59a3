// The upgrade path (exec, attach, port-forward): the same admission pipeline as every other call,
// decided (and held for approval) before the upgrade is answered; then the upstream's answer is
// awaited and nothing is piped unless it is a 101 (the CVE-2018-1002105 pattern). WebSocket
// exec/attach frames are recorded into the audit session; SPDY cannot be recorded, so it is
// refused unless `exec.spdy: unrecorded`.
import type { IncomingMessage } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import type { ExecConfig } from '../config/types.js';
import { statusFromError } from '../kube/status.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { AuditRecorder } from '../audit/recorder.js';
import { checkCanonicalPath } from '../kube/canonical-path.js';
import { parseRequestInfo } from '../kube/request-info.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { createCompletion, type RequestLine } from '../pipeline/completion.js';
import { detailOf } from '../pipeline/errors.js';
import { routeCluster, type Admission, type Admitter, type Refusal } from '../pipeline/index.js';
import { startExecRecording } from '../proxy/exec-recording.js';
import { withoutCredentialQuery } from '../proxy/mask/credentials.js';
import { boundPath } from '../pipeline/errors.js';

/** Subresources that legitimately upgrade; everything else is refused before admission ends. */
const upgradeSubresources = new Set(['exec', 'attach', 'portforward', 'proxy']);
/** Request headers the upgrade handshake needs upstream (the token is set, never copied). */
const handshakeHeaders = new Set([
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'x-stream-protocol-version',
  'user-agent',
  'kubectl-command',
  'kubectl-session',
]);

/**
 * The first kubectl that speaks WebSocket for this subresource by default: exec and attach since 1.30
 * (KEP-4006, beta), port-forward since 1.31.
 */
function websocketKubectl(rawUrl: string): string {
  const path = rawUrl.split('?', 1)[0] ?? '';
  return /\/portforward\/?$/.test(path) ? '1.31' : '1.30';
}

export interface UpgradeDeps {
  admitter: Admitter;
  recorder: Pick<AuditRecorder, 'appendFrames'>;
  logger: Logger;
  metrics?: GatewayMetrics;
  exec: ExecConfig;
  clock: () => number;
}

function writeRefusal(socket: Duplex, error: HoopError, requestId?: string): void {
  const body = JSON.stringify(statusFromError(error));
  const reasonPhrase =
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      403: 'Forbidden',
      404: 'Not Found',
      429: 'Too Many Requests',
      502: 'Bad Gateway',
      503: 'Service Unavailable',
    }[error.status] ?? 'Error';
  const retryAfter = error.details?.['retryAfterSeconds'];
  socket.end(
    `HTTP/1.1 ${error.status} ${reasonPhrase}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${requestId === undefined ? '' : `Audit-Id: ${requestId}\r\n`}${typeof retryAfter === 'number' ? `Retry-After: ${retryAfter}\r\n` : ''}Connection: close\r\n\r\n${body}`,
  );
}

/** Reads an HTTP response head (up to the blank line) from the upstream socket. */
function readResponseHead(socket: Socket, limit = 64 * 1024): Promise<{ head: Buffer; rest: Buffer; status: number }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > limit) fail(new Error('upstream response head too large'));
        return;
      }
      cleanup();
      socket.pause();
      const head = buffered.subarray(0, end + 4);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'))?.[1] ?? NaN);
      if (!Number.isInteger(status)) return reject(new Error('upstream sent no HTTP response'));
      resolve({ head, rest: buffered.subarray(end + 4), status });
    };
    const fail = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => fail(new Error('upstream closed the connection before answering'));
    function cleanup() {
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
    }
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
  });
}

/**
 * Why an upgrade to this path is refused before admission, or undefined when it names an
 * exec/attach/portforward/proxy subresource (or cannot be classified: admission refuses it then).
 */
function upgradeTargetProblem(rawUrl: string): HoopError | undefined {
  let info;
  try {
    const { path } = routeCluster(rawUrl, anyCluster, '');
    if (!checkCanonicalPath(path).ok) return undefined;
    info = parseRequestInfo('GET', path);
  } catch {
    return undefined;
  }
  if (info.isResourceRequest && upgradeSubresources.has(info.subresource)) return undefined;
  const target = info.isResourceRequest ? `${info.resource}/${info.subresource || '(none)'}` : 'a non-resource path';
  return new HoopError(
    'ERR_BAD_REQUEST',
    `upgrades are only accepted for exec, attach, portforward and proxy subresources, not ${target}; send this request without an Upgrade header`,
  );
}

/** routeCluster() only needs has(): the cluster name does not change the path's shape. */
const anyCluster: ReadonlyMap<string, unknown> = { has: () => true } as unknown as ReadonlyMap<string, unknown>;

export function createUpgradeHandler(deps: UpgradeDeps) {
  const { admitter, logger, clock } = deps;
  // The same completion as the Kubernetes API route: outcome recorded, counted in hoopgate_requests_total, logged.
  const completion = createCompletion(deps);

  async function handle(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const receivedAt = clock();
    const controller = new AbortController();
    client.on('close', () => controller.abort());
    client.on('error', () => controller.abort());
    const incoming = {
      method: req.method ?? 'GET',
      rawUrl: req.url ?? '/',
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      signal: controller.signal,
      scope: req,
    };
    const line: RequestLine = { transport: 'upgrade', method: incoming.method, rawUrl: incoming.rawUrl };
    const protocol = (req.headers.upgrade ?? '').toLowerCase();
    const kind = protocol === 'websocket' ? 'websocket' : protocol.startsWith('spdy/') ? 'spdy' : undefined;
    const answerRefusal = (refusal: Refusal) => {
      completion.refused(refusal, line, receivedAt);
      if (!client.destroyed) writeRefusal(client, refusal.error, refusal.recorded ? refusal.requestId : undefined);
    };

    if (kind === undefined) {
      const error = new HoopError(
        'ERR_BAD_REQUEST',
        `upgrade to "${protocol.slice(0, 64)}" is not supported: only WebSocket and SPDY/3.1 for exec, attach and port-forward`,
      );
      return answerRefusal(await admitter.reject(incoming, error));
    }
    // A stray Upgrade on any other path is refused before admission: no decision, hold or token.
    const refusedTarget = upgradeTargetProblem(incoming.rawUrl);
    if (refusedTarget !== undefined) return answerRefusal(await admitter.reject(incoming, refusedTarget));
    const spdyRefusal =
      kind === 'spdy' && deps.exec.spdy === 'deny'
        ? () =>
            new HoopError(
              'ERR_FORBIDDEN',
              `this client speaks SPDY, which hoopgate cannot record: use kubectl ${websocketKubectl(req.url ?? '/')} or newer (it speaks WebSocket). Unrecorded sessions are off on this gateway; only its operators can allow them`,
              { operatorDetail: 'exec.spdy is deny; set exec.spdy: unrecorded to allow unrecorded SPDY sessions' },
            )
        : undefined;
    const admitted = await admitter.admit({
      ...incoming,
      ...(spdyRefusal === undefined ? {} : { refuseIfAllowed: spdyRefusal }),
    });
    if (!admitted.ok) return answerRefusal(admitted.refusal);
    const { admission } = admitted;
    const finish = (status: number, bytesOut: number, error?: string) =>
      completion.finished(admission, line, { status, bytesOut, ...(error === undefined ? {} : { error }) });

    const { info } = admission;
    if (!info.isResourceRequest || !upgradeSubresources.has(info.subresource)) {
      const error = new HoopError(
        'ERR_BAD_REQUEST',
        `upgrades are only accepted for exec, attach, portforward and proxy subresources, not ${info.resource}/${info.subresource || '(none)'}`,
      );
      finish(error.status, 0, error.message);
      return writeRefusal(client, error, admission.requestId);
    }

    const upstreamSocket = dialUpstream(admission, req, client);
    let response: { head: Buffer; rest: Buffer; status: number };
    try {
      response = await readResponseHead(upstreamSocket);
    } catch (error) {
      const { upstream } = admission.cluster;
      const hoopError = new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `API server of cluster "${admission.cluster.config.name}" (${upstream.origin}) failed the upgrade: ${detailOf(error)}`,
      );
      upstreamSocket.destroy();
      finish(hoopError.status, 0, hoopError.message);
      return writeRefusal(client, hoopError, admission.requestId);
    }

    if (response.status !== 101) {
      const size = await relayRefusedUpgrade(response, upstreamSocket, client);
      finish(response.status, size, `upstream refused the upgrade with ${response.status}`);
      return;
    }
    const { bytesOut, failure } = await pipeSession(deps, { admission, kind, response, head, client, upstreamSocket });
    finish(101, bytesOut, kind === 'spdy' ? 'spdy session (unrecorded)' : failure);
  }

  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    handle(req, socket, head).catch((error: unknown) => {
      logger.error({ path: boundPath(withoutCredentialQuery(req.url ?? '/')), err: detailOf(error) }, 'upgrade failed');
      if (!socket.destroyed) writeRefusal(socket, new HoopError('ERR_INTERNAL', 'upgrade failed inside the gateway'));
    });
  };
}

/** Connects to the cluster's API server and sends the handshake with the ServiceAccount token. */
function dialUpstream(admission: Admission, req: IncomingMessage, client: Duplex): Socket {
  const { upstream } = admission.cluster;
  const url = new URL(upstream.origin);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const upstreamSocket: Socket =
    url.protocol === 'https:'
      ? connectTls({
          host: url.hostname,
          port,
          servername: /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname,
          ALPNProtocols: ['http/1.1'],
          ...upstream.tls,
        })
      : connectTcp({ host: url.hostname, port });
  client.on('close', () => upstreamSocket.destroy());
  upstreamSocket.on('error', () => client.destroy());

  const lines = [
    `${req.method ?? 'GET'} ${upstream.basePath}${admission.path} HTTP/1.1`,
    `Host: ${url.host}`,
    'Connection: Upgrade',
    `Authorization: Bearer ${admission.token}`,
  ];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    if (handshakeHeaders.has(name)) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1] ?? ''}`);
  }
  upstreamSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
  return upstreamSocket;
}

/** Relays the upstream's non-101 answer as it is (a Status body, usually), then closes both sides; resolves with its size. */
async function relayRefusedUpgrade(
  response: { head: Buffer; rest: Buffer },
  upstreamSocket: Socket,
  client: Duplex,
): Promise<number> {
  const bodyLimit = 1024 * 1024;
  const chunks: Buffer[] = [response.rest];
  let size = response.rest.length;
  const contentLength = Number(/\r\ncontent-length:\s*(\d+)/i.exec(response.head.toString('latin1'))?.[1] ?? NaN);
  if (!(Number.isFinite(contentLength) && size >= contentLength)) {
    upstreamSocket.resume();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      upstreamSocket.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= bodyLimit) chunks.push(chunk);
        if (Number.isFinite(contentLength) && size >= contentLength) {
          clearTimeout(timer);
          resolve();
        }
      });
      upstreamSocket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  upstreamSocket.destroy();
  const headText = response.head
    .toString('latin1')
    .replace(/\r\nconnection:[^\r]*/gi, '')
    .replace(/\r\n\r\n$/, '\r\nConnection: close\r\n\r\n');
  client.end(Buffer.concat([Buffer.from(headText, 'latin1'), ...chunks]));
  return size;
}

/** 101: from here on both sides are piped, with WebSocket exec/attach frames recorded. Resolves with the bytes sent to the client once both sides closed. */
async function pipeSession(
  deps: Pick<UpgradeDeps, 'recorder' | 'exec' | 'clock'>,
  session: {
    admission: Admission;
    kind: 'websocket' | 'spdy';
    response: { head: Buffer; rest: Buffer };
    head: Buffer;
    client: Duplex;
    upstreamSocket: Socket;
  },
): Promise<{ bytesOut: number; failure: string | undefined }> {
  const { admission, kind, response, head, client, upstreamSocket } = session;
  const { clock } = deps;
  const { info } = admission;
  let headText = response.head.toString('latin1');
  if (admission.warning !== undefined)
    headText = headText.replace(/\r\n\r\n$/, `\r\nWarning: ${admission.warning}\r\n\r\n`);
  client.write(Buffer.from(headText, 'latin1'));
  if (response.rest.length > 0) client.write(response.rest);
  if (head.length > 0) upstreamSocket.write(head);

  // WebSocket exec/attach frames are recorded as the session runs (proxy/exec-recording.ts); a failed write ends it.
  const recording =
    kind === 'websocket' && (info.subresource === 'exec' || info.subresource === 'attach')
      ? startExecRecording({
          recorder: deps.recorder,
          eventId: admission.audit.eventId,
          clock,
          maxRecordBytes: deps.exec.maxRecordBytes,
          protocol: /\r\nsec-websocket-protocol:([^\r]*)/i.exec(response.head.toString('latin1'))?.[1] ?? '',
          onFailure: () => {
            client.destroy();
            upstreamSocket.destroy();
          },
        })
      : undefined;
  const fromClient = { push: (chunk: Buffer) => recording?.fromClient(chunk) };
  const fromUpstream = { push: (chunk: Buffer) => recording?.fromUpstream(chunk) };
  if (head.length > 0) fromClient.push(head);
  if (response.rest.length > 0) fromUpstream.push(response.rest);

  let bytesOut = response.rest.length;
  client.on('data', (chunk: Buffer) => fromClient.push(chunk));
  upstreamSocket.on('data', (chunk: Buffer) => {
    bytesOut += chunk.length;
    fromUpstream.push(chunk);
  });
  client.pipe(upstreamSocket);
  upstreamSocket.pipe(client);
  upstreamSocket.resume();
  await new Promise<void>((resolve) => {
    let closed = 0;
    const done = () => {
      closed += 1;
      if (closed === 1) {
        client.destroy();
        upstreamSocket.destroy();
      }
      if (closed === 2) resolve();
    };
    client.once('close', done);
    upstreamSocket.once('close', done);
  });
  recording?.close();
  return { bytesOut, failure: recording?.failure };
}
