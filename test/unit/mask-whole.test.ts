// Issue #13: a mask plan's `whole(body)` (a small answer masked in one call) gives the same bytes as its
// stream, and refuses what the stream refuses with the same ERR_UNMASKABLE Status.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createResponseMasker, type ResponseMeta } from '../../packages/gateway/src/proxy/mask/index.js';

const masker = createResponseMasker({ secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 });
const b64 = (value: string): string => Buffer.from(value).toString('base64');
const secret = (name: string) => ({
  kind: 'Secret',
  apiVersion: 'v1',
  metadata: { name, namespace: 'default', annotations: { note: 'ü😀' } },
  data: { password: b64(`CANARY-${name}`) },
});

function plan(overrides: Partial<ResponseMeta> = {}) {
  const planned = masker.transform({
    contentType: 'application/json',
    contentEncoding: undefined,
    isWatch: false,
    status: 200,
    ...overrides,
  });
  if (planned.kind !== 'mask') throw new Error(`expected a mask plan, got ${planned.kind}`);
  return planned;
}

describe('response masker: whole bodies', () => {
  const cases: [string, Partial<ResponseMeta>, Buffer][] = [
    ['a Secret', { resource: 'secrets' }, Buffer.from(JSON.stringify(secret('a')))],
    [
      'a SecretList',
      { resource: 'secrets' },
      Buffer.from(JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', items: [secret('a'), secret('b')] })),
    ],
    ['a Pod', { resource: 'pods' }, Buffer.from(JSON.stringify({ kind: 'Pod', metadata: { name: 'web' } }))],
    ['a gzip Secret', { contentEncoding: 'gzip' }, gzipSync(JSON.stringify(secret('g')))],
    ['watch events', { isWatch: true }, Buffer.from(`${JSON.stringify({ type: 'ADDED', object: secret('w') })}\n`)],
    ['an empty body', {}, Buffer.alloc(0)],
    [
      'a Secret without kind, by the request',
      { resource: 'secrets' },
      Buffer.from(JSON.stringify({ data: { a: b64('CANARY') } })),
    ],
    [
      'a Secret with its last-applied annotation',
      {},
      Buffer.from(
        JSON.stringify({
          ...secret('l'),
          metadata: {
            name: 'l',
            annotations: {
              'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(secret('l')),
            },
          },
        }),
      ),
    ],
    [
      'a list whose kind comes after its items',
      {},
      Buffer.from(`{"items":[${JSON.stringify(secret('x'))}],"kind":"SecretList","apiVersion":"v1"}`),
    ],
    [
      'a Table with Secret rows',
      { resource: 'secrets' },
      Buffer.from(
        JSON.stringify({
          kind: 'Table',
          apiVersion: 'meta.k8s.io/v1',
          columnDefinitions: [],
          rows: [{ cells: ['t'], object: secret('t') }],
        }),
      ),
    ],
    ['a pretty-printed Pod', {}, Buffer.from(JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }, null, 2))],
  ];
  for (const [name, overrides, body] of cases) {
    it(`masks ${name} as the stream does`, async () => {
      const wholePlan = plan(overrides);
      const whole = wholePlan.whole(body).toString();
      const streamPlan = plan(overrides);
      const viaStream = await text(Readable.from([body]).pipe(streamPlan.stream));
      assert.deepEqual(whole === '' ? '' : JSON.parse(whole), viaStream === '' ? '' : JSON.parse(viaStream));
      assert.equal(wholePlan.maskedObjects(), streamPlan.maskedObjects(), 'the same objects counted as masked');
      assert.ok(!whole.includes(b64('CANARY')) && !whole.includes('CANARY'), whole);
    });
  }

  it('relays an object with nothing to mask byte for byte', () => {
    const body = Buffer.from(JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }, null, 2));
    assert.equal(plan().whole(body), body);
  });

  for (const [name, overrides, body, message] of [
    ['a truncated document', {}, Buffer.from('{"kind":"Secret","data":{"x":"Q0FO'), /ended inside a json value/],
    ['malformed json', {}, Buffer.from('{"kind":"Secret","data":{"x":CANARY}}'), /malformed json/],
    ['a corrupt gzip body', { contentEncoding: 'gzip' }, Buffer.from('not gzip'), /cannot be decoded/],
  ] as const) {
    it(`refuses ${name} with ERR_UNMASKABLE (502 Status)`, () => {
      assert.throws(
        () => plan(overrides).whole(body),
        (error: unknown) => {
          assert.ok(error instanceof HoopError);
          assert.equal(error.code, 'ERR_UNMASKABLE');
          const status = statusFromError(error);
          assert.equal(status.kind, 'Status');
          assert.equal(status.code, 502);
          assert.equal(status.reason, 'InternalError');
          assert.match(status.message, /^hoopgate: /);
          assert.match(status.message, message);
          return true;
        },
      );
    });
  }
});
