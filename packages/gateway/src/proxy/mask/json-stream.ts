// A streaming JSON scanner that masks as it goes, holding at most one object in memory: a list's
// envelope is forwarded, each `items[]` element (Table: `rows[]`) is masked and forwarded on its own;
// a watch stream's events are masked one by one. Bytes are scanned, never decoded, between values,
// so a chunk split inside a string or a multi-byte UTF-8 character is harmless.
import { HoopError } from '../../lib/errors.js';
import type { MaskHint, ObjectMasker } from './mask-object.js';
import { envelopeHead, wholeObject } from './json-envelope.js';
import { maskSecretBytes } from './secret-fast-path.js';
import {
  ARR_AFTER,
  ARR_ELEM,
  ARR_FIRST,
  BACKSLASH,
  CAP_ELEMENT,
  CAP_EVENT,
  CAP_FIELD,
  CAP_KEY,
  CAP_WHOLE,
  CAPTURE,
  COMMA,
  DOC_START,
  isScalarByte,
  isSpace,
  NEWLINE,
  OBJ_AFTER,
  OBJ_COLON,
  OBJ_FIRST,
  OBJ_KEY,
  OBJ_VALUE,
  QUOTE,
  SEQUENCE,
  TRAILING,
} from './json-scan-states.js';

export interface JsonMaskScannerOptions {
  masker: ObjectMasker;
  /** Largest single object, field or event held in memory (masking.maxObjectBytes). */
  maxObjectBytes: number;
  /** `document`: one JSON value (a response body); `sequence`: values one after another (watch). */
  mode: 'document' | 'sequence';
  hint?: MaskHint;
}

function unmaskable(message: string, cause?: unknown, operatorDetail?: string): HoopError {
  return new HoopError('ERR_UNMASKABLE', message, { cause, operatorDetail });
}

export class JsonMaskScanner {
  readonly #masker: ObjectMasker;
  readonly #max: number;
  readonly #mode: 'document' | 'sequence';
  readonly #hint: MaskHint | undefined;

  #phase: number;
  #offset = 0; // bytes seen before the current chunk, for error messages
  #out: Buffer[] = [];

  // The value being captured.
  #capTarget = CAP_WHOLE;
  #capParts: Buffer[] = [];
  #capLength = 0;
  #capStart = 0;
  #capDepth = 0;
  #capInString = false;
  #capEscape = false;
  #capScalar = false;
  // Per-chunk positions of the next quote / backslash (-2: not searched yet, -1: none left).
  #nextQuote = -2;
  #nextBackslash = -2;

  // The top-level object of a document.
  #key = '';
  #fields = new Map<string, Buffer>();
  #fieldBytes = 0;
  #streaming = false;
  #streamKey = '';
  #streamKind = '';
  #elements = 0;

  constructor(options: JsonMaskScannerOptions) {
    this.#masker = options.masker;
    this.#max = options.maxObjectBytes;
    this.#mode = options.mode;
    this.#hint = options.hint;
    this.#phase = options.mode === 'sequence' ? SEQUENCE : DOC_START;
  }

