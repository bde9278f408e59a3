// WebSocket exec, attach and port-forward for the simulated API server: authenticates and authorizes the
// upgrade like any sim request, then speaks the remotecommand channel protocols (v5 as kube-apiserver, v4,
// base64 and pre-v4 as the kubelet; channel-codec.ts) to a tiny built-in shell, or hands port-forward to
// portforward.ts. SPDY upgrades are refused: WebSocket only.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { Authenticator } from './authn.js';
import { chooseChannelProtocol, decodeChannelMessage, encodeChannelMessage, portForwardChannelProtocols, remoteCommandProtocols, type ChannelProtocol } from './channel-codec.js';
import {
  dialEcho, parsePorts, portForwardTunnelProtocol, servePortForwardChannels, servePortForwardTunnel, type PodPortDialer,
} from './portforward.js';
import { authorize, forbiddenMessage, type Attributes, type RbacState } from './rbac.js';
import { queryBool } from './query.js';
import { parseRequestInfo } from './request-info.js';
import type { Obj } from './resources.js';
import type { SimRequestRecord } from './server.js';
import { badRequest, forbidden, internalError, notFound, SimStatusError, unauthorized, type SimStatus } from './status.js';
import type { Store } from './store.js';

/** Channel numbers of the remotecommand protocol; 255 (v5) carries "the client closed channel N". */
export const channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export const spdyRefusedMessage = 'the simulated api server speaks only websocket for exec, attach and port-forward; '
  + 'SPDY upgrades are refused: use kubectl 1.30 or newer for exec and attach, 1.31 or newer for port-forward';

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

  function refuse(socket: Duplex, record: SimRequestRecord, status: SimStatus): void {
    record.status = status.code;
    const body = Buffer.from(`${JSON.stringify(status)}\n`);
    const head = [
      `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? ''}`, 'Content-Type: application/json', `Content-Length: ${body.length}`,
      'Cache-Control: no-cache, private', `Audit-Id: ${randomUUID()}`, 'Connection: close', '', '',
    ].join('\r\n');
    if (socket.writable) socket.end(Buffer.concat([Buffer.from(head), body]));
    else socket.destroy();
  }

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
    const record: SimRequestRecord = { time: deps.now(), method, rawPath, identity: null, token: null, headers: { ...req.headers }, status: 0 };
    deps.requests.push(record);
    try {
      const header = req.headers['authorization'];
      const m = header === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(header);
      record.token = m?.[1] ?? null;
      const who = m?.[1] ? deps.authn.authenticate(m[1]) : undefined;
      if (!who) throw unauthorized();
      record.identity = who.identity;

      const info = parseRequestInfo(method, rawPath);
      const subresource = info.subresource;
      if (!info.isResourceRequest || info.apiGroup !== '' || info.resource !== 'pods' || info.namespace === '' || info.parts.length !== 3 || !streamingSubresources.has(subresource)) {
        throw badRequest(`the simulated api server upgrades only pods/exec, pods/attach and pods/portforward connections, not ${JSON.stringify(info.path)}`);
      }
      // Both the WebSocket GET and the SPDY POST need `create`: where kube-apiserver is heading
      // (AuthorizePodWebsocketUpgradeCreatePermission), so a `get`-only grant cannot open a shell.
      const attrs: Attributes = {
        user: who.user, verb: 'create', isResourceRequest: true, path: info.path, namespace: info.namespace,
        apiGroup: '', resource: 'pods', subresource, name: info.name,
      };
      const decision = authorize(deps.rbac, attrs);
      if (!decision.allowed) throw forbidden('', 'pods', info.name, forbiddenMessage(attrs) + (decision.reason ? `: ${decision.reason}` : ''));

      const pod = deps.store.get('/pods', info.namespace, info.name);
      if (!pod) throw notFound('', 'pods', info.name);

      const upgrade = String(req.headers['upgrade'] ?? '').toLowerCase();
      if (upgrade.startsWith('spdy/')) throw badRequest(spdyRefusedMessage);
      if (upgrade !== 'websocket') throw badRequest(`unsupported upgrade ${JSON.stringify(req.headers['upgrade'] ?? '')}: the simulated api server speaks only websocket`);
      if (method !== 'GET') throw badRequest(`a websocket upgrade must be a GET request, not ${method}`);

      const query = new URLSearchParams(rawPath.includes('?') ? rawPath.slice(rawPath.indexOf('?') + 1) : '');
      const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
      const podRef = { namespace: info.namespace, name: info.name };
      let start: (ws: WebSocket, done: () => void) => void;
      let protocol: string | undefined;

      if (subresource === 'portforward') {
        if (offered.includes(portForwardTunnelProtocol)) {
          protocol = portForwardTunnelProtocol;
          start = (ws, done) => servePortForwardTunnel(ws, podRef, dial, { onClose: done });
        } else {
          const chosen = chooseChannelProtocol('portforward', offered);
          protocol = chosen?.name;
          const ports = parsePorts(query);
          if (chosen) start = (ws, done) => servePortForwardChannels(ws, chosen.codec, podRef, ports, dial, { onClose: done });
        }
        if (protocol === undefined) throw badRequest(`unable to upgrade: none of the offered websocket subprotocols ${JSON.stringify(offered)} is supported; the simulated api server supports ${[portForwardTunnelProtocol, ...portForwardChannelProtocols].join(', ')}`);
      } else {
        const chosen = chooseChannelProtocol('remotecommand', offered);
        if (!chosen) throw badRequest(`unable to upgrade: none of the offered websocket subprotocols ${JSON.stringify(offered)} is supported; the simulated api server supports ${remoteCommandProtocols.join(', ')}`);
        protocol = chosen.name;
        const opts = processOptions(query, pod, info.name, subresource === 'exec');
        start = (ws, done) => serveProcess(ws, chosen, opts, done);
      }

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
      refuse(socket, record, e instanceof SimStatusError ? e.status : internalError(e instanceof Error ? e.message : String(e)).status);
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

// ---- exec / attach options ----

export interface ProcessOptions {
  /** null: attach to the pod's main process (a shell). */
  command: string[] | null;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  pod: string;
  container: string;
}

function processOptions(query: URLSearchParams, pod: Obj, podName: string, isExec: boolean): ProcessOptions {
  const containers: string[] = ((pod['spec']?.['containers'] ?? []) as Obj[]).map((c) => String(c['name']));
  const all = [...containers, ...((pod['spec']?.['initContainers'] ?? []) as Obj[]).map((c) => String(c['name'])), ...((pod['spec']?.['ephemeralContainers'] ?? []) as Obj[]).map((c) => String(c['name']))];
  let container = query.get('container') ?? '';
  if (container === '') {
    if (containers.length !== 1) throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]`);
    container = containers[0]!;
  } else if (!all.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${podName}`);
  }
  const tty = queryBool(query, 'tty');
  const opts: ProcessOptions = {
    command: isExec ? query.getAll('command') : null, stdin: queryBool(query, 'stdin'), stdout: queryBool(query, 'stdout'),
    // A terminal has one output stream: the kubelet drops stderr when tty is set.
    stderr: queryBool(query, 'stderr') && !tty, tty, pod: podName, container,
  };
  if (!opts.stdin && !opts.stdout && !opts.stderr) throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  if (isExec && opts.command!.length === 0) throw badRequest('you must specify at least one command for the container');
  return opts;
}

