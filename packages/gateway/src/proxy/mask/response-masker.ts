// Decides, per upstream response, whether its body passes, is masked on the fly, or is refused, and
// builds the masking stream (gzip decoded here; the masked body is re-emitted UNCOMPRESSED, so the
// caller drops Content-Encoding and Content-Length). Fails closed on anything it cannot read.
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, gunzipSync, type Gunzip } from 'node:zlib';
import type { MaskingConfig } from '../../config/types.js';
import { HoopError } from '../../lib/errors.js';
import { mediaParam, openApiProtobufTypes, parseMediaType } from './accept.js';
import { JsonMaskScanner } from './json-stream.js';
import { createObjectMasker, type MaskHint, type MaskResult, type ObjectMasker } from './mask-object.js';

export interface ResponseMeta {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  isWatch: boolean;
  /** The request's resource (`secrets`, `pods/log`): the kind of objects listed without one. */
  resource?: string;
  status: number;
}

export type ResponsePlan =
  | { kind: 'passthrough' }
  /**
   * `stream` emits the masked body uncompressed, with `contentType`; `whole` masks a body read whole
   * instead (a small answer, pipeline/respond.ts), throwing ERR_UNMASKABLE where the stream would
   * fail. Use one or the other: they share the scanner.
   */
  | { kind: 'mask'; stream: Transform; whole(body: Buffer): Buffer; contentType: string; maskedObjects: () => number }
  | { kind: 'refuse'; error: HoopError };

export interface ResponseMasker {
  transform(meta: ResponseMeta): ResponsePlan;
  maskObject(value: unknown, hint?: MaskHint): MaskResult;
}

export const DEFAULT_MAX_OBJECT_BYTES = 8 * 1024 * 1024;

function isJsonType(essence: string): boolean {
  return essence === 'application/json' || essence.endsWith('+json');
}

