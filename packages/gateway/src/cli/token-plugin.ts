// The exec-credential plugin plumbing both `hoopgate token` modes share (OIDC in token.ts, SAML in
// token-saml.ts): the argument reader, the ExecCredential version, and the on-disk token cache.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { HoopError } from '../lib/errors.js';
import type { CliIo } from './io.js';

const execApiVersions = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;
/** A cached token is reused only while it has more than this left: a request must not start with a dying token. */
const refreshMarginMs = 60_000;

/** `--cache-dir`, else `$XDG_CACHE_HOME/hoopgate` or `~/.cache/hoopgate`; none with `--no-cache`. */
export function tokenCacheDir(values: ReadonlyMap<string, string>, noCache: boolean, io: CliIo): string | undefined {
  if (noCache) return undefined;
  const dir = values.get('cache-dir');
  const cacheHome = io.env.XDG_CACHE_HOME || join(io.env.HOME || homedir(), '.cache');
  return dir === undefined ? join(cacheHome, 'hoopgate') : resolve(io.cwd, dir);
}

/** A wrong `hoopgate token` command line: the usage follows the message. */
export class UsageError extends Error {}

/**
 * `--name value`, `--name=value` and `--no-cache`, each name at most once: the argument reader of
 * both modes (OIDC here, SAML in token-saml.ts). kubectl runs the plugin with exactly what the
 * kubeconfig says, so anything unknown is an error, never ignored.
 */
export function readTokenArgs(
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

/** kubectl announces the ExecCredential version it speaks in KUBERNETES_EXEC_INFO; answer in kind. */
export function execApiVersion(execInfo: string | undefined): string {
  if (execInfo === undefined || execInfo === '') return execApiVersions[0];
  let parsed: unknown;
  try {
    parsed = JSON.parse(execInfo);
  } catch {
    throw new HoopError('ERR_BAD_REQUEST', 'KUBERNETES_EXEC_INFO is not valid JSON');
  }
  const apiVersion = (parsed as { apiVersion?: unknown } | null)?.apiVersion;
  if (apiVersion === undefined) return execApiVersions[0];
  if (typeof apiVersion === 'string' && (execApiVersions as readonly string[]).includes(apiVersion)) return apiVersion;
  throw new HoopError(
    'ERR_BAD_REQUEST',
    `KUBERNETES_EXEC_INFO asks for ${JSON.stringify(apiVersion)}; supported: ${execApiVersions.join(', ')}`,
  );
}

/**
 * The cache rules of every mode: a regular file of ours, mode 0600, for the same request, holding
 * a token with more than refreshMarginMs left; anything else is ignored (and later replaced).
 */
export async function readCachedToken<T extends { token: string; expiresAt: number }>(
  file: string,
  matches: (cached: Partial<T>) => boolean,
  now: number,
): Promise<T | undefined> {
  try {
    const stat = await lstat(file);
    // A cache anyone else could read or swap is not trusted; it is simply replaced.
    if (!stat.isFile() || (stat.mode & 0o077) !== 0 || (process.getuid !== undefined && stat.uid !== process.getuid()))
      return undefined;
    const cached = JSON.parse(await readFile(file, 'utf8')) as Partial<T>;
    if (!matches(cached)) return undefined;
    if (typeof cached.token !== 'string' || typeof cached.expiresAt !== 'number') return undefined;
    if (cached.expiresAt - refreshMarginMs <= now) return undefined;
    return cached as T;
  } catch {
    return undefined;
  }
}

export async function writeCache(file: string, credential: object): Promise<void> {
  const dir = join(file, '..');
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(temp, JSON.stringify(credential), { mode: 0o600, flag: 'wx' });
    await rename(temp, file); // atomic: concurrent kubectl calls never read half a file
  } catch {
    // A cache that cannot be written costs one token request per call, nothing more.
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}
