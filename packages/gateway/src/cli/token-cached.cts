// The cache-hit path of `hoopgate token` — kubectl runs the plugin before every call, so this is
// start-up time an agent pays on each kubectl command — and the rules both paths share (argument
// grammar, cache file name and trust, ExecCredential line), so the two cannot drift.
//
// CommonJS on purpose: the bin (CommonJS too, bin/package.json) requires this file and nothing
// else, so a cache hit never starts the ESM loader (which reads modules through fs/promises and so
// starts libuv's thread pool) and never builds the ESM facade of node:fs (which reads every export;
// fs's lazy ReadStream getter then loads the whole streams stack). It answers only when the cache
// answers the exact request; anything else — a miss, a token within a minute of expiry, a cache
// file not ours or readable by others, a wrong or unusual argument, the SAML mode, --help — returns
// undefined and the full command (token.ts, through main.js) runs, with its errors.
import fs = require('node:fs');
import path = require('node:path');

/** A wrong `hoopgate token` command line: the usage follows the message. */
class UsageError extends Error {}

const execApiVersions = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;
/** A cached token is reused only while it has more than this left: a request must not start with a dying token. */
const refreshMarginMs = 60_000;
/** The valued options of the OIDC mode (client credentials). */
const oidcTokenOptions: ReadonlySet<string> = new Set([
  'issuer',
  'client-id',
  'client-secret',
  'client-secret-file',
  'audience',
  'ca-file',
  'cache-dir',
  'client-auth',
]);

/**
 * `--name value`, `--name=value` and `--no-cache`, each name at most once: the argument reader of
 * both modes (OIDC, SAML in token-saml.ts). kubectl runs the plugin with exactly what the
 * kubeconfig says, so anything unknown is an error, never ignored.
 */
function readTokenArgs(
  argv: readonly string[],
  valued: ReadonlySet<string>,
  mode = '',
): { values: Map<string, string>; noCache: boolean } {
  const values = new Map<string, string>();
  let noCache = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--no-cache') {
      noCache = true;
      continue;
    }
    const match = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    const name = match?.[1];
    if (name === undefined || !valued.has(name))
      throw new UsageError(`unknown argument ${JSON.stringify(arg.startsWith('--') ? arg.split('=')[0] : arg)}${mode}`);
    let value = match?.[2];
    if (value === undefined) {
      value = argv[i + 1];
      i += 1;
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    if (values.has(name)) throw new UsageError(`--${name} is given twice`);
    values.set(name, value);
  }
  return { values, noCache };
}

/** kubectl announces the ExecCredential version it speaks in KUBERNETES_EXEC_INFO: the one to answer in, or what is wrong. */
function execApiVersionOf(execInfo: string | undefined): { apiVersion: string } | { problem: string } {
  if (execInfo === undefined || execInfo === '') return { apiVersion: execApiVersions[0] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(execInfo);
  } catch {
    return { problem: 'KUBERNETES_EXEC_INFO is not valid JSON' };
  }
  const apiVersion = (parsed as { apiVersion?: unknown } | null)?.apiVersion;
  if (apiVersion === undefined) return { apiVersion: execApiVersions[0] };
  if (typeof apiVersion === 'string' && (execApiVersions as readonly string[]).includes(apiVersion))
    return { apiVersion };
  return {
    problem: `KUBERNETES_EXEC_INFO asks for ${JSON.stringify(apiVersion)}; supported: ${execApiVersions.join(', ')}`,
  };
}

/** `--cache-dir`, else `$XDG_CACHE_HOME/hoopgate` or `~/.cache/hoopgate`; none with `--no-cache`. */
function tokenCacheDir(
  values: ReadonlyMap<string, string>,
  noCache: boolean,
  io: { env: Readonly<Record<string, string | undefined>>; cwd: string },
): string | undefined {
  if (noCache) return undefined;
  const { join, resolve } = path;
  const dir = values.get('cache-dir');
  if (dir !== undefined) return resolve(io.cwd, dir);
  const home = io.env.HOME || process.getBuiltinModule('node:os').homedir();
  return join(io.env.XDG_CACHE_HOME || join(home, '.cache'), 'hoopgate');
}

