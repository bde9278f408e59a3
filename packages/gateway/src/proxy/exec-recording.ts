// The recording of one exec/attach WebSocket session, written as the session runs: both directions are
// read as whole messages (fragmented messages reassembled, text and binary frames, base64 subprotocols
// decoded), batched and appended to the audit session every `flushBytes` or `flushMs`, so a gateway
// killed mid-session leaves the frames recorded so far. Fail closed: a subprotocol that cannot be
// recorded, a stream that cannot be read as frames, or a failed write calls `onFailure`, and the caller
// ends the session.
import type { AuditRecorder } from '../audit/recorder.js';
import type { ExecFrame } from '../audit/types.js';
import { channelCodecOf, decodeChannelMessage, isRecordableProtocol } from './exec-channel.js';
import { createMessageReader } from './websocket-frames.js';

const channelNames: readonly ExecFrame['stream'][] = ['stdin', 'stdout', 'stderr', 'error', 'resize'];

export interface ExecRecordingOptions {
  recorder: Pick<AuditRecorder, 'appendFrames'>;
  eventId: string;
  /** The Sec-WebSocket-Protocol the upstream negotiated ('' when none). */
  protocol: string;
  clock: () => number;
  /** exec.maxRecordBytes: past it a marker frame is recorded and the rest is not. */
  maxRecordBytes: number;
  /** Called once when the session can no longer be recorded: end the session (both sides). */
  onFailure: (reason: string) => void;
  /** A batch is written when it holds this many bytes (default 64 KiB) … */
  flushBytes?: number;
  /** … or this long after its first frame (default 250 ms). */
  flushMs?: number;
}

export interface ExecRecording {
  fromClient(chunk: Buffer): void;
  fromUpstream(chunk: Buffer): void;
  /** Writes what is pending; no more frames are taken. */
  close(): void;
  /** Why recording failed, if it did. */
  readonly failure: string | undefined;
}

/** UTF-8 text when the bytes are valid UTF-8, otherwise base64: nothing is lost to replacement characters. */
function frameData(data: Buffer): Pick<ExecFrame, 'data' | 'base64'> {
  const text = data.toString('utf8');
  return Buffer.byteLength(text) === data.length && !text.includes('\ufffd')
    ? { data: text }
    : { data: data.toString('base64'), base64: true };
}

export function startExecRecording(options: ExecRecordingOptions): ExecRecording {
  const { recorder, eventId, clock, maxRecordBytes } = options;
  const flushBytes = options.flushBytes ?? 64 * 1024;
  const flushMs = options.flushMs ?? 250;
  const codec = channelCodecOf(options.protocol);
  let pending: ExecFrame[] = [];
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let recordedBytes = 0;
  let truncated = false;
  let closed = false;
  let failure: string | undefined;

  function fail(reason: string): void {
    if (failure !== undefined) return;
    failure = reason;
    closed = true;
    if (timer !== undefined) clearTimeout(timer);
    options.onFailure(reason);
  }

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    recorder.appendFrames(eventId, batch, (error) => {
      if (error !== undefined)
        fail(
          `the exec recording could not be written to the audit store (${error instanceof Error ? error.message : String(error)})`,
        );
    });
  }

  function add(frame: ExecFrame, bytes: number): void {
    pending.push(frame);
    pendingBytes += bytes;
    if (pendingBytes >= flushBytes) flush();
    else timer ??= setTimeout(flush, flushMs).unref();
  }

  const observe = (direction: 'in' | 'out') =>
    createMessageReader(
      (message) => {
        if (closed || truncated) return;
        const decoded = decodeChannelMessage(codec, message.opcode, message.payload);
        if (decoded === undefined) return;
        const stream = channelNames[decoded.channel];
        // Channel 255 (v5 close) and unknown channels carry no session content.
        if (stream === undefined) return;
        if (decoded.data.length === 0 && direction === 'in') return;
        recordedBytes += decoded.data.length;
        if (recordedBytes > maxRecordBytes || message.length > message.payload.length) {
          truncated = true;
          add(
            {
              at: clock(),
              stream: 'error',
              data: `[hoopgate: recording stopped at ${maxRecordBytes} bytes (exec.maxRecordBytes)]`,
            },
            0,
          );
          return;
        }
        add({ at: clock(), stream, ...frameData(decoded.data) }, decoded.data.length);
      },
      // A message larger than the whole recording budget is past the budget anyway.
      maxRecordBytes + 8,
      () =>
        fail(
          `the ${direction === 'in' ? 'client' : 'upstream'} stream is not readable as WebSocket frames, so it cannot be recorded`,
        ),
    );
  const fromClient = observe('in');
  const fromUpstream = observe('out');

  if (!isRecordableProtocol(options.protocol)) {
    fail(
      `the API server chose the subprotocol "${options.protocol.trim().slice(0, 64)}", which hoopgate cannot record; use v5.channel.k8s.io, v4.channel.k8s.io or v4.base64.channel.k8s.io`,
    );
  }

  return {
    fromClient: (chunk) => (closed ? undefined : fromClient.push(chunk)),
    fromUpstream: (chunk) => (closed ? undefined : fromUpstream.push(chunk)),
    close() {
      if (closed) return;
      flush();
      closed = true;
    },
    get failure() {
      return failure;
    },
  };
}
