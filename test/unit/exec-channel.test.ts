// The audit reading of exec/attach WebSocket messages: text and binary frames alike, base64 subprotocols decoded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelCodecOf, decodeChannelMessage } from '../../packages/gateway/src/proxy/exec-channel.js';

test('the codec follows the negotiated subprotocol', () => {
  for (const p of ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io', '', ' v4.channel.k8s.io '])
    assert.equal(channelCodecOf(p), 'binary', p);
  for (const p of ['base64.channel.k8s.io', 'v4.base64.channel.k8s.io', ' V4.BASE64.channel.k8s.io'])
    assert.equal(channelCodecOf(p), 'base64', p);
});

test('text and binary frames carry the channel byte then the data; control frames and empty messages carry nothing', () => {
  const message = Buffer.from('\x00echo hi\n', 'latin1');
  for (const opcode of [1, 2])
    assert.deepEqual(decodeChannelMessage('binary', opcode, message), { channel: 0, data: Buffer.from('echo hi\n') });
  for (const opcode of [0, 8, 9, 10]) assert.equal(decodeChannelMessage('binary', opcode, message), undefined);
  assert.equal(decodeChannelMessage('binary', 2, Buffer.alloc(0)), undefined);
});

test('base64 subprotocols: an ASCII channel digit, then base64 data', () => {
  const stdout = Buffer.from(`1${Buffer.from('hällo\n').toString('base64')}`, 'latin1');
  assert.deepEqual(decodeChannelMessage('base64', 1, stdout), { channel: 1, data: Buffer.from('hällo\n') });
  assert.deepEqual(decodeChannelMessage('base64', 1, Buffer.from('0', 'latin1')), {
    channel: 0,
    data: Buffer.alloc(0),
  });
});