/** undefined/identity → 'identity'; gzip (x-gzip) → 'gzip'; anything else → undefined (unreadable). */
function readableEncoding(value: string | undefined): 'identity' | 'gzip' | undefined {
  const codings = (value ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'identity';
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip';
  return undefined;
}

function unmaskable(error: unknown): HoopError {
  if (error instanceof HoopError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new HoopError(
    'ERR_UNMASKABLE',
    `the upstream response could not be masked (${message}); the response was cut`,
    { cause: error },
  );
}

/** A Transform around the scanner; with gzip, an inner gunzip feeds it and follows its backpressure. */
class MaskingTransform extends Transform {
  readonly #scanner: JsonMaskScanner;
  readonly #gunzip: Gunzip | undefined;

  constructor(scanner: JsonMaskScanner, gzip: boolean) {
    super();
    this.#scanner = scanner;
    if (!gzip) return;
    const gunzip = createGunzip();
    this.#gunzip = gunzip;
    gunzip.on('data', (chunk: Buffer) => {
      if (this.destroyed) return;
      try {
        const out = this.#scanner.write(chunk);
        if (out !== undefined && !this.push(out)) gunzip.pause();
      } catch (error) {
        this.destroy(unmaskable(error));
      }
    });
    gunzip.on('error', (error) => {
      this.destroy(
        new HoopError(
          'ERR_UNMASKABLE',
          `the gzip-encoded upstream response cannot be decoded (${error.message}); the response was cut`,
          { cause: error },
        ),
      );
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const gunzip = this.#gunzip;
    if (gunzip !== undefined) {
      if (gunzip.write(chunk)) callback();
      else gunzip.once('drain', () => callback());
      return;
    }
    try {
      const out = this.#scanner.write(chunk);
      callback(null, out);
    } catch (error) {
      callback(unmaskable(error));
    }
  }

  override _flush(callback: TransformCallback): void {
    const finish = (): void => {
      try {
        callback(null, this.#scanner.end());
      } catch (error) {
        callback(unmaskable(error));
      }
    };
    const gunzip = this.#gunzip;
    if (gunzip === undefined) return finish();
    gunzip.once('end', finish);
    gunzip.end();
  }

  override _read(size: number): void {
    this.#gunzip?.resume();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#gunzip?.destroy();
    callback(error);
  }
}

/** A gzip body masked whole inflates to at most this (a bomb is refused, not held in memory). */
const WHOLE_INFLATED_BYTES = 64 * 1024 * 1024;

/** What `whole` needs besides the body: the scanner (lists, errors), and what a single object is masked with. */
interface WholeMasking {
  scan: () => JsonMaskScanner;
  masker: ObjectMasker;
  hint: MaskHint;
  /** A document (not a watch's sequence) no larger than the masking limit: a single object may skip the scanner. */
  parseOnce: (plain: Buffer) => boolean;
  counted: () => void;
}

/**
 * A single object (not a list or Table the scanner streams item by item), parsed once and masked as the
 * scanner would mask it (maskObject of the whole document); the original bytes when nothing is masked.
 * undefined when it is anything else, malformed included: the scanner then answers, with its own error.
 */
function maskSingleObject(plain: Buffer, w: WholeMasking): Buffer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(plain.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { kind, apiVersion, items, rows } = value as Record<string, unknown>;
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(items)) return undefined;
  if (
    kind === 'Table' &&
    Array.isArray(rows) &&
    (typeof apiVersion !== 'string' || apiVersion.startsWith('meta.k8s.io/'))
  )
    return undefined;
  const masked = w.masker.maskObject(value, w.hint);
  if (masked.masked === 0) return plain;
  w.counted();
  return Buffer.from(JSON.stringify(masked.value), 'utf8');
}

/** A whole body masked in one call: the bytes the stream would emit (same JSON), or its ERR_UNMASKABLE. */
function maskWhole(body: Buffer, gzip: boolean, w: WholeMasking): Buffer {
  let plain: Buffer;
  try {
    plain = gzip ? gunzipSync(body, { maxOutputLength: WHOLE_INFLATED_BYTES }) : body;
  } catch (error) {
    throw new HoopError(
      'ERR_UNMASKABLE',
      `the gzip-encoded upstream response cannot be decoded (${(error as Error).message}); the response was cut`,
      { cause: error },
    );
  }
  try {
    const single = w.parseOnce(plain) ? maskSingleObject(plain, w) : undefined;
    if (single !== undefined) return single;
    const scanner = w.scan();
    const head = scanner.write(plain);
    const tail = scanner.end();
    if (tail === undefined || tail.length === 0) return head ?? Buffer.alloc(0);
    return head === undefined || head.length === 0 ? tail : Buffer.concat([head, tail]);
  } catch (error) {
    throw unmaskable(error);
  }
}

export function createResponseMasker(config: MaskingConfig): ResponseMasker {
  const masker = createObjectMasker(config);
  const maxObjectBytes = config.maxObjectBytes > 0 ? config.maxObjectBytes : DEFAULT_MAX_OBJECT_BYTES;

  function refuse(message: string): ResponsePlan {
    return { kind: 'refuse', error: new HoopError('ERR_UNMASKABLE', message) };
  }

  return {
    maskObject: (value, hint) => masker.maskObject(value, hint),

    transform(meta) {
      const success = meta.status >= 200 && meta.status < 300;
      if (meta.status === 204 || meta.status === 304 || meta.status < 200) return { kind: 'passthrough' };
      const type = parseMediaType(meta.contentType);
      // The API server never encodes an object as text/plain: that is logs, health checks, 404 pages.
      // The OpenAPI v2 protobuf document describes types and holds no objects.
      if (type !== undefined && (type.essence === 'text/plain' || openApiProtobufTypes.has(type.essence)))
        return { kind: 'passthrough' };
      if (type === undefined || !isJsonType(type.essence)) {
        // Error bodies carry a Status (or the HTTP layer's text), never an object.
        if (!success) return { kind: 'passthrough' };
        const shown = meta.contentType === undefined ? 'none' : `"${meta.contentType}"`;
        return refuse(
          `the upstream response has content type ${shown}, which hoopgate cannot mask, so it is not passed through; ask for application/json`,
        );
      }
      const encoding = readableEncoding(meta.contentEncoding);
      if (encoding === undefined) {
        if (!success) return { kind: 'passthrough' };
        return refuse(
          `the upstream response has content-encoding "${meta.contentEncoding}", which hoopgate cannot decode to mask it, so it is not passed through; ask for gzip or identity`,
        );
      }
      const watch = meta.isWatch || mediaParam(type, 'stream') === 'watch';
      const hint: MaskHint = meta.resource === undefined ? {} : { resource: meta.resource };
      // Built on first use: a single object masked whole needs neither the scanner nor a Transform (or its gunzip).
      let scanner: JsonMaskScanner | undefined;
      const scan = () =>
        (scanner ??= new JsonMaskScanner({ masker, maxObjectBytes, mode: watch ? 'sequence' : 'document', hint }));
      const gzip = encoding === 'gzip';
      let stream: Transform | undefined;
      let wholeMasked = 0;
      const whole: WholeMasking = {
        scan,
        masker,
        hint,
        parseOnce: (plain) => !watch && plain.length <= maxObjectBytes,
        counted: () => (wholeMasked += 1),
      };
      return {
        kind: 'mask',
        get stream() {
          return (stream ??= new MaskingTransform(scan(), gzip));
        },
        whole: (body) => maskWhole(body, gzip, whole),
        contentType: meta.contentType ?? 'application/json',
        maskedObjects: () => (scanner?.maskedObjects ?? 0) + wholeMasked,
      };
    },
  };
}