/** The OIDC mode's cache file: one per issuer, client and audience. */
function oidcCacheFileName(issuer: string, clientId: string, audience: string): string {
  return `token-${sha256Hex(JSON.stringify([issuer, clientId, audience])).slice(0, 40)}.json`;
}

const sha256K = Uint32Array.from(
  '428a2f98 71374491 b5c0fbcf e9b5dba5 3956c25b 59f111f1 923f82a4 ab1c5ed5 d807aa98 12835b01 243185be 550c7dc3 72be5d74 80deb1fe 9bdc06a7 c19bf174 e49b69c1 efbe4786 0fc19dc6 240ca1cc 2de92c6f 4a7484aa 5cb0a9dc 76f988da 983e5152 a831c66d b00327c8 bf597fc7 c6e00bf3 d5a79147 06ca6351 14292967 27b70a85 2e1b2138 4d2c6dfc 53380d13 650a7354 766a0abb 81c2c92e 92722c85 a2bfe8a1 a81a664b c24b8b70 c76c51a3 d192e819 d6990624 f40e3585 106aa070 19a4c116 1e376c08 2748774c 34b0bcb5 391c0cb3 4ed8aa4a 5b9cca4f 682e6ff3 748f82ee 78a5636f 84c87814 8cc70208 90befffa a4506ceb bef9a3f7 c67178f2'
    .split(' ')
    .map((word) => Number.parseInt(word, 16)),
);

/**
 * SHA-256 of a string's UTF-8 bytes, in hex (FIPS 180-4). Here rather than node:crypto, whose
 * loading (ciphers, Diffie-Hellman, the streams stack) costs the cache-hit path several ms at each
 * kubectl call; it names cache files only, and a test checks it against node:crypto.
 */
function sha256Hex(text: string): string {
  const data = new TextEncoder().encode(text);
  const words = new Uint32Array((((data.length + 8) >> 6) + 1) * 16);
  const put = (i: number, byte: number) => (words[i >> 2] = (words[i >> 2] ?? 0) | (byte << (24 - (i % 4) * 8)));
  data.forEach((byte, i) => put(i, byte));
  put(data.length, 0x80);
  words[words.length - 1] = data.length * 8; // a string here is far below 2^32 bits
  const h = Uint32Array.of(
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19,
  );
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < words.length; block += 16) {
    for (let t = 0; t < 64; t += 1) {
      if (t < 16) w[t] = words[block + t] ?? 0;
      else {
        const a = w[t - 15] ?? 0;
        const b = w[t - 2] ?? 0;
        const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
        const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
        w[t] = (w[t - 16] ?? 0) + s0 + (w[t - 7] ?? 0) + s1;
      }
    }
    let [a, b, c, d, e, f, g, hh] = [
      h[0] ?? 0,
      h[1] ?? 0,
      h[2] ?? 0,
      h[3] ?? 0,
      h[4] ?? 0,
      h[5] ?? 0,
      h[6] ?? 0,
      h[7] ?? 0,
    ];
    for (let t = 0; t < 64; t += 1) {
      const t1 =
        (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (sha256K[t] ?? 0) + (w[t] ?? 0)) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const sums = [a, b, c, d, e, f, g, hh];
    for (let i = 0; i < 8; i += 1) h[i] = ((h[i] ?? 0) + (sums[i] ?? 0)) >>> 0;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, '0')).join('');
}

/**
 * The cache rules of every mode: a regular file of ours, mode 0600, for the same request, holding
 * a token with more than refreshMarginMs left; anything else is ignored (and later replaced).
 */
