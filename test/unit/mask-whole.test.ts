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

const streamed = (overrides: Partial<ResponseMeta>, body: Buffer): Promise<string> =>
  text(Readable.from([body]).pipe(plan(overrides).stream));

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
  ];
  for (const [name, overrides, body] of cases) {
    it(`masks ${name} to the bytes the stream emits`, async () => {
      const whole = plan(overrides).whole(body).toString();
      assert.equal(whole, await streamed(overrides, body));
      assert.ok(!whole.includes(b64('CANARY')) && !whole.includes('CANARY'), whole);
    });
  }

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
