// The response masker as a stream: plans (pass / mask / refuse), chunk splits, gzip, watch events,
// lists streamed item by item, and every refusal (Status code, reason, message).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable, type Transform } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { MaskingConfig } from '../../packages/gateway/src/config/types.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import {
  createObjectMasker,
  createResponseMasker,
  LAST_APPLIED_ANNOTATION,
  MASKED_BASE64,
  MASKED_TEXT,
  type ResponseMeta,
} from '../../packages/gateway/src/proxy/mask/index.js';

const config: MaskingConfig = { secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 };
const b64 = (value: string): string => Buffer.from(value).toString('base64');
type Json = Record<string, any>;

function assertNoCanary(value: string): void {
  assert.ok(!value.includes('CANARY'), `CANARY leaked: ${value.slice(0, 500)}`);
  assert.ok(!value.includes(b64('CANARY')), `base64 CANARY leaked: ${value.slice(0, 500)}`);
}

function secret(name: string, options: { kind?: boolean; applied?: boolean } = {}): Json {
  const metadata: Json = { name, namespace: 'default', labels: { 'emoji-ü': 'grüße-€-😀' } };
  if (options.applied === true) {
    metadata.annotations = {
      [LAST_APPLIED_ANNOTATION]: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        data: { password: b64(`CANARY-${name}`) },
      }),
    };
  }
  return {
    ...(options.kind === false ? {} : { kind: 'Secret', apiVersion: 'v1' }),
    metadata,
    data: { password: b64(`CANARY-${name}-ü😀`), 'ca.crt': b64('CANARY\n"quoted"\\') },
    stringData: { note: `CANARY "escaped" \\ ü€😀 \u0001 ${name}` },
    type: 'Opaque',
  };
}

const meta = (overrides: Partial<ResponseMeta> = {}): ResponseMeta => ({
  contentType: 'application/json',
  contentEncoding: undefined,
  isWatch: false,
  status: 200,
  ...overrides,
});

function maskStream(overrides: Partial<ResponseMeta> = {}, cfg: MaskingConfig = config): Transform {
  const plan = createResponseMasker(cfg).transform(meta(overrides));
  assert.equal(plan.kind, 'mask');
  if (plan.kind !== 'mask') throw new Error('unreachable');
  return plan.stream;
}

async function run(stream: Transform, chunks: readonly Buffer[]): Promise<string> {
  return text(Readable.from(chunks, { objectMode: false }).pipe(stream));
}

