// WebSocket exec, attach and port-forward for the simulated API server: authenticates and authorizes the
// upgrade like any sim request, then speaks the remotecommand channel protocols (v5 as kube-apiserver, v4,
// base64 and pre-v4 as the kubelet; channel-codec.ts) to a tiny built-in shell, or hands port-forward to
// portforward.ts. SPDY upgrades are refused: WebSocket only.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { Authenticator } from './authn.js';
import { chooseChannelProtocol, portForwardChannelProtocols, remoteCommandProtocols } from './channel-codec.js';
import {
  dialEcho,
  parsePorts,
  portForwardTunnelProtocol,
  servePortForwardChannels,
  servePortForwardTunnel,
  type PodPortDialer,
} from './portforward.js';
import { authorize, forbiddenMessage, type Attributes, type RbacState } from './rbac.js';
import { parseRequestInfo, type SimRequestInfo } from './request-info.js';
import type { Obj } from './resources.js';
import type { SimRequestRecord } from './server.js';
import {
  badRequest,
  forbidden,
  internalError,
  notFound,
  SimStatusError,
  unauthorized,
  type SimStatus,
} from './status.js';
import type { Store } from './store.js';
import { processOptions, serveProcess } from './exec-process.js';

export const spdyRefusedMessage =
  'the simulated api server speaks only websocket for exec, attach and port-forward; ' +
  'SPDY upgrades are refused: use kubectl 1.30 or newer for exec and attach, 1.31 or newer for port-forward';

export interface SimUpgradeDeps {
  authn: Authenticator;
  rbac: RbacState;
  store: Store;
  requests: SimRequestRecord[];
  now: () => number;
  /** Where port-forward connects; default: an echo service on every port of every pod. */
  dialPodPort?: PodPortDialer;
}

export interface SimUpgradeHandler {
  /** The HTTP server's 'upgrade' listener. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Exec, attach and port-forward WebSocket sessions currently open. */
  openSessions(): number;
  /** Ends every session (the sim is closing). */
  closeAll(): void;
}

type UpgradeRequest = IncomingMessage & { simProtocol?: string };

const streamingSubresources = new Set(['exec', 'attach', 'portforward']);

