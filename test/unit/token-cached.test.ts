// The cache-hit path of `hoopgate token` (token-cached.cts): it answers only what the cache fully
// answers and leaves everything else to the full command; its SHA-256 names the same files as
// node:crypto would.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import tokenCached from '../../packages/gateway/src/cli/token-cached.cjs';

const { cachedOidcCredential, oidcCacheFileName, sha256Hex } = tokenCached;

test('sha256Hex agrees with node:crypto on any string, block boundaries included', () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000])
    assert.equal(sha256Hex('a'.repeat(length)), createHash('sha256').update('a'.repeat(length)).digest('hex'));
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      assert.equal(sha256Hex(text), createHash('sha256').update(text, 'utf8').digest('hex'));
    }),
    { numRuns: 300 },
  );
});

describe('cachedOidcCredential', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-token-cached-'));
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const issuer = 'https://idp.example.com/realms/agents';
  const request = { issuer, clientId: 'bot', audience: 'hoopgate' };
  const argv = (extra: string[] = []) => [
    '--issuer',
    issuer,
    '--client-id',
    'bot',
    '--audience',
    'hoopgate',
    '--cache-dir',
    join(dir, 'cache'),
    ...extra,
  ];
  const env = { HOOPGATE_CLIENT_SECRET: 's3cret' };
  const file = () => join(dir, 'cache', oidcCacheFileName(issuer, 'bot', 'hoopgate'));
  const writeCached = (content: object, mode = 0o600) => {
    rmSync(file(), { force: true });
    writeFileSync(file(), JSON.stringify(content), { mode });
    chmodSync(file(), mode);
  };
  const valid = { ...request, token: 'tok.en.value', expiresAt: now + 3_600_000 };

  before(() => {
    mkdirSync(join(dir, 'cache'), { mode: 0o700 });
    writeFileSync(join(dir, 'secret'), 's3cret\n');
    writeFileSync(join(dir, 'empty-secret'), '\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a cached, unexpired token of the same request: the ExecCredential line', () => {
    writeCached(valid);
    assert.equal(
      cachedOidcCredential(argv(), env, dir, now),
      '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok.en.value","expirationTimestamp":"2026-12-07T13:00:00Z"}}\n',
    );
    const beta = cachedOidcCredential(
      argv(['--client-secret-file', 'secret', '--client-auth=post']),
      { KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1beta1"}' },
      dir,
      now,
    );
    assert.match(beta ?? '', /^\{"apiVersion":"client\.authentication\.k8s\.io\/v1beta1"/);
    // $XDG_CACHE_HOME/hoopgate when no --cache-dir.
    mkdirSync(join(dir, 'xdg', 'hoopgate'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'xdg', 'hoopgate', oidcCacheFileName(issuer, 'bot', 'hoopgate')), JSON.stringify(valid), {
      mode: 0o600,
    });
    const xdg = cachedOidcCredential(argv().slice(0, 6), { ...env, XDG_CACHE_HOME: join(dir, 'xdg') }, dir, now);
    assert.match(xdg ?? '', /"token":"tok\.en\.value"/);
  });

  const leftToTheFullPath: [string, () => void, string[], Record<string, string | undefined>][] = [
    ['within a minute of expiry', () => writeCached({ ...valid, expiresAt: now + 60_000 }), argv(), env],
    ['a cache file others can read', () => writeCached(valid, 0o644), argv(), env],
    ['another request in the file', () => writeCached({ ...valid, audience: 'other' }), argv(), env],
    ['a token that is not a string', () => writeCached({ ...valid, token: 42 }), argv(), env],
    ['a file that is not JSON', () => writeFileSync(file(), 'nope', { mode: 0o600 }), argv(), env],
    ['--no-cache', () => writeCached(valid), argv(['--no-cache']), env],
    ['an unknown argument', () => writeCached(valid), argv(['--bogus', '1']), env],
    ['an argument given twice', () => writeCached(valid), argv(['--audience', 'hoopgate']), env],
    ['--help', () => writeCached(valid), argv(['--help']), env],
    ['the SAML mode', () => writeCached(valid), ['--gateway', 'https://gw', '--saml-assertion-file', 'a'], env],
    ['no client secret', () => writeCached(valid), argv(), {}],
    ['an empty client secret file', () => writeCached(valid), argv(['--client-secret-file', 'empty-secret']), {}],
    ['a missing client secret file', () => writeCached(valid), argv(['--client-secret-file', 'missing']), env],
    [
      'two secret sources',
      () => writeCached(valid),
      argv(['--client-secret', 'x', '--client-secret-file', 'secret']),
      {},
    ],
    ['a wrong --client-auth', () => writeCached(valid), argv(['--client-auth', 'jwt']), env],
    ['a bad KUBERNETES_EXEC_INFO', () => writeCached(valid), argv(), { ...env, KUBERNETES_EXEC_INFO: '{' }],
    [
      'an unsupported ExecCredential version',
      () => writeCached(valid),
      argv(),
      { ...env, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}' },
    ],
  ];
  for (const [what, arrange, args, environment] of leftToTheFullPath) {
    test(`leaves to the full command: ${what}`, () => {
      arrange();
      assert.equal(cachedOidcCredential(args, environment, dir, now), undefined);
    });
  }

  test('leaves to the full command: a symbolic link, a plain-http or odd issuer', () => {
    writeCached(valid);
    const link = join(dir, 'link-cache');
    mkdirSync(link, { mode: 0o700 });
    symlinkSync(file(), join(link, oidcCacheFileName(issuer, 'bot', 'hoopgate')));
    assert.equal(cachedOidcCredential([...argv().slice(0, 6), '--cache-dir', link], env, dir, now), undefined);
    for (const odd of [
      'http://127.0.0.1:1234',
      'https://user@idp.example.com',
      'https://idp.example.com/?q=1',
      'not a url',
    ]) {
      const args = argv();
      args[1] = odd;
      writeFileSync(
        join(dir, 'cache', oidcCacheFileName(odd, 'bot', 'hoopgate')),
        JSON.stringify({ ...valid, issuer: odd }),
        {
          mode: 0o600,
        },
      );
      assert.equal(cachedOidcCredential(args, env, dir, now), undefined, odd);
    }
  });
});
