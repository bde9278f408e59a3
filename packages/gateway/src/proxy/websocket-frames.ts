// An incremental WebSocket frame reader (RFC 6455 §5.2) for *observing* a relayed stream: it
// never alters the bytes, it only reports each frame's opcode and unmasked payload so exec and
// attach sessions can be recorded. Memory is bounded: at most `maxPayload` bytes of a frame are
// kept, however large the frame is.

export interface ObservedFrame {
  fin: boolean;
  opcode: number;
  /** Unmasked payload (cut at maxPayload). */
  payload: Buffer;
  /** The frame's full payload length. */
  length: number;
}

/** `onBroken` is called once when the stream stops being readable as frames (the relay is unaffected). */
export function createFrameReader(
  onFrame: (frame: ObservedFrame) => void,
  maxPayload = 64 * 1024,
  onBroken?: () => void,
) {
  let header: Buffer = Buffer.alloc(0);
  // The frame whose payload is being read, if any.
  let frame:
    | {
        fin: boolean;
        opcode: number;
        length: number;
        remaining: number;
        maskKey?: Buffer;
        kept: Buffer[];
        keptSize: number;
        seen: number;
      }
    | undefined;
  let broken = false;

  function parseHeader(): number {
    if (header.length < 2) return 0;
    const b0 = header[0] as number;
    const b1 = header[1] as number;
    let length = b1 & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (header.length < 4) return 0;
      length = header.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (header.length < 10) return 0;
      const big = header.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return -1;
      length = Number(big);
      offset = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked && header.length < offset + 4) return 0;
    frame = { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, length, remaining: length, kept: [], keptSize: 0, seen: 0 };
    if (masked) frame.maskKey = Buffer.from(header.subarray(offset, offset + 4));
    return offset + (masked ? 4 : 0);
  }

  function finish(): void {
    if (frame === undefined) return;
    const payload = Buffer.concat(frame.kept);
    onFrame({ fin: frame.fin, opcode: frame.opcode, payload, length: frame.length });
    frame = undefined;
  }

  return {
    push(chunk: Buffer): void {
      let data: Buffer = chunk;
      while (!broken && data.length > 0) {
        if (frame === undefined) {
          header = header.length === 0 ? data : Buffer.concat([header, data]);
          const consumed = parseHeader();
          if (consumed < 0 || (consumed === 0 && header.length > 14)) {
            broken = true; // not a stream we can follow; the relay itself is unaffected
            onBroken?.();
            return;
          }
          if (consumed === 0) return;
          data = header.subarray(consumed);
          header = Buffer.alloc(0);
          if (frame !== undefined && (frame as { remaining: number }).remaining === 0) finish();
          continue;
        }
        const current = frame;
        const take = Math.min(current.remaining, data.length);
        const part = data.subarray(0, take);
        if (current.keptSize < maxPayload) {
          const keep = Buffer.from(part.subarray(0, maxPayload - current.keptSize));
          if (current.maskKey !== undefined) {
            for (let i = 0; i < keep.length; i += 1)
              keep[i] = (keep[i] as number) ^ (current.maskKey[(current.seen + i) % 4] as number);
          }
          current.kept.push(keep);
          current.keptSize += keep.length;
        }
        current.seen += take;
        current.remaining -= take;
        data = data.subarray(take);
        if (current.remaining === 0) finish();
      }
    },
  };
}

/** One whole data message: its first frame's opcode, its payload (cut at maxMessage), its full length. */
export interface ObservedMessage {
  opcode: number;
  payload: Buffer;
  length: number;
}

/**
 * Reassembles fragmented data messages (RFC 6455 §5.4: a text/binary frame with FIN=0, then
 * continuation frames up to FIN=1) so that a message is observed whole however it was split; control
 * frames (which may sit between fragments) are passed on as one-frame messages. At most `maxMessage`
 * bytes of a message are kept.
 */
export function createMessageReader(
  onMessage: (message: ObservedMessage) => void,
  maxMessage = 64 * 1024,
  onBroken?: () => void,
) {
  let current: { opcode: number; parts: Buffer[]; kept: number; length: number } | undefined;
  return createFrameReader(
    (frame) => {
      if (frame.opcode >= 8) return onMessage({ opcode: frame.opcode, payload: frame.payload, length: frame.length });
      if (frame.opcode !== 0) current = { opcode: frame.opcode, parts: [], kept: 0, length: 0 };
      // A continuation with no message begun is a protocol error the receiver refuses: nothing to record.
      if (current === undefined) return;
      const keep = frame.payload.subarray(0, Math.max(0, maxMessage - current.kept));
      current.parts.push(keep);
      current.kept += keep.length;
      current.length += frame.length;
      if (!frame.fin) return;
      const message = current;
      current = undefined;
      onMessage({ opcode: message.opcode, payload: Buffer.concat(message.parts), length: message.length });
    },
    maxMessage,
    onBroken,
  );
}
