// One exec/attach WebSocket message as the audit session records it: which channel, which bytes. Every
// subprotocol a kubelet or API server accepts frames messages the way k8s.io/apimachinery's wsstream does:
// a text or a binary frame alike (the Python client sends str stdin as text), carrying the channel byte
// then the data; the base64 subprotocols carry the channel as an ASCII digit and the data base64-encoded.

export type ChannelCodec = 'binary' | 'base64';

/** The framing of a negotiated Sec-WebSocket-Protocol ('' when none was negotiated: binary). */
export function channelCodecOf(protocol: string): ChannelCodec {
  // base64.channel.k8s.io, v4.base64.channel.k8s.io
  return /(^|\.)base64\./i.test(protocol.trim()) ? 'base64' : 'binary';
}

/** Text (1) and binary (2) frames; undefined for control frames, continuations and empty messages. */
export function decodeChannelMessage(
  codec: ChannelCodec,
  opcode: number,
  payload: Buffer,
): { channel: number; data: Buffer } | undefined {
  if ((opcode !== 1 && opcode !== 2) || payload.length === 0) return undefined;
  if (codec === 'binary') return { channel: payload[0] as number, data: payload.subarray(1) };
  return {
    channel: ((payload[0] as number) - 0x30) & 0xff,
    data: Buffer.from(payload.subarray(1).toString('latin1'), 'base64'),
  };
}

/** The exec/attach subprotocols whose framing is known here (k8s.io/apimachinery wsstream, kubelet). */
const recordableProtocols = new Set([
  '',
  'channel.k8s.io',
  'v2.channel.k8s.io',
  'v3.channel.k8s.io',
  'v4.channel.k8s.io',
  'v5.channel.k8s.io',
  'base64.channel.k8s.io',
  'v4.base64.channel.k8s.io',
]);

/** Whether a session with this negotiated Sec-WebSocket-Protocol can be recorded. */
export function isRecordableProtocol(protocol: string): boolean {
  return recordableProtocols.has(protocol.trim().toLowerCase());
}
