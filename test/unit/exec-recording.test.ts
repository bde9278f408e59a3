// The exec recording module on its own: messages reassembled across fragments (control frames
// between them), batches written as the session runs and several per event, fail closed when a write fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import type { ExecFrame } from '../../packages/gateway/src/audit/types.js';
import { startExecRecording } from '../../packages/gateway/src/proxy/exec-recording.js';
import { createMessageReader } from '../../packages/gateway/src/proxy/websocket-frames.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditStore } from '../../packages/gateway/src/store/types.js';

/** A client frame (masked, as RFC 6455 requires of clients). */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]), mask, masked]);
}

test('a fragmented message is observed whole, with a ping between its fragments', () => {
  const messages: { opcode: number; text: string }[] = [];
  const reader = createMessageReader((m) => messages.push({ opcode: m.opcode, text: m.payload.toString('latin1') }));
  const bytes = Buffer.concat([
    frame(2, Buffer.from([0]), false),
    frame(9, Buffer.from('p')),
    frame(0, Buffer.from('rm -rf '), false),
    frame(0, Buffer.from('/tmp\n')),
  ]);
  for (const byte of bytes) reader.push(Buffer.from([byte])); // one byte at a time
  assert.deepEqual(messages, [
    { opcode: 9, text: 'p' },
    { opcode: 2, text: '\x00rm -rf /tmp\n' },
  ]);
});

test('frames are appended in batches as the session runs, several records per event; non-UTF-8 data as base64', async () => {
  const store = await createStore('sqlite::memory:', { replicaId: 'r-1' });
  const recorder = createAuditRecorder({
    store,
    replicaId: 'r-1',
    clock: Date.now,
    maxBodyBytes: 1024,
    bodies: true,
    sessionIdleMs: 60_000,
  });
  const handle = await recorder.begin({ time: Date.now(), method: 'GET', path: '/exec', identity: 'x' } as never);
  const recording = startExecRecording({
    recorder,
    eventId: handle.eventId,
    protocol: 'v5.channel.k8s.io',
    clock: Date.now,
    maxRecordBytes: 1 << 20,
    flushBytes: 8,
    flushMs: 20,
    onFailure: (r) => assert.fail(r),
  });
  recording.fromClient(frame(2, Buffer.from('\x00echo one\n')));
  recording.fromClient(frame(2, Buffer.from([0, 0xff, 0xfe])));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const early = await store.audit.listRecords({ eventIds: [handle.eventId], kinds: ['frames'] });
  assert.ok(early.length >= 1, 'written before the session ends');
  recording.fromClient(frame(2, Buffer.from('\x00exit\n')));
  recording.close();
  await recorder.close();
  const frames = (await store.audit.listRecords({ eventIds: [handle.eventId], kinds: ['frames'] })).flatMap(
    (r) => r.data['frames'] as ExecFrame[],
  );
  assert.deepEqual(
    frames.map((f) => [f.data, f.base64 ?? false]),
    [
      ['echo one\n', false],
      ['//4=', true],
      ['exit\n', false],
    ],
  );
  await store.close();
});

test('fail closed: a failed frames write ends the session (the batch is still retried)', async () => {
  const store = await createStore('sqlite::memory:', { replicaId: 'r-1' });
  let failures = 1;
  const audit: AuditStore = {
    ...store.audit,
    chain: store.audit.chain,
    async append(drafts) {
      if (failures-- > 0) throw new Error('disk on fire');
      return store.audit.append(drafts);
    },
  };
  const recorder = createAuditRecorder({
    store: audit,
    replicaId: 'r-1',
    clock: Date.now,
    maxBodyBytes: 1024,
    bodies: true,
    sessionIdleMs: 60_000,
    retryBaseMs: 5,
  });
  let ended = '';
  const recording = startExecRecording({
    recorder,
    eventId: 'e-1',
    protocol: '',
    clock: Date.now,
    maxRecordBytes: 1024,
    flushMs: 1,
    onFailure: (reason) => (ended = reason),
  });
  recording.fromClient(frame(2, Buffer.from('\x00whoami\n')));
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.match(ended, /^the exec recording could not be written to the audit store \(disk on fire\)/);
  assert.equal(recording.failure, ended);
  await recorder.close();
  assert.equal((await store.audit.listRecords({ kinds: ['frames'] })).length, 1, 'retried and written');
  await store.close();
});
