// One exec or attach session over a remotecommand channel protocol: its options from the query,
// stdin (raw bytes, or a terminal's canonical line discipline), the process's exit Status on the
// error channel.

import WebSocket from 'ws';
import { decodeChannelMessage, encodeChannelMessage, type ChannelProtocol } from './channel-codec.js';
import { runProcess, type ProcessIo } from './exec-shell.js';
import { queryBool } from './query.js';
import type { Obj } from './resources.js';
import { badRequest } from './status.js';

/** Channel numbers of the remotecommand protocol; 255 (v5) carries "the client closed channel N". */
export const channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

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

export function processOptions(query: URLSearchParams, pod: Obj, podName: string, isExec: boolean): ProcessOptions {
  const containers: string[] = ((pod['spec']?.['containers'] ?? []) as Obj[]).map((c) => String(c['name']));
  const all = [
    ...containers,
    ...((pod['spec']?.['initContainers'] ?? []) as Obj[]).map((c) => String(c['name'])),
    ...((pod['spec']?.['ephemeralContainers'] ?? []) as Obj[]).map((c) => String(c['name'])),
  ];
  let container = query.get('container') ?? '';
  if (container === '') {
    if (containers.length !== 1)
      throw badRequest(
        `a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]`,
      );
    container = containers[0]!;
  } else if (!all.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${podName}`);
  }
  const tty = queryBool(query, 'tty');
  const opts: ProcessOptions = {
    command: isExec ? query.getAll('command') : null,
    stdin: queryBool(query, 'stdin'),
    stdout: queryBool(query, 'stdout'),
    // A terminal has one output stream: the kubelet drops stderr when tty is set.
    stderr: queryBool(query, 'stderr') && !tty,
    tty,
    pod: podName,
    container,
  };
  if (!opts.stdin && !opts.stdout && !opts.stderr)
    throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
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
    metadata: {},
    status: 'Failure',
    message: exitMessage(code, command),
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

export function serveProcess(ws: WebSocket, protocol: ChannelProtocol, opts: ProcessOptions, done: () => void): void {
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
    tty: opts.tty,
    hostname: opts.pod,
    out,
    err: (text) => {
      if (opts.tty) out(text);
      else if (opts.stderr) write(channel.stderr, text);
    },
    readLine: () => stdin.readLine(),
    readChunk: () => stdin.readChunk(),
    sleep: (ms) =>
      new Promise<void>((resolve) => {
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
  runProcess(opts.command, io).then(
    (code) => {
      if (closed) return;
      // Pre-v4 protocols report only a failure, as its message text (the kubelet's v1WriteStatusFunc).
      if (protocol.status === 'v4') write(channel.error, exitStatus(code, opts.command));
      else if (code !== 0) write(channel.error, exitMessage(code, opts.command));
      ws.close(1000);
    },
    (e: unknown) => {
      if (closed) return;
      const message = `error executing command in container: ${(e as Error).message}`;
      write(
        channel.error,
        protocol.status === 'v4'
          ? JSON.stringify({ metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 })
          : message,
      );
      ws.close(1000);
    },
  );
}

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
