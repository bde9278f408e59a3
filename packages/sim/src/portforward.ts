// Port-forward for the simulated API server, over the two WebSocket shapes a real 1.33 cluster accepts:
// kubectl ≥1.31's SPDY/3.1 session tunnelled in WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`),
// and the kubelet's channel protocol (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io` or none; framing in
// channel-codec.ts). Every pod port is an in-process echo service.
import { PassThrough, type Duplex } from 'node:stream';
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import WebSocket from 'ws';
import { decodeChannelMessage, encodeChannelMessage, type ChannelCodec } from './channel-codec.js';
import { badRequest } from './status.js';

/** The tunnelled-SPDY subprotocol kubectl ≥1.31 offers (client-go tools/portforward, KEP-4006). */
export const portForwardTunnelProtocol = 'SPDY/3.1+portforward.k8s.io';
/** Opens a connection to a port of a pod. The sim's default is an echo service on every port. */
export type PodPortDialer = (pod: { namespace: string; name: string }, port: number) => Duplex;

/** Every byte written comes back; ending the write side ends the read side, like an echo server closing after EOF. */
export const dialEcho: PodPortDialer = () => new PassThrough();

/** The `ports` query parameter (repeated or comma-separated), as the kubelet reads it for the channel protocol. */
export function parsePorts(query: URLSearchParams): number[] {
  const raw = query
    .getAll('ports')
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (raw.length === 0)
    throw badRequest('query parameter "ports" is required: list the pod ports to forward, for example ports=8080');
  return raw.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535)
      throw badRequest(`invalid port ${JSON.stringify(p)}: must be an integer between 1 and 65535`);
    return n;
  });
}

interface Session {
  /** Called once when the WebSocket is gone and every pod connection is closed. */
  onClose: () => void;
}

/**
 * Channel protocol: port i owns data channel 2i and error channel 2i+1. The server's first message on each
 * carries the port as 2 bytes little-endian; the client's data messages carry no prefix.
 */