function refuse(socket: Duplex, record: SimRequestRecord, status: SimStatus): void {
  record.status = status.code;
  const body = Buffer.from(`${JSON.stringify(status)}\n`);
  const head = [
    `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? ''}`,
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    'Cache-Control: no-cache, private',
    `Audit-Id: ${randomUUID()}`,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  if (socket.writable) socket.end(Buffer.concat([Buffer.from(head), body]));
  else socket.destroy();
}

/** Authenticates and authorizes the upgrade like any sim request and checks it is one the sim serves. */
function admitUpgrade(
  deps: SimUpgradeDeps,
  req: IncomingMessage,
  record: SimRequestRecord,
): { info: SimRequestInfo; pod: Obj } {
  const method = req.method ?? 'GET';
  const header = req.headers['authorization'];
  const m = header === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(header);
  record.token = m?.[1] ?? null;
  const who = m?.[1] ? deps.authn.authenticate(m[1]) : undefined;
  if (!who) throw unauthorized();
  record.identity = who.identity;

  const info = parseRequestInfo(method, record.rawPath);
  const subresource = info.subresource;
  if (
    !info.isResourceRequest ||
    info.apiGroup !== '' ||
    info.resource !== 'pods' ||
    info.namespace === '' ||
    info.parts.length !== 3 ||
    !streamingSubresources.has(subresource)
  ) {
    throw badRequest(
      `the simulated api server upgrades only pods/exec, pods/attach and pods/portforward connections, not ${JSON.stringify(info.path)}`,
    );
  }
  // Both the WebSocket GET and the SPDY POST need `create`: where kube-apiserver is heading
  // (AuthorizePodWebsocketUpgradeCreatePermission), so a `get`-only grant cannot open a shell.
  const attrs: Attributes = {
    user: who.user,
    verb: 'create',
    isResourceRequest: true,
    path: info.path,
    namespace: info.namespace,
    apiGroup: '',
    resource: 'pods',
    subresource,
    name: info.name,
  };
  const decision = authorize(deps.rbac, attrs);
  if (!decision.allowed)
    throw forbidden('', 'pods', info.name, forbiddenMessage(attrs) + (decision.reason ? `: ${decision.reason}` : ''));

  const pod = deps.store.get('/pods', info.namespace, info.name);
  if (!pod) throw notFound('', 'pods', info.name);

  const upgrade = String(req.headers['upgrade'] ?? '').toLowerCase();
  if (upgrade.startsWith('spdy/')) throw badRequest(spdyRefusedMessage);
  if (upgrade !== 'websocket')
    throw badRequest(
      `unsupported upgrade ${JSON.stringify(req.headers['upgrade'] ?? '')}: the simulated api server speaks only websocket`,
    );
  if (method !== 'GET') throw badRequest(`a websocket upgrade must be a GET request, not ${method}`);
  return { info, pod };
}

/** Picks the WebSocket subprotocol from those offered and what to run once the handshake is done. */
function chooseSession(
  req: IncomingMessage,
  info: SimRequestInfo,
  pod: Obj,
  dial: PodPortDialer,
): { protocol: string; start: (ws: WebSocket, done: () => void) => void } {
  const subresource = info.subresource;
  const rawPath = req.url ?? '/';
  const query = new URLSearchParams(rawPath.includes('?') ? rawPath.slice(rawPath.indexOf('?') + 1) : '');
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const podRef = { namespace: info.namespace, name: info.name };
  if (subresource === 'portforward' && offered.includes(portForwardTunnelProtocol)) {
    return {
      protocol: portForwardTunnelProtocol,
      start: (ws, done) => servePortForwardTunnel(ws, podRef, dial, { onClose: done }),
    };
  }
  if (subresource === 'portforward') {
    const chosen = chooseChannelProtocol('portforward', offered);
    const ports = parsePorts(query);
    if (!chosen)
      throw badRequest(
        `unable to upgrade: none of the offered websocket subprotocols ${JSON.stringify(offered)} is supported; the simulated api server supports ${[portForwardTunnelProtocol, ...portForwardChannelProtocols].join(', ')}`,
      );
    return {
      protocol: chosen.name,
      start: (ws, done) => servePortForwardChannels(ws, chosen.codec, podRef, ports, dial, { onClose: done }),
    };
  }
  const chosen = chooseChannelProtocol('remotecommand', offered);
  if (!chosen)
    throw badRequest(
      `unable to upgrade: none of the offered websocket subprotocols ${JSON.stringify(offered)} is supported; the simulated api server supports ${remoteCommandProtocols.join(', ')}`,
    );
  const opts = processOptions(query, pod, info.name, subresource === 'exec');
  return { protocol: chosen.name, start: (ws, done) => serveProcess(ws, chosen, opts, done) };
}

export function createSimUpgradeHandler(deps: SimUpgradeDeps): SimUpgradeHandler {
  const sessions = new Set<() => void>();
  const dial = deps.dialPodPort ?? dialEcho;
  const wss = new WebSocketServer({ noServer: true, clientTracking: false });
  // The subprotocol is chosen before the handshake (a refusal needs a Status body) and written here: ws's own
  // negotiation rejects `SPDY/3.1+portforward.k8s.io`, whose `/` is not an RFC 7230 token character.
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const chosen = (req as UpgradeRequest).simProtocol;
    if (chosen) headers.push(`Sec-WebSocket-Protocol: ${chosen}`);
  });

  function track(ws: WebSocket): () => void {
    const close = () => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    };
    sessions.add(close);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      sessions.delete(close);
    };
  }

  function handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const rawPath = req.url ?? '/';
    const method = req.method ?? 'GET';
    const record: SimRequestRecord = {
      time: deps.now(),
      method,
      rawPath,
      identity: null,
      token: null,
      headers: { ...req.headers },
      status: 0,
    };
    deps.requests.push(record);
    try {
      const { info, pod } = admitUpgrade(deps, req, record);
      const { protocol, start } = chooseSession(req, info, pod, dial);
      (req as UpgradeRequest).simProtocol = protocol;
      delete req.headers['sec-websocket-protocol'];
      wss.handleUpgrade(req, socket, head, (ws) => {
        record.status = 101;
        const done = track(ws);
        try {
          start(ws, done);
        } catch (e) {
          done();
          ws.close(1011, (e as Error).message.slice(0, 120));
        }
      });
    } catch (e) {
      refuse(
        socket,
        record,
        e instanceof SimStatusError ? e.status : internalError(e instanceof Error ? e.message : String(e)).status,
      );
    }
  }

  return {
    handle,
    openSessions: () => sessions.size,
    closeAll: () => {
      for (const close of [...sessions]) close();
    },
  };
}
