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

export function createFrameReader(onFrame: (frame: ObservedFrame) => void, maxPayload = 64 * 1024) {
  let header: Buffer = Buffer.alloc(0);
  // The frame whose payload is being read, if any.
  let frame: { fin: boolean; opcode: number; length: number; remaining: number; maskKey?: Buffer; kept: Buffer[]; keptSize: number; seen: number } | undefined;
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
          if (consumed < 0) {
            broken = true; // not a stream we can follow; the relay itself is unaffected
            return;
          }
          if (consumed === 0) {
            if (header.length > 14) broken = true;
            return;
          }
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
            for (let i = 0; i < keep.length; i += 1) keep[i] = (keep[i] as number) ^ (current.maskKey[(current.seen + i) % 4] as number);
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