function readCachedTokenSync<T extends { token: string; expiresAt: number }>(
  file: string,
  matches: (cached: Partial<T>) => boolean,
  now: number,
): T | undefined {
  try {
    const { lstatSync, readFileSync } = fs;
    const stat = lstatSync(file);
    // A cache anyone else could read or swap is not trusted; it is simply replaced.
    if (!stat.isFile() || (stat.mode & 0o077) !== 0 || (process.getuid !== undefined && stat.uid !== process.getuid()))
      return undefined;
    const cached = JSON.parse(readFileSync(file, 'utf8')) as Partial<T> | null;
    if (cached === null || typeof cached !== 'object' || !matches(cached)) return undefined;
    if (typeof cached.token !== 'string' || typeof cached.expiresAt !== 'number') return undefined;
    if (cached.expiresAt - refreshMarginMs <= now) return undefined;
    return cached as T;
  } catch {
    return undefined;
  }
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** The line kubectl reads on stdout. */
function execCredentialLine(apiVersion: string, token: string, expiresAt: number): string {
  const status: Record<string, string> = { token };
  if (Number.isFinite(expiresAt)) status.expirationTimestamp = rfc3339(expiresAt);
  return `${JSON.stringify({ apiVersion, kind: 'ExecCredential', status })}\n`;
}

/**
 * The ExecCredential line for an OIDC-mode command line whose token the cache holds, or undefined
 * when the full command must run. Accepts a subset of what token.ts accepts (an https issuer
 * without credentials, query or fragment; a client secret present; a known --client-auth), so it
 * never answers a command line the full path would refuse.
 */
function cachedOidcCredential(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
  now: number,
): string | undefined {
  let parsed: ReturnType<typeof readTokenArgs>;
  try {
    parsed = readTokenArgs(argv, oidcTokenOptions);
  } catch {
    return undefined;
  }
  const { values, noCache } = parsed;
  const issuer = values.get('issuer');
  const clientId = values.get('client-id');
  const audience = values.get('audience');
  if (!issuer || !clientId || !audience || !plainHttpsUrl(issuer)) return undefined;
  if (!hasClientSecret(values, env, cwd)) return undefined;
  const clientAuth = values.get('client-auth');
  if (clientAuth !== undefined && clientAuth !== 'basic' && clientAuth !== 'post') return undefined;
  const version = execApiVersionOf(env.KUBERNETES_EXEC_INFO);
  if (!('apiVersion' in version)) return undefined;
  const dir = tokenCacheDir(values, noCache, { env, cwd });
  if (dir === undefined) return undefined;
  const cached = readCachedTokenSync<{ issuer: string; clientId: string; audience: string } & CachedSecret>(
    path.join(dir, oidcCacheFileName(issuer, clientId, audience)),
    (c) => c.issuer === issuer && c.clientId === clientId && c.audience === audience,
    now,
  );
  return cached === undefined ? undefined : execCredentialLine(version.apiVersion, cached.token, cached.expiresAt);
}

interface CachedSecret {
  token: string;
  expiresAt: number;
}

function plainHttpsUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (
    url.protocol === 'https:' && url.username === '' && url.password === '' && url.search === '' && url.hash === ''
  );
}

/** The full path needs exactly one client secret source giving a non-empty secret; so does this one. */
function hasClientSecret(
  values: ReadonlyMap<string, string>,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): boolean {
  const inline = values.get('client-secret');
  const file = values.get('client-secret-file');
  if (inline !== undefined && file !== undefined) return false;
  if (inline !== undefined) return inline !== '';
  if (file === undefined) return Boolean(env.HOOPGATE_CLIENT_SECRET);
  try {
    return fs.readFileSync(path.resolve(cwd, file), 'utf8').replace(/\r?\n$/, '') !== '';
  } catch {
    return false;
  }
}

export = {
  UsageError,
  execApiVersions,
  refreshMarginMs,
  oidcTokenOptions,
  readTokenArgs,
  execApiVersionOf,
  tokenCacheDir,
  oidcCacheFileName,
  sha256Hex,
  readCachedTokenSync,
  rfc3339,
  execCredentialLine,
  cachedOidcCredential,
};
