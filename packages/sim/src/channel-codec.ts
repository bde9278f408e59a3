// The channel framing of k8s.io/apimachinery/pkg/util/httpstream/wsstream (conn.go), which the kubelet
// and kube-apiserver speak on exec, attach and port-forward WebSockets. A message is one channel byte and
// its data, in a text or binary frame alike (x/net/websocket's Message.Receive reads both into []byte);
// base64 subprotocols send the channel as an ASCII digit and the data base64-encoded, in text frames.

export type ChannelCodec = 'binary' | 'base64';

export interface ChannelProtocol {
  /** The negotiated Sec-WebSocket-Protocol ('' when the client offered none). */
  name: string;
  codec: ChannelCodec;
  /**
   * How the status channel reports the end: 'v4' writes a metav1.Status as JSON, success included;
   * 'v1' (channel.k8s.io, base64.channel.k8s.io, none) writes only a failure's message as text.
   */
  status: 'v1' | 'v4';
  /** v5: a message on channel 255 closes the client's half of the channel it names. */
  streamClose: boolean;
}

const remoteCommand: readonly ChannelProtocol[] = [
  { name: 'v5.channel.k8s.io', codec: 'binary', status: 'v4', streamClose: true },
  { name: 'v4.channel.k8s.io', codec: 'binary', status: 'v4', streamClose: false },
  { name: 'v4.base64.channel.k8s.io', codec: 'base64', status: 'v4', streamClose: false },
  { name: 'channel.k8s.io', codec: 'binary', status: 'v1', streamClose: false },
  { name: 'base64.channel.k8s.io', codec: 'base64', status: 'v1', streamClose: false },
  { name: '', codec: 'binary', status: 'v1', streamClose: false },
];

const portForward: readonly ChannelProtocol[] = [
  { name: 'v4.channel.k8s.io', codec: 'binary', status: 'v4', streamClose: false },
  { name: 'v4.base64.channel.k8s.io', codec: 'base64', status: 'v4', streamClose: false },
  { name: '', codec: 'binary', status: 'v4', streamClose: false },
];

/** The subprotocols a client may offer for exec/attach and for port-forward's channel protocol. */
export const remoteCommandProtocols: readonly string[] = remoteCommand.map((p) => p.name).filter((n) => n !== '');
export const portForwardChannelProtocols: readonly string[] = portForward.map((p) => p.name).filter((n) => n !== '');

/**
 * The protocol a real cluster would pick. kube-apiserver answers v5 itself whenever it is offered
 * (TranslateStreamCloseWebsocketRequests); every other offer reaches the kubelet, whose handshake
 * takes the client's first supported protocol, or none when the client offered none.
 */
export function chooseChannelProtocol(
  kind: 'remotecommand' | 'portforward',
  offered: readonly string[],
): ChannelProtocol | undefined {
  const table = kind === 'remotecommand' ? remoteCommand : portForward;
  if (kind === 'remotecommand' && offered.includes('v5.channel.k8s.io')) return table[0];
  if (offered.length === 0) return table.find((p) => p.name === '');
  for (const name of offered) {
    const found = table.find((p) => p.name === name && name !== '');
    if (found) return found;
  }
  return undefined;
}

/** One outgoing message: binary frame [channel, ...data], or text frame "<digit><base64>". */
export function encodeChannelMessage(
  codec: ChannelCodec,
  channel: number,
  data: Buffer,
): { payload: Buffer | string; binary: boolean } {
  if (codec === 'binary') return { payload: Buffer.concat([Buffer.from([channel]), data]), binary: true };
  return { payload: String.fromCharCode(0x30 + channel) + data.toString('base64'), binary: false };
}

/** One incoming message, whatever its frame type; undefined for an empty or undecodable one (wsstream skips those). */
export function decodeChannelMessage(
  codec: ChannelCodec,
  message: Buffer,
): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  if (codec === 'binary') return { channel: message[0]!, data: message.subarray(1) };
  const text = message.subarray(1).toString('latin1');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  return { channel: (message[0]! - 0x30) & 0xff, data: Buffer.from(text, 'base64') };
}