  /** Feeds one chunk; returns what can be forwarded now. Throws ERR_UNMASKABLE on bad input. */
  write(chunk: Buffer): Buffer | undefined {
    this.#out = [];
    this.#nextQuote = -2;
    this.#nextBackslash = -2;
    const length = chunk.length;
    let i = 0;
    while (i < length) {
      if (this.#phase === CAPTURE) {
        const end = this.#scanCapture(chunk, i);
        if (end < 0) break;
        i = end;
        this.#completeCapture(this.#takeCapture(chunk, end));
        continue;
      }
      const c = chunk[i]!;
      if (isSpace(c)) {
        i++;
        continue;
      }
      this.#step(c, i);
      i++;
    }
    if (this.#phase === CAPTURE) this.#keepCapture(chunk);
    this.#offset += length;
    return this.#flushOut();
  }

  /** The input ended: completes a trailing scalar, then checks that nothing is left open. */
  end(): Buffer | undefined {
    this.#out = [];
    if (this.#phase === CAPTURE && this.#capScalar) {
      const raw = this.#capParts.length === 1 ? this.#capParts[0]! : Buffer.concat(this.#capParts);
      this.#capParts = [];
      this.#completeCapture(raw);
    }
    const complete =
      this.#mode === 'sequence' ? this.#phase === SEQUENCE : this.#phase === TRAILING || this.#phase === DOC_START;
    if (!complete)
      throw unmaskable(
        `the upstream response ended inside a json value after ${this.#offset} bytes: cannot mask it; the response was cut`,
      );
    return this.#flushOut();
  }

  #flushOut(): Buffer | undefined {
    const out = this.#out;
    this.#out = [];
    if (out.length === 0) return undefined;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  #malformed(at: number, what: string): HoopError {
    return unmaskable(
      `malformed json in the upstream response at byte ${this.#offset + at} (${what}): cannot mask it; the response was cut`,
    );
  }

