// The exec-credential plugin plumbing both `hoopgate token` modes share (OIDC in token.ts, SAML in
// token-saml.ts) on the full path: the ExecCredential version, the on-disk token cache, and the
// trust of a token request.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { HoopError } from '../lib/errors.js';
import tokenCached from './token-cached.cjs';

// The rules the cache-hit path shares live in token-cached.cts (CommonJS), which the bin loads alone.
export const {
  execCredentialLine,
  oidcCacheFileName,
  oidcTokenOptions,
  readTokenArgs,
  rfc3339,
  tokenCacheDir,
  UsageError,
} = tokenCached;
const { execApiVersionOf, readCachedTokenSync } = tokenCached;

/** kubectl announces the ExecCredential version it speaks in KUBERNETES_EXEC_INFO; answer in kind. */
export function execApiVersion(execInfo: string | undefined): string {
  const version = execApiVersionOf(execInfo);
  if ('problem' in version) throw new HoopError('ERR_BAD_REQUEST', version.problem);
  return version.apiVersion;
}

/** The cache rules of every mode (token-cached.cts): a private regular file of ours, same request, not about to expire. */
export async function readCachedToken<T extends { token: string; expiresAt: number }>(
  file: string,
  matches: (cached: Partial<T>) => boolean,
  now: number,
): Promise<T | undefined> {
  return readCachedTokenSync(file, matches, now);
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

/**
 * The trust of a token request when no `--ca-file` names the server's CA: Node's roots plus the PEM
 * bundle in HOOPGATE_EXTRA_CA_CERTS, or undefined (Node's default trust) when that is unset. A
 * kubeconfig written by `hoopgate kubeconfig` empties NODE_EXTRA_CA_CERTS for the plugin, so Node
 * does not parse a corporate bundle at every kubectl call, and passes the bundle here instead: it is
 * read only when a token must be fetched. NODE_EXTRA_CA_CERTS, if still set, is kept too, since an
 * explicit CA list replaces Node's default store.
 */
export async function extraCaBundle(env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  const file = env.HOOPGATE_EXTRA_CA_CERTS;
  if (file === undefined || file === '') return undefined;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new HoopError(
      'ERR_CONFIG',
      `cannot read HOOPGATE_EXTRA_CA_CERTS file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}): fix the path in the kubeconfig's exec env, or remove the variable`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new HoopError(
      'ERR_CONFIG',
      `HOOPGATE_EXTRA_CA_CERTS file ${file} holds no PEM certificate: point it at a CA bundle (PEM), or remove the variable`,
    );
  const bundle = [...rootCertificates, pem];
  const nodeExtra = env.NODE_EXTRA_CA_CERTS;
  if (nodeExtra !== undefined && nodeExtra !== '' && nodeExtra !== file) {
    // Node read it at start (and warned if it could not); an unreadable one is skipped here as there.
    const text = await readFile(nodeExtra, 'utf8').catch(() => '');
    if (text !== '') bundle.push(text);
  }
  return bundle.join('\n');
}