/** Runs and expects the stream to fail with ERR_UNMASKABLE; returns the error and what was emitted first. */
async function runFailing(
  stream: Transform,
  chunks: readonly Buffer[],
): Promise<{ error: HoopError; emitted: string }> {
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  const source = Readable.from(chunks, { objectMode: false });
  source.pipe(stream);
  const [error] = (await once(stream, 'error')) as [unknown];
  source.destroy();
  assert.ok(error instanceof HoopError, `expected a HoopError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_UNMASKABLE');
  const status = statusFromError(error);
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, 502);
  assert.equal(status.reason, 'InternalError');
  assert.ok(status.message.startsWith('hoopgate: '));
  const emitted = Buffer.concat(out).toString();
  assertNoCanary(emitted);
  return { error, emitted };
}

function splitEvery(buffer: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) chunks.push(buffer.subarray(i, i + size));
  return chunks;
}

describe('response masker: plans', () => {
  const masker = createResponseMasker(config);

  const refusals: { name: string; meta: Partial<ResponseMeta>; message: RegExp }[] = [
    {
      name: 'protobuf',
      meta: { contentType: 'application/vnd.kubernetes.protobuf' },
      message: /content type "application\/vnd\.kubernetes\.protobuf", which hoopgate cannot mask/,
    },
    {
      name: 'protobuf watch',
      meta: { contentType: 'application/vnd.kubernetes.protobuf;stream=watch', isWatch: true },
      message: /cannot mask/,
    },
    { name: 'octet-stream', meta: { contentType: 'application/octet-stream' }, message: /"application\/octet-stream"/ },
    { name: 'yaml', meta: { contentType: 'application/yaml' }, message: /"application\/yaml"/ },
    { name: 'no content type', meta: { contentType: undefined }, message: /content type none/ },
    {
      name: 'br encoding',
      meta: { contentEncoding: 'br' },
      message: /content-encoding "br", which hoopgate cannot decode/,
    },
    { name: 'deflate encoding', meta: { contentEncoding: 'deflate' }, message: /content-encoding "deflate"/ },
    { name: 'gzip then br', meta: { contentEncoding: 'gzip, br' }, message: /content-encoding "gzip, br"/ },
  ];
  for (const refusal of refusals) {
    it(`refuses a 2xx ${refusal.name} body with ERR_UNMASKABLE`, () => {
      const plan = masker.transform(meta(refusal.meta));
      assert.equal(plan.kind, 'refuse');
      if (plan.kind !== 'refuse') return;
      assert.equal(plan.error.code, 'ERR_UNMASKABLE');
      assert.match(plan.error.message, refusal.message);
      const status = statusFromError(plan.error);
      assert.deepEqual(
        {
          kind: status.kind,
          apiVersion: status.apiVersion,
          status: status.status,
          code: status.code,
          reason: status.reason,
        },
        { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 502, reason: 'InternalError' },
      );
      assert.ok(status.message.startsWith('hoopgate: '));
    });
  }

  it('passes text/plain (logs), the OpenAPI protobuf document, 204/304 and non-JSON error bodies', () => {
    for (const m of [
      meta({ contentType: 'text/plain; charset=utf-8', resource: 'pods/log' }),
      meta({ contentType: 'text/plain', contentEncoding: 'br' }),
      meta({ contentType: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' }),
      meta({ status: 204, contentType: undefined }),
      meta({ status: 304 }),
      meta({ status: 404, contentType: 'text/plain' }),
      meta({ status: 503, contentType: 'application/vnd.kubernetes.protobuf' }),
    ])
      assert.deepEqual(masker.transform(m), { kind: 'passthrough' }, JSON.stringify(m));
  });

  it('masks JSON of any status, +json types, and gzip; keeps the content type', () => {
    for (const m of [
      meta(),
      meta({ status: 404 }),
      meta({ contentType: 'application/json;as=Table;v=v1;g=meta.k8s.io' }),
      meta({ contentType: 'application/jwk-set+json' }),
      meta({ contentEncoding: 'gzip' }),
      meta({ contentEncoding: 'identity' }),
    ]) {
      const plan = masker.transform(m);
      assert.equal(plan.kind, 'mask');
      if (plan.kind === 'mask') assert.equal(plan.contentType, m.contentType);
    }
  });

  it('passes an upstream Status (error) body through with the same bytes', async () => {
    const body =
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \\"x\\" not found","reason":"NotFound","details":{"name":"x","kind":"secrets"},"code":404}\n';
    assert.equal(await run(maskStream({ status: 404 }), [Buffer.from(body)]), body.trim());
  });
});

describe('response masker: documents', () => {
  it('masks a single Secret (get, create, update, patch, delete responses)', async () => {
    const out = await run(maskStream(), [Buffer.from(JSON.stringify(secret('a', { applied: true })))]);
    assertNoCanary(out);
    const parsed = JSON.parse(out) as Json;
    assert.equal(parsed.data.password, MASKED_BASE64);
    assert.equal(parsed.stringData.note, MASKED_TEXT);
    assert.deepEqual(parsed.metadata.labels, { 'emoji-ü': 'grüße-€-😀' });
  });

  it('streams a SecretList item by item and agrees with maskObject, split at every byte', async () => {
    const list = {
      kind: 'SecretList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '7', continue: '' },
      items: [secret('a', { kind: false }), secret('b', { kind: false, applied: true }), secret('c')],
    };
    const body = Buffer.from(JSON.stringify(list, null, 1));
    const expected = createObjectMasker(config).maskObject(list).value;
    const whole = await run(maskStream({ resource: 'secrets' }), [body]);
    assertNoCanary(whole);
    assert.deepEqual(JSON.parse(whole), expected);
    for (let at = 1; at < body.length; at++) {
      const out = await run(maskStream({ resource: 'secrets' }), [body.subarray(0, at), body.subarray(at)]);
      assert.deepEqual(JSON.parse(out), expected, `split at ${at}`);
    }
    const byteByByte = await run(maskStream(), splitEvery(body, 1));
    assert.deepEqual(JSON.parse(byteByByte), expected);
  });

  it('masks the byte-level path like the object path for unusual Secrets', async () => {
    const odd = [
      { ...secret('u', { kind: false }), metadata: { name: 'u', annotations: { note: '\u003cb\u003e' } } },
      { metadata: { name: 'n' }, data: null, stringData: { a: null, b: 'CANARY' } },
      { kind: 'Secret', apiVersion: 'v1', metadata: {}, data: 'CANARY-not-a-map' },
      { kind: 'Secret', apiVersion: 'v1', metadata: {}, data: {} },
      {},
    ];
    const listText = `{"kind":"SecretList","apiVersion":"v1","items":[${odd.map((o) => JSON.stringify(o)).join(',')},{"metadata":{"name":"esc","annotations":{"kubectl.kubernetes.io/last\\u002dapplied-configuration":"{\\"kind\\":\\"Secret\\",\\"apiVersion\\":\\"v1\\",\\"data\\":{\\"x\\":\\"CANARY\\"}}"}},"d\\u0061ta":{"x":"${b64('CANARY')}"}}]}`;
    const expected = createObjectMasker(config).maskObject(JSON.parse(listText)).value;
    const out = await run(maskStream(), [Buffer.from(listText)]);
    assertNoCanary(out);
    assert.deepEqual(JSON.parse(out), expected);
  });

  it('applies config rules to streamed items (ConfigMapList keys; a rule on secrets too)', async () => {
    const ruled: MaskingConfig = {
      ...config,
      rules: [
        { resources: ['configmaps'], keys: '(?i)password' },
        { resources: ['secrets'], paths: ['metadata.annotations.note'] },
      ],
    };
    const cms = {
      kind: 'ConfigMapList',
      apiVersion: 'v1',
      metadata: {},
      items: [{ metadata: { name: 'c' }, data: { DB_PASSWORD: 'CANARY', color: 'blue' } }],
    };
    const cmOut = JSON.parse(await run(maskStream({}, ruled), [Buffer.from(JSON.stringify(cms))])) as Json;
    assert.deepEqual(cmOut.items[0].data, { DB_PASSWORD: MASKED_TEXT, color: 'blue' });
    const annotated = {
      ...secret('a', { kind: false }),
      metadata: { name: 'a', annotations: { note: 'CANARY-note' } },
    };
    const out = await run(maskStream({}, ruled), [
      Buffer.from(JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', items: [annotated] })),
    ]);
    assertNoCanary(out);
    assert.equal((JSON.parse(out) as Json).items[0].metadata.annotations.note, MASKED_TEXT);
  });

  it('streams a Table (includeObject=Object and PartialObjectMetadata rows)', async () => {
    const table = {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion: '3' },
      columnDefinitions: [
        { name: 'Name', type: 'string', format: 'name', description: '', priority: 0 },
        { name: 'Type', type: 'string', format: '', description: '', priority: 0 },
      ],
      rows: [
        { cells: ['a', 'Opaque', 'CANARY-a-ü😀'], object: secret('a', { applied: true }) },
        {
          cells: ['b', 'Opaque'],
          object: {
            kind: 'PartialObjectMetadata',
            apiVersion: 'meta.k8s.io/v1',
            metadata: secret('b', { applied: true }).metadata,
          },
        },
      ],
    };
    const out = await run(
      maskStream({ contentType: 'application/json;as=Table;v=v1;g=meta.k8s.io', resource: 'secrets' }),
      splitEvery(Buffer.from(JSON.stringify(table)), 13),
    );
    assertNoCanary(out);
    const parsed = JSON.parse(out) as Json;
    assert.deepEqual(parsed.columnDefinitions, table.columnDefinitions);
    assert.deepEqual(parsed.rows[0].cells, ['a', 'Opaque', MASKED_TEXT]);
  });

  it('masks a mixed List and a deletecollection SecretList', async () => {
    const list = {
      kind: 'List',
      apiVersion: 'v1',
      metadata: {},
      items: [{ kind: 'ConfigMap', apiVersion: 'v1', data: { a: 'b' } }, secret('a')],
    };
    const out = await run(maskStream(), [Buffer.from(JSON.stringify(list))]);
    assertNoCanary(out);
    assert.deepEqual((JSON.parse(out) as Json).items[0], list.items[0]);
    const deleted = await run(maskStream({ resource: 'secrets' }), [
      Buffer.from(
        JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [secret('x', { kind: false })] }),
      ),
    ]);
    assertNoCanary(deleted);
  });

  it('holds a list whose kind comes after its items whole, and still masks it', async () => {
    const body = JSON.stringify({
      items: [secret('a', { kind: false })],
      metadata: {},
      kind: 'SecretList',
      apiVersion: 'v1',
    });
    const out = await run(maskStream(), [Buffer.from(body)]);
    assertNoCanary(out);
    assert.equal((JSON.parse(out) as Json).items[0].data.password, MASKED_BASE64);
  });

  it('masks gzip-encoded bodies, also when the gzip bytes arrive in small chunks', async () => {
    const list = {
      kind: 'SecretList',
      apiVersion: 'v1',
      metadata: {},
      items: Array.from({ length: 50 }, (_, i) => secret(`s${i}`, { kind: false })),
    };
    const gz = gzipSync(Buffer.from(JSON.stringify(list)));
    const expected = createObjectMasker(config).maskObject(list).value;
    for (const size of [gz.length, 7, 1]) {
      const out = await run(maskStream({ contentEncoding: 'gzip' }), splitEvery(gz, size));
      assertNoCanary(out);
      assert.deepEqual(JSON.parse(out), expected);
    }
  });

  it('passes discovery documents and an empty body', async () => {
    const discovery = {
      kind: 'APIGroupDiscoveryList',
      apiVersion: 'apidiscovery.k8s.io/v2',
      metadata: {},
      items: [{ metadata: { name: 'apps' }, versions: [] }],
    };
    assert.deepEqual(JSON.parse(await run(maskStream(), [Buffer.from(JSON.stringify(discovery))])), discovery);
    assert.equal(await run(maskStream(), []), '');
  });
});

describe('response masker: refusals mid-stream', () => {
  it('errors on malformed JSON after items were forwarded (the proxy cuts the connection)', async () => {
    const body = `{"kind":"SecretList","apiVersion":"v1","items":[${JSON.stringify(secret('a', { kind: false }))},{"data":{"x":"CANARY"},}]}`;
    const cut = body.indexOf(',{"data"') + 1;
    const { error, emitted } = await runFailing(maskStream(), [
      Buffer.from(body.slice(0, cut)),
      Buffer.from(body.slice(cut)),
    ]);
    assert.match(error.message, /malformed json in the upstream response/);
    assert.ok(emitted.includes(MASKED_BASE64), 'the first item was forwarded before the error');
  });

  const broken: { name: string; body: string; message: RegExp; watch?: boolean }[] = [
    {
      name: 'a truncated document',
      body: `{"kind":"Secret","apiVersion":"v1","data":{"x":"CANARY`,
      message: /ended inside a json value/,
    },
    {
      name: 'data after the document',
      body: `{"kind":"Status"} {"kind":"Secret","data":{"x":"CANARY"}}`,
      message: /data after the end of the document/,
    },
    { name: 'a bare word', body: `{"kind":"Secret","data":{"x":CANARY}}`, message: /malformed json/ },
    {
      name: 'a repeated kind after the items',
      body: `{"kind":"List","items":[],"kind":"Secret","data":{"x":"CANARY"}}`,
      message: /repeats "kind" after its items/,
    },
    {
      name: 'a truncated watch event',
      body: `{"type":"ADDED","object":{"kind":"Secret","data":{"x":"CANARY`,
      message: /ended inside a json value/,
      watch: true,
    },
    {
      name: 'garbage in a watch stream',
      body: `{"type":"ADDED","object":{}}\n]`,
      message: /malformed json/,
      watch: true,
    },
  ];
  for (const entry of broken) {
    it(`errors on ${entry.name}`, async () => {
      const { error } = await runFailing(maskStream({ isWatch: entry.watch === true }), [Buffer.from(entry.body)]);
      assert.match(error.message, entry.message);
    });
  }

  it('errors on a truncated or corrupt gzip body', async () => {
    const gz = gzipSync(Buffer.from(JSON.stringify(secret('a'))));
    const truncated = await runFailing(maskStream({ contentEncoding: 'gzip' }), [gz.subarray(0, gz.length - 10)]);
    assert.match(truncated.error.message, /gzip|ended inside/);
    const corrupt = await runFailing(maskStream({ contentEncoding: 'gzip' }), [Buffer.from('not gzip at all')]);
    assert.match(corrupt.error.message, /gzip-encoded upstream response cannot be decoded/);
  });

  it('refuses an object larger than masking.maxObjectBytes, naming the limit and the key', async () => {
    const small: MaskingConfig = { ...config, maxObjectBytes: 1024 };
    const big = secret('big');
    big.data.blob = b64(`CANARY${'x'.repeat(2000)}`);
    for (const [overrides, body] of [
      [{}, JSON.stringify(big)],
      [{}, JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', items: [secret('ok'), big] })],
      [
        { isWatch: true },
        `${JSON.stringify({ type: 'ADDED', object: secret('ok') })}\n${JSON.stringify({ type: 'ADDED', object: big })}\n`,
      ],
    ] as const) {
      const plan = createResponseMasker(small).transform(meta(overrides));
      assert.equal(plan.kind, 'mask');
      if (plan.kind !== 'mask') return;
      const { error } = await runFailing(plan.stream, splitEvery(Buffer.from(body), 100));
      assert.match(error.message, /larger than the gateway's masking limit of 1024 bytes/);
      assert.doesNotMatch(error.message, /masking\.maxObjectBytes/);
      assert.match(String(error.operatorDetail), /masking\.maxObjectBytes/);
    }
  });
});

describe('response masker: watch', () => {
  const events = [
    { type: 'ADDED', object: secret('a') },
    {
      type: 'MODIFIED',
      object: {
        kind: 'Table',
        apiVersion: 'meta.k8s.io/v1',
        rows: [{ cells: ['b', 'CANARY-b-ü😀'], object: secret('b') }],
      },
    },
  ];
  const body = Buffer.from(events.map((event) => `${JSON.stringify(event)}\n`).join(''));
  const expected = events.map((event) => createObjectMasker(config).maskObject(event).value);

  function parseLines(out: string): unknown[] {
    assert.ok(out.endsWith('\n'));
    return out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
  }

  it('masks events split at every byte position, including inside multi-byte UTF-8 characters', async () => {
    assert.ok(
      body.length > Buffer.from(body.toString('latin1')).length - body.length,
      'the stream holds multi-byte characters',
    );
    for (let at = 1; at < body.length; at++) {
      const out = await run(maskStream({ isWatch: true }), [body.subarray(0, at), body.subarray(at)]);
      assertNoCanary(out);
      assert.deepEqual(parseLines(out), expected, `split at ${at}`);
    }
    assert.deepEqual(parseLines(await run(maskStream({ isWatch: true }), splitEvery(body, 1))), expected);
  });

  it('accepts events without newlines between them (application/json;stream=watch)', async () => {
    const joined = Buffer.from(events.map((event) => JSON.stringify(event)).join(''));
    assert.deepEqual(
      parseLines(await run(maskStream({ contentType: 'application/json;stream=watch' }), [joined])),
      expected,
    );
  });

  it('forwards each event as soon as it is complete, before the stream ends', async () => {
    const stream = maskStream({ isWatch: true });
    const first = body.indexOf('\n') + 1;
    stream.write(body.subarray(0, first + 5)); // the first event and the start of the second
    const [chunk] = (await once(stream, 'data')) as [Buffer];
    assert.deepEqual(JSON.parse(chunk.toString()), expected[0]);
    assert.equal(stream.writableEnded, false);
    const rest = text(stream);
    stream.end(body.subarray(first + 5));
    assert.deepEqual(parseLines(await rest), [expected[1]]);
  });
});
