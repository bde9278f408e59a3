// Property tests of the pure parts an attacker reaches first: the request classifier against the
// API server's own cases, the canonical-path check, and the streaming response masker, which must
// never emit a Secret value however the upstream's bytes are chunked.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkCanonicalPath } from '../../packages/gateway/src/kube/canonical-path.js';
import { parseRequestInfo, type RequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createResponseMasker } from '../../packages/gateway/src/proxy/mask/index.js';
import { fuzzRuns, fuzzSeeds, seedNote } from './seeds.js';

const fixture = JSON.parse(
  readFileSync(new URL('../../packages/sim/fixtures/requestinfo.json', import.meta.url), 'utf8'),
) as {
  cases: { method: string; url: string; expect: Partial<RequestInfo> }[];
};

async function check<T>(
  name: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => boolean | void | Promise<boolean | void>,
  runs: number,
  fixed: readonly number[] = [1],
): Promise<void> {
  for (const seed of fuzzSeeds(fixed)) {
    console.log(`${name}: ${seedNote(seed)}`);
    await fc.assert(
      fc.asyncProperty(arbitrary, async (value) => predicate(value)),
      { seed, numRuns: fuzzRuns(runs) },
    );
  }
}

const pathChar = fc.constantFrom(
  ..."abcz09-._~!$&'()*+,;=:@/%25%2F%2f%2E%2e%5C%00%0a%C3%A9\\ ?#é\u0000\u007f".split(''),
  '%2F',
  '%2e',
  '..',
  '.',
  '//',
  '%',
  '%zz',
  '%C5%BF',
);
const rawPath = fc.array(pathChar, { maxLength: 40 }).map((parts) => `/${parts.join('')}`);
const anyMethod = fc.constantFrom(
  'GET',
  'HEAD',
  'OPTIONS',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'PROPFIND',
  'get',
  'M-SEARCH',
);

describe('properties of the pure parts', () => {
  test('request-info: fixture cases keep their classification with unrelated query parameters appended', async () => {
    const extraParam = fc
      .tuple(fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[A-Za-z0-9%._-]{0,12}$/))
      .map(([k, v]) => `zz${k}=${v}`);
    await check(
      'request-info fixture',
      fc.tuple(fc.constantFrom(...fixture.cases), fc.array(extraParam, { maxLength: 4 })),
      ([c, extra]) => {
        if (extra.length === 0) return;
        const url = `${c.url}${c.url.includes('?') ? '&' : '?'}${extra.join('&')}`;
        const info = parseRequestInfo(c.method, url);
        for (const [key, value] of Object.entries(c.expect))
          assert.deepEqual(info[key as keyof RequestInfo], value, `${key} of ${c.method} ${url}`);
      },
      200,
    );
  });

  test('request-info: any method and path either classifies or is a 400 HoopError, never another exception', async () => {
    await check(
      'request-info any path',
      fc.tuple(anyMethod, rawPath),
      ([method, path]) => {
        try {
          const info = parseRequestInfo(method, path);
          assert.equal(typeof info.verb, 'string');
        } catch (error) {
          assert.ok(error instanceof HoopError && error.status === 400, `${method} ${path}: ${String(error)}`);
        }
      },
      500,
    );
  });

  test('canonical path: an accepted path reads the same decoded and raw (no dot segment, separator or control character after decoding)', async () => {
    await check(
      'canonical path',
      rawPath,
      (path) => {
        const result = checkCanonicalPath(path);
        if (!result.ok) {
          assert.ok(result.problem.length > 0);
          return;
        }
        const pathPart = path.split('?', 1)[0]!;
        assert.ok(!pathPart.includes('//'));
        for (const segment of pathPart.split('/')) {
          // Byte-wise, as Go's PathUnescape: any %XX, valid UTF-8 or not.
          const decoded = segment.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) =>
            String.fromCharCode(Number.parseInt(hex, 16)),
          );
          assert.ok(decoded !== '.' && decoded !== '..', `dot segment ${segment} in ${path}`);
          // eslint-disable-next-line no-control-regex -- looking for control characters is the point
          assert.ok(!/[/\\\u0000-\u001f\u007f]/.test(decoded), `separator or control in ${segment} of ${path}`);
        }
      },
      1000,
    );
  });

  test('json-stream masker: no Secret value reaches the output, however the body is chunked', async () => {
    const masker = createResponseMasker({ secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 });
    const value = fc.string({
      unit: fc.constantFrom('a', 'Z', '"', '\\', 'ü', '😀', '\n', '\u0001', '{', '}', ','),
      minLength: 1,
      maxLength: 12,
    });
    const secretArb = fc.record({
      name: fc.stringMatching(/^[a-z]{1,8}$/),
      key: fc.constantFrom('password', 'token', 'a"b', 'ü'),
      value,
      string: fc.boolean(),
    });
    const body = fc.record({
      items: fc.array(secretArb, { minLength: 1, maxLength: 4 }),
      watch: fc.boolean(),
      cuts: fc.array(fc.nat(), { maxLength: 12 }),
    });
    await check(
      'json-stream masker',
      body,
      async ({ items, watch, cuts }) => {
        const secrets = items.map((s, i) => ({
          kind: 'Secret',
          apiVersion: 'v1',
          metadata: { name: `${s.name}${i}`, namespace: 'default' },
          ...(s.string
            ? { stringData: { [s.key]: `CANARY${i}${s.value}` } }
            : { data: { [s.key]: Buffer.from(`CANARY${i}${s.value}`).toString('base64') } }),
        }));
        const json = watch
          ? secrets.map((object) => `${JSON.stringify({ type: 'ADDED', object })}\n`).join('')
          : JSON.stringify({
              kind: 'SecretList',
              apiVersion: 'v1',
              metadata: {},
              items: secrets.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
            });
        const bytes = Buffer.from(json);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const point of [...points, bytes.length]) {
          chunks.push(bytes.subarray(at, point));
          at = point;
        }
        const plan = masker.transform({
          contentType: 'application/json',
          contentEncoding: undefined,
          isWatch: watch,
          status: 200,
        });
        assert.equal(plan.kind, 'mask');
        if (plan.kind !== 'mask') return;
        const output = await text(Readable.from(chunks.filter((c) => c.length > 0)).pipe(plan.stream)).catch(
          (error: unknown) => `refused: ${String(error)}`,
        );
        for (let i = 0; i < items.length; i += 1) {
          const canary = `CANARY${i}${items[i]!.value}`;
          assert.ok(!output.includes(`CANARY${i}`), `canary ${i} leaked: ${output.slice(0, 300)}`);
          assert.ok(!output.includes(Buffer.from(canary).toString('base64')), `base64 canary ${i} leaked`);
          assert.ok(!output.includes(JSON.stringify(canary).slice(1, -1)), `escaped canary ${i} leaked`);
        }
      },
      200,
    );
  });
});
