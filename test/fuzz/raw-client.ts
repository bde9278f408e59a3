// A raw HTTPS client for the fuzz suite: sends a request byte for byte (any method, any target, any
// header) and can abort it at a chosen point — before the head is complete, in the middle of the body,
// at the first response bytes, or a while into a watch.
import { connect } from 'node:tls';

export type AbortPoint = 'none' | 'before-headers' | 'mid-body' | 'mid-response' | 'mid-watch';

export interface RawRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body?: Buffer;
  abort: AbortPoint;
  /** For mid-watch: how long to keep the response open. */
  abortAfterMs?: number;
}

export interface RawResult {
  /** 0 when no status line was read (aborted, or the connection was closed first). */
  status: number;
  head: string;
  bytes: number;
}

export function sendRaw(origin: string, ca: string, request: RawRequest, timeoutMs = 1500): Promise<RawResult> {
  const url = new URL(origin);
  return new Promise((resolve) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    let received = Buffer.alloc(0);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = received.toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, head: text.split('\r\n\r\n', 1)[0] ?? '', bytes: received.length });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', (chunk: Buffer) => {
      if (received.length < 64 * 1024) received = Buffer.concat([received, chunk]);
      if (request.abort === 'mid-response') done();
      if (request.abort === 'mid-watch') setTimeout(done, request.abortAfterMs ?? 50).unref();
    });
    socket.once('secureConnect', () => {
      const body = request.body ?? Buffer.alloc(0);
      const head = `${request.method} ${request.target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n${request.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}`;
      if (request.abort === 'before-headers') {
        socket.write(head.slice(0, Math.max(1, Math.floor(head.length / 2))));
        setTimeout(done, 20);
        return;
      }
      if (request.abort === 'mid-body') {
        // Announce more than is sent, send half, then go away.
        const length = Math.max(2, body.length * 2);
        socket.write(`${head}Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`);
        socket.write(body.subarray(0, Math.floor(body.length / 2)));
        setTimeout(done, 30);
        return;
      }
      socket.write(
        `${head}${body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(request.method) ? `Content-Length: ${body.length}\r\n` : ''}\r\n`,
      );
      if (body.length > 0) socket.write(body);
    });
  });
}