export function servePortForwardChannels(
  ws: WebSocket,
  codec: ChannelCodec,
  pod: { namespace: string; name: string },
  ports: number[],
  dial: PodPortDialer,
  session: Session,
): void {
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const { payload, binary } = encodeChannelMessage(codec, channel, data);
    ws.send(payload, { binary });
  };
  const conns = ports.map((port, i) => {
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16LE(port);
    send(2 * i, prefix);
    send(2 * i + 1, prefix);
    const conn = dial(pod, port);
    conn.on('data', (d: Buffer) => send(2 * i, d));
    conn.on('error', (e: Error) =>
      send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${pod.name}: ${e.message}`)),
    );
    return conn;
  });
  ws.on('message', (message: Buffer) => {
    const m = decodeChannelMessage(codec, message);
    // Only data channels are writable by the client; error channels are server-to-client.
    if (!m || m.channel % 2 !== 0) return;
    conns[m.channel / 2]?.write(m.data);
  });
  ws.on('close', () => {
    for (const c of conns) c.destroy();
    session.onClose();
  });
}

// ---- SPDY/3.1 (draft-mbelshe-httpbis-spdy-00), the subset moby/spdystream speaks for port-forward ----

const controlBit = 0x80;
const spdyVersion = 3;
const frame = {
  synStream: 1,
  synReply: 2,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goAway: 7,
  headers: 8,
  windowUpdate: 9,
} as const;
const flagFin = 0x01;
const maxDataFrame = 32 * 1024;

/**
 * The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): length-prefixed
 * header names and values, then a run of common status lines, dates and media types. 1423 bytes.
 */
export const spdyDictionary: Buffer = (() => {
  const words = [
    'options',
    'head',
    'post',
    'put',
    'delete',
    'trace',
    'accept',
    'accept-charset',
    'accept-encoding',
    'accept-language',
    'accept-ranges',
    'age',
    'allow',
    'authorization',
    'cache-control',
    'connection',
    'content-base',
    'content-encoding',
    'content-language',
    'content-length',
    'content-location',
    'content-md5',
    'content-range',
    'content-type',
    'date',
    'etag',
    'expect',
    'expires',
    'from',
    'host',
    'if-match',
    'if-modified-since',
    'if-none-match',
    'if-range',
    'if-unmodified-since',
    'last-modified',
    'location',
    'max-forwards',
    'pragma',
    'proxy-authenticate',
    'proxy-authorization',
    'range',
    'referer',
    'retry-after',
    'server',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
    'user-agent',
    'vary',
    'via',
    'warning',
    'www-authenticate',
    'method',
    'get',
    'status',
    '200 OK',
    'version',
    'HTTP/1.1',
    'url',
    'public',
    'set-cookie',
    'keep-alive',
    'origin',
  ];
  const tail =
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
    '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden' +
    '404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
    'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
    'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,' +
    'publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  const parts: Buffer[] = [];
  for (const w of words) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(tail, 'latin1'));
  return Buffer.concat(parts);
})();

/**
 * The peer's header blocks form one zlib stream per direction, sync-flushed after each block. Inflating
 * everything received so far and keeping the new tail stays synchronous; header blocks are a few dozen
 * bytes per forwarded connection, so the repeated work is negligible for a simulator.
 */
function createHeaderInflater(): (block: Buffer) => Buffer {
  let compressed = Buffer.alloc(0);
  let consumed = 0;
  return (block) => {
    compressed = Buffer.concat([compressed, block]);
    const all = inflateSync(compressed, { dictionary: spdyDictionary, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const fresh = all.subarray(consumed);
    consumed = all.length;
    return fresh;
  };
}

/**
 * Our header blocks: a zlib stream of stored (uncompressed) deflate blocks, valid zlib that needs no
 * dictionary (no FDICT flag). Each ends with the empty stored block a sync flush writes: Go's flate reader
 * hands out a block's bytes only when it reaches that marker, and spdystream reads exactly one frame.
 */
function createHeaderDeflater(): (raw: Buffer) => Buffer {
  let started = false;
  return (raw) => {
    const head = Buffer.from([0x00, raw.length & 0xff, raw.length >> 8, ~raw.length & 0xff, (~raw.length >> 8) & 0xff]);
    const out = Buffer.concat([
      started ? Buffer.alloc(0) : Buffer.from([0x78, 0x01]),
      head,
      raw,
      Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]),
    ]);
    started = true;
    return out;
  };
}

function encodeHeaderBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const entries = Object.entries(headers);
  parts.push(u32(entries.length));
  for (const [k, v] of entries)
    parts.push(u32(Buffer.byteLength(k)), Buffer.from(k), u32(Buffer.byteLength(v)), Buffer.from(v));
  return Buffer.concat(parts);
}

/** Header names arrive lower-cased; multiple values are NUL-separated and the first is kept. */
export function decodeHeaderBlock(raw: Buffer): Record<string, string> {
  const headers: Record<string, string> = {};
  let off = 0;
  const need = (n: number) => {
    if (off + n > raw.length) throw new Error('truncated spdy header block');
  };
  need(4);
  const count = raw.readUInt32BE(off);
  off += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const kl = raw.readUInt32BE(off);
    off += 4;
    need(kl);
    const k = raw
      .subarray(off, off + kl)
      .toString('utf8')
      .toLowerCase();
    off += kl;
    need(4);
    const vl = raw.readUInt32BE(off);
    off += 4;
    need(vl);
    headers[k] =
      raw
        .subarray(off, off + vl)
        .toString('utf8')
        .split('\0')[0] ?? '';
    off += vl;
  }
  return headers;
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE((controlBit << 8) | spdyVersion, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(payload.length, 4);
  head[4] = flags;
  return Buffer.concat([head, payload]);
}

function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(data.length, 4);
  head[4] = flags;
  return Buffer.concat([head, data]);
}

interface TunnelStream {
  id: number;
  type: string;
  port: number;
  requestId: string;
  conn?: Duplex;
  /** We sent FIN. */
  finished: boolean;
}

/** A SYN_STREAM's stream: its id and the port-forward headers (streamType, port, requestID). */
function tunnelStreamOf(payload: Buffer, inflate: ReturnType<typeof createHeaderInflater>): TunnelStream {
  const headers = decodeHeaderBlock(inflate(payload.subarray(10)));
  return {
    id: payload.readUInt32BE(0) & 0x7fffffff,
    type: headers['streamtype'] ?? '',
    port: Number(headers['port'] ?? NaN),
    requestId: headers['requestid'] ?? '',
    finished: false,
  };
}

/**
 * A SPDY server session in the tunnel: every client stream gets a SYN_REPLY; a `data` stream is relayed to
 * the pod port; when the port's side ends, the data stream and its `error` stream (same requestID) are
 * FIN-ed, which is how kubectl learns a forwarded connection is over. PINGs are answered, flow control is not
 * enforced (spdystream does not send WINDOW_UPDATE for these volumes).
 */
export function servePortForwardTunnel(
  ws: WebSocket,
  pod: { namespace: string; name: string },
  dial: PodPortDialer,
  session: Session,
): void {
  const inflate = createHeaderInflater();
  const deflate = createHeaderDeflater();
  const streams = new Map<number, TunnelStream>();
  let pending: Buffer = Buffer.alloc(0);
  let closed = false;

  const send = (b: Buffer) => {
    if (!closed && ws.readyState === WebSocket.OPEN) ws.send(b);
  };
  const fin = (s: TunnelStream) => {
    if (s.finished) return;
    s.finished = true;
    send(dataFrame(s.id, flagFin, Buffer.alloc(0)));
  };
  const errorStreamOf = (requestId: string) =>
    [...streams.values()].find((s) => s.type === 'error' && s.requestId === requestId);
  const finish = (s: TunnelStream, error?: string) => {
    const errStream = errorStreamOf(s.requestId);
    if (error && errStream && !errStream.finished) send(dataFrame(errStream.id, 0, Buffer.from(error)));
    fin(s);
    if (errStream) fin(errStream);
    streams.delete(s.id);
    if (errStream) streams.delete(errStream.id);
  };

  const startData = (s: TunnelStream) => {
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      finish(s, `invalid port ${JSON.stringify(String(s.port))}`);
      return;
    }
    const conn = dial(pod, s.port);
    s.conn = conn;
    conn.on('data', (d: Buffer) => {
      for (let off = 0; off < d.length; off += maxDataFrame)
        send(dataFrame(s.id, 0, d.subarray(off, off + maxDataFrame)));
    });
    conn.on('end', () => finish(s));
    conn.on('error', (e: Error) => finish(s, `error forwarding port ${s.port} to pod ${pod.name}: ${e.message}`));
  };

  const onControl = (type: number, flags: number, payload: Buffer) => {
    switch (type) {
      case frame.synStream: {
        const s = tunnelStreamOf(payload, inflate);
        const id = s.id;
        streams.set(id, s);
        const reply = Buffer.concat([Buffer.alloc(4), deflate(encodeHeaderBlock({}))]);
        reply.writeUInt32BE(id, 0);
        send(controlFrame(frame.synReply, 0, reply));
        if (s.type === 'data') {
          startData(s);
          if (flags & flagFin) s.conn?.end();
        } else if (s.type !== 'error') {
          finish(s, `unexpected stream type ${JSON.stringify(s.type)}`);
        }
        return;
      }
      case frame.rstStream: {
        const s = streams.get(payload.readUInt32BE(0) & 0x7fffffff);
        if (!s) return;
        s.finished = true;
        s.conn?.destroy();
        streams.delete(s.id);
        return;
      }
      case frame.ping:
        send(controlFrame(frame.ping, 0, payload));
        return;
      case frame.goAway:
        ws.close(1000);
        return;
      default:
        // SETTINGS, HEADERS, WINDOW_UPDATE and unknown types carry nothing the echo service needs.
        return;
    }
  };

  const onData = (streamId: number, flags: number, data: Buffer) => {
    const s = streams.get(streamId);
    if (!s) return;
    if (s.conn && data.length > 0) s.conn.write(data);
    if (flags & flagFin) s.conn?.end();
  };

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(1002, 'tunnelled spdy must be sent in binary messages');
      return;
    }
    pending = pending.length ? Buffer.concat([pending, data]) : data;
    try {
      while (pending.length >= 8) {
        const length = pending.readUInt32BE(4) & 0xffffff;
        if (pending.length < 8 + length) break;
        const flags = pending[4]!;
        const payload = pending.subarray(8, 8 + length);
        if (pending[0]! & controlBit) onControl(pending.readUInt16BE(2), flags, payload);
        else onData(pending.readUInt32BE(0) & 0x7fffffff, flags, payload);
        pending = pending.subarray(8 + length);
      }
    } catch (e) {
      ws.close(1002, `malformed spdy frame: ${(e as Error).message}`.slice(0, 120));
    }
  });
  ws.on('close', () => {
    closed = true;
    for (const s of streams.values()) s.conn?.destroy();
    streams.clear();
    session.onClose();
  });
}