  #tooLarge(): HoopError {
    const message = `an object in the upstream response is larger than the gateway's masking limit of ${this.#max} bytes, so it cannot be masked; ask for less (e.g. ?limit= or a label selector), or ask the gateway's operators`;
    return unmaskable(message, undefined, 'raise masking.maxObjectBytes to mask larger objects');
  }

  /** One structural byte outside a captured value. */
  #step(c: number, i: number): void {
    switch (this.#phase) {
      case DOC_START:
        if (c === 0x7b) this.#phase = OBJ_FIRST;
        else this.#beginCapture(CAP_WHOLE, c, i);
        return;
      case OBJ_FIRST:
        if (c === 0x7d) return this.#closeObject();
        if (c === QUOTE) return this.#beginCapture(CAP_KEY, c, i);
        throw this.#malformed(i, 'expected a key');
      case OBJ_KEY:
        if (c === QUOTE) return this.#beginCapture(CAP_KEY, c, i);
        throw this.#malformed(i, 'expected a key');
      case OBJ_COLON:
        if (c === 0x3a) {
          this.#phase = OBJ_VALUE;
          return;
        }
        throw this.#malformed(i, 'expected ":"');
      case OBJ_VALUE:
        if (c === 0x5b && this.#canStream(this.#key)) return this.#openStream(this.#key);
        return this.#beginCapture(CAP_FIELD, c, i);
      case OBJ_AFTER:
        if (c === 0x2c) this.#phase = OBJ_KEY;
        else if (c === 0x7d) this.#closeObject();
        else throw this.#malformed(i, 'expected "," or "}"');
        return;
      case ARR_FIRST:
        if (c === 0x5d) return this.#closeStream();
        return this.#beginCapture(CAP_ELEMENT, c, i);
      case ARR_ELEM:
        return this.#beginCapture(CAP_ELEMENT, c, i);
      case ARR_AFTER:
        if (c === 0x2c) this.#phase = ARR_ELEM;
        else if (c === 0x5d) this.#closeStream();
        else throw this.#malformed(i, 'expected "," or "]"');
        return;
      case SEQUENCE:
        return this.#beginCapture(CAP_EVENT, c, i);
      case TRAILING:
        throw this.#malformed(i, 'data after the end of the document');
      default:
        throw this.#malformed(i, 'scanner state');
    }
  }

  #beginCapture(target: number, c: number, i: number): void {
    this.#capTarget = target;
    this.#capParts = [];
    this.#capLength = 0;
    this.#capStart = i;
    this.#capEscape = false;
    this.#capScalar = false;
    if (c === 0x7b || c === 0x5b) {
      this.#capDepth = 1;
      this.#capInString = false;
    } else if (c === QUOTE) {
      this.#capDepth = 0;
      this.#capInString = true;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e) {
      this.#capDepth = 0;
      this.#capInString = false;
      this.#capScalar = true;
    } else {
      throw this.#malformed(i, 'unexpected character');
    }
    // The main loop moves past this first byte and resumes in #scanCapture.
    this.#phase = CAPTURE;
  }

  /**
   * Scans the captured value from `from`; returns the index just past its end, or -1 when the
   * chunk ended first. Strings are skipped with indexOf, which keeps the scan near memcpy speed.
   */
  #scanCapture(chunk: Buffer, from: number): number {
    const length = chunk.length;
    let i = from;
    if (this.#capScalar) {
      for (; i < length; i++) {
        const c = chunk[i]!;
        if (isSpace(c) || c === 0x2c || c === 0x5d || c === 0x7d) return i;
        if (!isScalarByte(c)) throw this.#malformed(i, 'unexpected character');
      }
      return -1;
    }
    let depth = this.#capDepth;
    let inString = this.#capInString;
    let escape = this.#capEscape;
    let end = -1;
    while (i < length) {
      if (inString) {
        if (escape) {
          escape = false;
          i++;
          continue;
        }
        let q = this.#nextQuote;
        if (q !== -1 && q < i) q = this.#nextQuote = chunk.indexOf(QUOTE, i);
        let b = this.#nextBackslash;
        if (b !== -1 && b < i) b = this.#nextBackslash = chunk.indexOf(BACKSLASH, i);
        if (b !== -1 && (q === -1 || b < q)) {
          // An escape before the next quote: skip the backslash and the byte it escapes.
          if (b + 1 >= length) {
            escape = true;
            i = length;
          } else {
            i = b + 2;
          }
          continue;
        }
        if (q === -1) {
          i = length;
          continue;
        }
        inString = false;
        i = q + 1;
        if (depth === 0) {
          end = i;
          break;
        }
        continue;
      }
      const c = chunk[i]!;
      if (c === QUOTE) inString = true;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) {
          end = i + 1;
          break;
        }
      }
      i++;
    }
    this.#capDepth = depth;
    this.#capInString = inString;
    this.#capEscape = escape;
    if (end >= 0 && this.#capLength + (end - this.#capStart) > this.#max) throw this.#tooLarge();
    return end;
  }

  /** The captured value's bytes, ending at `end` in this chunk. */
  #takeCapture(chunk: Buffer, end: number): Buffer {
    const tail = chunk.subarray(this.#capStart, end);
    const raw = this.#capParts.length === 0 ? tail : Buffer.concat([...this.#capParts, tail]);
    this.#capParts = [];
    return raw;
  }

  /** The chunk ended inside the captured value: keep its part. */
  #keepCapture(chunk: Buffer): void {
    const part = chunk.subarray(this.#capStart);
    this.#capLength += part.length;
    if (this.#capLength > this.#max) throw this.#tooLarge();
    this.#capParts.push(part);
    this.#capStart = 0;
  }

  #parse(raw: Buffer): unknown {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw unmaskable(
        `malformed json in the upstream response near byte ${this.#offset}: ${(error as Error).message}; cannot mask it, the response was cut`,
        error,
      );
    }
  }

  /** Masks a captured value; the original bytes are kept when nothing was masked. */
  #encode(raw: Buffer, masked: { value: unknown; masked: number }): Buffer {
    if (masked.masked === 0) return raw;
    this.#maskedObjects += 1;
    return Buffer.from(JSON.stringify(masked.value), 'utf8');
  }

  #maskedObjects = 0;

  /** Objects (list items, events, documents) in which at least one value was masked so far. */
  get maskedObjects(): number {
    return this.#maskedObjects;
  }

  #completeCapture(raw: Buffer): void {
    switch (this.#capTarget) {
      case CAP_KEY: {
        const key = this.#parse(raw);
        this.#key = typeof key === 'string' ? key : '';
        this.#phase = OBJ_COLON;
        return;
      }
      case CAP_FIELD:
        this.#phase = OBJ_AFTER;
        if (this.#streaming) return this.#emitTailField(this.#key, raw);
        this.#fieldBytes += raw.length + this.#key.length;
        if (this.#fieldBytes > this.#max) throw this.#tooLarge();
        this.#fields.delete(this.#key); // a repeated key counts once, where it last appears
        this.#fields.set(this.#key, raw);
        return;
      case CAP_ELEMENT: {
        this.#phase = ARR_AFTER;
        if (this.#elements++ > 0) this.#out.push(COMMA);
        if (this.#streamKind === 'SecretList' && this.#masker.secretsOnlyBuiltIn) {
          const fast = maskSecretBytes(raw);
          if (fast !== undefined) {
            this.#maskedObjects += 1;
            this.#out.push(fast);
            return;
          }
        }
        const value = this.#parse(raw);
        const masked =
          this.#streamKey === 'rows'
            ? this.#masker.maskTableRow(value, this.#hint)
            : this.#masker.maskListItem(this.#streamKind, value, this.#hint);
        this.#out.push(this.#encode(raw, masked));
        return;
      }
      case CAP_WHOLE:
        this.#phase = TRAILING;
        this.#out.push(this.#encode(raw, this.#masker.maskObject(this.#parse(raw), this.#hint)));
        return;
      case CAP_EVENT:
        this.#phase = SEQUENCE;
        this.#out.push(this.#encode(raw, this.#masker.maskObject(this.#parse(raw), this.#hint)), NEWLINE);
        return;
      default:
        throw unmaskable('masking scanner reached an unknown state');
    }
  }

  #fieldString(key: string): string | undefined {
    const raw = this.#fields.get(key);
    if (raw === undefined) return undefined;
    const value = this.#parse(raw);
    return typeof value === 'string' ? value : undefined;
  }

  /**
   * Streams `items` of a `…List` / `List`, or `rows` of a Table, only when the envelope's kind came
   * first (as the API server writes it); otherwise the object is held whole, within the limit.
   */
  #canStream(key: string): boolean {
    if (this.#streaming) return key === this.#streamKey;
    const kind = this.#fieldString('kind');
    if (kind === undefined) return false;
    if (key === 'items') return kind.endsWith('List');
    if (key === 'rows') {
      const apiVersion = this.#fieldString('apiVersion');
      return kind === 'Table' && (apiVersion === undefined || apiVersion.startsWith('meta.k8s.io/'));
    }
    return false;
  }

  #openStream(key: string): void {
    this.#phase = ARR_FIRST;
    this.#elements = 0;
    if (this.#streaming) {
      this.#out.push(Buffer.from(`,${JSON.stringify(key)}:[`));
      return;
    }
    const head = envelopeHead(this.#fields, key, this.#masker, this.#hint, (raw) => this.#parse(raw));
    this.#out.push(head.bytes);
    this.#fields.clear();
    this.#fieldBytes = 0;
    this.#streaming = true;
    this.#streamKey = key;
    this.#streamKind = head.kind;
  }

  #closeStream(): void {
    this.#out.push(Buffer.from(']'));
    this.#phase = OBJ_AFTER;
  }

  #emitTailField(key: string, raw: Buffer): void {
    // The items were masked as this kind; a second `kind` after them would change their meaning.
    if (key === 'kind' || key === 'apiVersion') {
      throw unmaskable(
        `the upstream list repeats "${key}" after its ${this.#streamKey}: cannot mask it; the response was cut`,
      );
    }
    const masked = this.#masker.maskObject(this.#parse(raw), this.#hint);
    this.#out.push(Buffer.from(`,${JSON.stringify(key)}:`), this.#encode(raw, masked));
  }

  #closeObject(): void {
    this.#phase = TRAILING;
    if (this.#streaming) {
      this.#out.push(Buffer.from('}'));
      return;
    }
    const whole = wholeObject(this.#fields, this.#masker, this.#hint, (raw) => this.#parse(raw));
    if (whole.masked) this.#maskedObjects += 1;
    this.#out.push(whole.bytes);
    this.#fields.clear();
  }
}