function exitMessage(code: number, command: string[] | null): string {
  return `command terminated with non-zero exit code: error executing command [${(command ?? ['sh']).join(' ')}], exit code ${code}`;
}

/** The status-channel payload, shaped as the kubelet writes it (json.Marshal of metav1.Status). */
export function exitStatus(code: number, command: string[] | null): string {
  if (code === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {}, status: 'Failure',
    message: exitMessage(code, command),
    reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

function serveProcess(ws: WebSocket, protocol: ChannelProtocol, opts: ProcessOptions, done: () => void): void {
  const send = (ch: number, data: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const { payload, binary } = encodeChannelMessage(protocol.codec, ch, data);
    ws.send(payload, { binary });
  };
  const write = (ch: number, data: string | Buffer) => send(ch, typeof data === 'string' ? Buffer.from(data) : data);
  const out = (data: string | Buffer) => {
    if (!opts.stdout) return;
    // The terminal's ONLCR: a newline leaves the tty as CR LF.
    write(channel.stdout, opts.tty && typeof data === 'string' ? data.replace(/\n/g, '\r\n') : data);
  };
  const stdin = createStdin(opts.tty, (echo) => {
    if (opts.stdout) write(channel.stdout, echo);
  });
  if (!opts.stdin) stdin.end();
  const timers = new Set<NodeJS.Timeout>();
  const wakers = new Set<() => void>();
  let closed = false;

  // Text and binary frames alike, as wsstream reads them (the Python client sends str data as text).
  ws.on('message', (message: Buffer) => {
    const m = decodeChannelMessage(protocol.codec, message);
    if (!m) return;
    if (m.channel === channel.stdin && opts.stdin) stdin.push(m.data);
    else if (m.channel === channel.close && protocol.streamClose && m.data[0] === channel.stdin) stdin.end();
    // channel.resize carries {"Width":…,"Height":…}: the built-in shell does not lay out text.
  });
  ws.on('close', () => {
    closed = true;
    stdin.end();
    for (const t of timers) clearTimeout(t);
    for (const w of wakers) w();
    done();
  });

  // The kubelet's "connection established" signal: an empty message on the lowest writable channel.
  write(opts.stdout ? channel.stdout : opts.stderr ? channel.stderr : channel.error, Buffer.alloc(0));

  const io: ProcessIo = {
    tty: opts.tty, hostname: opts.pod,
    out,
    err: (text) => {
      if (opts.tty) out(text);
      else if (opts.stderr) write(channel.stderr, text);
    },
    readLine: () => stdin.readLine(),
    readChunk: () => stdin.readChunk(),
    sleep: (ms) => new Promise<void>((resolve) => {
      if (closed) return resolve();
      const wake = () => {
        clearTimeout(t);
        timers.delete(t);
        wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      timers.add(t);
      wakers.add(wake);
    }),
  };
  runProcess(opts.command, io).then((code) => {
    if (closed) return;
    // Pre-v4 protocols report only a failure, as its message text (the kubelet's v1WriteStatusFunc).
    if (protocol.status === 'v4') write(channel.error, exitStatus(code, opts.command));
    else if (code !== 0) write(channel.error, exitMessage(code, opts.command));
    ws.close(1000);
  }, (e: unknown) => {
    if (closed) return;
    const message = `error executing command in container: ${(e as Error).message}`;
    write(channel.error, protocol.status === 'v4' ? JSON.stringify({ metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 }) : message);
    ws.close(1000);
  });
}

// ---- stdin: raw bytes, or a terminal's canonical line discipline ----

interface Stdin {
  push(data: Buffer): void;
  end(): void;
  readLine(): Promise<string | null>;
  readChunk(): Promise<Buffer | null>;
}

/**
 * With a tty, input is processed as typed (like a terminal in canonical mode): characters are echoed,
 * DEL erases, Enter completes a line, ^C drops it, ^D on an empty line is end-of-file for one read.
 */
function createStdin(tty: boolean, echo: (text: string) => void): Stdin {
  let raw = Buffer.alloc(0);
  let line = '';
  const lines: (string | null)[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const wait = () => new Promise<void>((resolve) => (wake = resolve));
  return {
    push(data) {
      if (ended) return;
      if (!tty) {
        raw = raw.length ? Buffer.concat([raw, data]) : Buffer.from(data);
      } else {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            echo('\r\n');
            lines.push(line);
            line = '';
          } else if (ch === '\x7f' || ch === '\b') {
            if (line !== '') {
              line = [...line].slice(0, -1).join('');
              echo('\b \b');
            }
          } else if (ch === '\x03') {
            echo('^C\r\n');
            line = '';
            lines.push('');
          } else if (ch === '\x04') {
            if (line === '') lines.push(null);
          } else {
            line += ch;
            echo(ch);
          }
        }
      }
      notify();
    },
    end() {
      ended = true;
      notify();
    },
    async readLine() {
      for (;;) {
        if (tty) {
          if (lines.length) return lines.shift()!;
        } else {
          const nl = raw.indexOf(0x0a);
          if (nl >= 0) {
            const text = raw.subarray(0, nl).toString('utf8');
            raw = raw.subarray(nl + 1);
            return text;
          }
          if (ended && raw.length) {
            const text = raw.toString('utf8');
            raw = Buffer.alloc(0);
            return text;
          }
        }
        if (ended) return null;
        await wait();
      }
    },
    async readChunk() {
      if (tty) {
        const l = await this.readLine();
        return l === null ? null : Buffer.from(`${l}\n`);
      }
      for (;;) {
        if (raw.length) {
          const chunk = raw;
          raw = Buffer.alloc(0);
          return chunk;
        }
        if (ended) return null;
        await wait();
      }
    },
  };
}

// ---- the built-in shell ----

export interface ProcessIo {
  readonly tty: boolean;
  readonly hostname: string;
  out(data: string | Buffer): void;
  err(text: string): void;
  readLine(): Promise<string | null>;
  readChunk(): Promise<Buffer | null>;
  sleep(ms: number): Promise<void>;
}

class ShellExit {
  constructor(readonly code: number) {}
}

class ShellSyntaxError extends Error {}

/** Splits a script into commands (`;` or newline between them) of words, honouring '…', "…", \ and # comments. */
export function parseScript(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (quote === "'") {
      if (c === "'") quote = '';
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = '';
      else if (c === '\\' && '"\\$`'.includes(script[i + 1] ?? '')) word += script[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < script.length) {
      word += script[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === ';' || c === '\n') {
      endCommand();
    } else if (c === '#' && !inWord) {
      while (i + 1 < script.length && script[i + 1] !== '\n') i++;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ShellSyntaxError('unterminated quoted string');
  endCommand();
  return commands;
}

const shells = new Set(['sh', 'bash']);
const baseName = (cmd: string) => cmd.replace(/^\/(?:usr\/)?s?bin\//, '');

function environment(io: ProcessIo): string[] {
  return [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${io.hostname}`, 'HOME=/root',
    ...(io.tty ? ['TERM=xterm'] : []), 'KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=443', 'KUBERNETES_PORT=tcp://10.96.0.1:443',
  ];
}

/** Runs a command line of the container (null: the main process, an interactive shell); resolves the exit code. */
export async function runProcess(argv: string[] | null, io: ProcessIo): Promise<number> {
  try {
    return argv === null ? await interactiveShell(io) : await runCommand(argv, io);
  } catch (e) {
    if (e instanceof ShellExit) return e.code;
    throw e;
  }
}

async function runCommand(argv: string[], io: ProcessIo): Promise<number> {
  const [cmd = '', ...args] = argv;
  const name = baseName(cmd);
  switch (name) {
    case 'echo': {
      const newline = args[0] !== '-n';
      io.out(`${(newline ? args : args.slice(1)).join(' ')}${newline ? '\n' : ''}`);
      return 0;
    }
    case 'env':
      io.out(`${environment(io).join('\n')}\n`);
      return 0;
    case 'hostname':
      io.out(`${io.hostname}\n`);
      return 0;
    case 'pwd':
      io.out('/\n');
      return 0;
    case 'whoami':
      io.out('root\n');
      return 0;
    case 'true':
      return 0;
    case 'false':
      return 1;
    case 'sleep': {
      const s = Number(args[0]);
      if (!Number.isFinite(s) || s < 0) {
        io.err(`sleep: invalid number '${args[0] ?? ''}'\n`);
        return 1;
      }
      await io.sleep(s * 1000);
      return 0;
    }
    case 'cat': {
      if (args.length > 0) {
        io.err(`cat: ${args[0]}: No such file or directory\n`);
        return 1;
      }
      for (let chunk = await io.readChunk(); chunk !== null; chunk = await io.readChunk()) io.out(io.tty ? chunk.toString('utf8') : chunk);
      return 0;
    }
    case 'exit': {
      if (args.length === 0) throw new ShellExit(0);
      const n = Number(args[0]);
      if (!/^\d+$/.test(args[0]!)) {
        io.err(`sh: exit: Illegal number: ${args[0]}\n`);
        throw new ShellExit(2);
      }
      throw new ShellExit(n % 256);
    }
    default:
      if (shells.has(name)) return shell(args, io);
      io.err(`sh: ${cmd}: not found\n`);
      return 127;
  }
}

async function shell(args: string[], io: ProcessIo): Promise<number> {
  try {
    if (args[0] === '-c') {
      if (args.length < 2) {
        io.err('sh: -c requires an argument\n');
        return 2;
      }
      return await runScript(args[1]!, io, 0);
    }
    return await interactiveShell(io);
  } catch (e) {
    // `exit` ends this shell, not the one that started it.
    if (e instanceof ShellExit) return e.code;
    throw e;
  }
}

async function runScript(script: string, io: ProcessIo, last: number): Promise<number> {
  let commands: string[][];
  try {
    commands = parseScript(script);
  } catch (e) {
    if (!(e instanceof ShellSyntaxError)) throw e;
    io.err(`sh: syntax error: ${e.message}\n`);
    return 2;
  }
  let code = last;
  for (const argv of commands) code = await runCommand(argv, io);
  return code;
}

async function interactiveShell(io: ProcessIo): Promise<number> {
  let last = 0;
  for (;;) {
    if (io.tty) io.out('$ ');
    const line = await io.readLine();
    if (line === null) {
      if (io.tty) io.out('exit\n');
      return last;
    }
    if (line.trim() === '') continue;
    last = await runScript(line, io, last);
  }
}
