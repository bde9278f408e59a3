// `hoopgate token`: a kubectl exec credential plugin. Gets an access token for the gateway's
// audience with the client-credentials grant, caches it on disk (0600) until a minute before it
// expires, and prints the ExecCredential kubectl expects. The client secret is never printed.
import type * as OpenIdClient from 'openid-client';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { IssuerFetch } from '../authn/issuer-fetch.js';
import { parseIssuerUrl } from '../authn/issuer-url.js';
import { HoopError, isHoopError } from '../lib/errors.js';
import type { CliCommand, CliIo } from './io.js';
import {
  execApiVersion,
  execCredentialLine,
  extraCaBundle,
  oidcCacheFileName,
  oidcTokenOptions,
  readCachedToken,
  readTokenArgs,
  rfc3339,
  tokenCacheDir,
  UsageError,
  writeCache,
} from './token-plugin.js';

export { execApiVersion, readCachedToken, readTokenArgs, rfc3339, tokenCacheDir, UsageError, writeCache };

const usage = `usage: hoopgate token --issuer URL --client-id ID (--client-secret S | --client-secret-file F | env HOOPGATE_CLIENT_SECRET)
                      --audience AUD [--ca-file F] [--cache-dir D] [--client-auth basic|post] [--no-cache]
       hoopgate token --gateway URL (--saml-assertion-file F | --saml-assertion-command CMD) [--ca-file F] [--cache-dir D] [--no-cache]`;

interface TokenOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  caFile?: string;
  cacheDir?: string;
  /** Read only on a miss: the extra trust of the IdP request (HOOPGATE_EXTRA_CA_CERTS). */
  env: Readonly<Record<string, string | undefined>>;
  clientAuth: 'basic' | 'post';
}

interface CachedToken {
  issuer: string;
  clientId: string;
  audience: string;
  token: string;
  /** ms since epoch; absent when the IdP said nothing about expiry (then it is not cached). */
  expiresAt: number;
}

export interface TokenCommandDeps {
  clock?: () => number;
  /** Replaces the https client (tests count requests with it). */
  fetch?: IssuerFetch;
}

export function createTokenCommand(deps: TokenCommandDeps = {}): CliCommand {
  const clock = deps.clock ?? Date.now;
  return async (argv, io) => {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout(`${usage}\n`);
      return 0;
    }
    // `--gateway URL --saml-assertion-…`: the SAML exchange mode (docs/saml.md), in token-saml.ts.
    if (argv.some((arg) => arg === '--gateway' || arg.startsWith('--gateway='))) {
      const { runSamlToken } = await import('./token-saml.js');
      return runSamlToken(argv, io, { clock });
    }
    let secret: string | undefined;
    try {
      const options = await parseOptions(argv, io);
      secret = options.clientSecret;
      const apiVersion = execApiVersion(io.env.KUBERNETES_EXEC_INFO);
      const cacheFile = options.cacheDir === undefined ? undefined : join(options.cacheDir, cacheFileName(options));

      let credential = cacheFile === undefined ? undefined : await readCache(cacheFile, options, clock());
      if (credential === undefined) {
        credential = await requestToken(options, deps.fetch, clock());
        if (cacheFile !== undefined && Number.isFinite(credential.expiresAt)) await writeCache(cacheFile, credential);
      }
      io.stdout(execCredentialLine(apiVersion, credential.token, credential.expiresAt));
      return 0;
    } catch (error) {
      let message = error instanceof Error ? error.message : String(error);
      if (secret !== undefined && secret !== '') message = message.split(secret).join('***');
      io.stderr(`hoopgate token: ${message}\n`);
      if (error instanceof UsageError) io.stderr(`${usage}\n`);
      return 1;
    }
  };
}

export const run: CliCommand = createTokenCommand();

async function parseOptions(argv: readonly string[], io: CliIo): Promise<TokenOptions> {
  const { values, noCache } = readTokenArgs(argv, oidcTokenOptions);
  const required = (name: string): string => {
    const value = values.get(name);
    if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
    return value;
  };
  const issuer = required('issuer');
  const clientId = required('client-id');
  const audience = required('audience');
  parseIssuerUrl(issuer);

  const sources = ['client-secret', 'client-secret-file'].filter((n) => values.has(n));
  if (sources.length > 1) throw new UsageError('give only one of --client-secret and --client-secret-file');
  let clientSecret: string | undefined;
  if (values.has('client-secret')) clientSecret = values.get('client-secret');
  else if (values.has('client-secret-file')) {
    const file = resolve(io.cwd, values.get('client-secret-file') ?? '');
    try {
      clientSecret = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw new HoopError(
        'ERR_CONFIG',
        `cannot read the client secret file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  } else clientSecret = io.env.HOOPGATE_CLIENT_SECRET;
  if (clientSecret === undefined || clientSecret === '') {
    throw new UsageError(
      'no client secret: pass --client-secret-file F (or --client-secret S, or set HOOPGATE_CLIENT_SECRET)',
    );
  }

  const clientAuth = values.get('client-auth') ?? 'basic';
  if (clientAuth !== 'basic' && clientAuth !== 'post') throw new UsageError('--client-auth must be "basic" or "post"');

  const options: TokenOptions = { issuer, clientId, clientSecret, audience, clientAuth, env: io.env };
  const caFile = values.get('ca-file');
  if (caFile !== undefined) options.caFile = resolve(io.cwd, caFile);
  const cacheDir = tokenCacheDir(values, noCache, io);
  if (cacheDir !== undefined) options.cacheDir = cacheDir;
  return options;
}

async function requestToken(
  options: TokenOptions,
  injected: IssuerFetch | undefined,
  now: number,
): Promise<CachedToken> {
  const issuerUrl = parseIssuerUrl(options.issuer);
  // kubectl runs this command before every call; a cached token (the usual case) needs neither the
  // OpenID client nor an HTTP client, so they load only here.
  const [oidc, { createIssuerFetch }] = await Promise.all([
    import('openid-client'),
    import('../authn/issuer-fetch.js'),
  ]);
  const describe = (error: unknown) => describeError(error, oidc);
  // --ca-file (a private IdP's CA) replaces the roots; else HOOPGATE_EXTRA_CA_CERTS adds to them.
  const extraCa = options.caFile === undefined ? await extraCaBundle(options.env) : undefined;
  const issuerFetch =
    injected ??
    createIssuerFetch(
      options.caFile !== undefined ? { caFile: options.caFile } : extraCa !== undefined ? { ca: extraCa } : {},
    );
  try {
    const auth =
      options.clientAuth === 'post'
        ? oidc.ClientSecretPost(options.clientSecret)
        : oidc.ClientSecretBasic(options.clientSecret);
    let config: Awaited<ReturnType<typeof oidc.discovery>>;
    try {
      config = await oidc.discovery(issuerUrl, options.clientId, undefined, auth, {
        [oidc.customFetch]: issuerFetch as never,
        timeout: 10,
        ...(issuerUrl.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
    } catch (error) {
      throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `cannot discover issuer ${options.issuer}: ${describe(error)}`, {
        cause: error,
      });
    }
    // RFC 8707 wants a URI; a plain audience name goes as Auth0's `audience` parameter instead.
    const parameters: Record<string, string> = URL.canParse(options.audience)
      ? { resource: options.audience }
      : { audience: options.audience };
    let response: Awaited<ReturnType<typeof oidc.clientCredentialsGrant>>;
    try {
      response = await oidc.clientCredentialsGrant(config, parameters);
    } catch (error) {
      throw new HoopError(
        'ERR_UNAUTHENTICATED',
        `token request to ${options.issuer} as client ${JSON.stringify(options.clientId)} failed: ${describe(error)}`,
        { cause: error },
      );
    }
    const token = response.access_token;
    const expiries: number[] = [];
    const expiresIn = response.expiresIn();
    if (expiresIn !== undefined) expiries.push(now + expiresIn * 1000);
    const claims = unverifiedClaims(token);
    if (claims !== undefined) {
      if (typeof claims.exp === 'number') expiries.push(claims.exp * 1000);
      const aud = claims.aud;
      const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!audiences.includes(options.audience)) {
        // Fail here, not with a puzzling 401 from the gateway on every kubectl call.
        throw new HoopError(
          'ERR_CONFIG',
          `the issuer returned a token for audience ${JSON.stringify(aud ?? null)}, not ${JSON.stringify(options.audience)}: configure the client's audience at the IdP`,
        );
      }
    }
    return {
      issuer: options.issuer,
      clientId: options.clientId,
      audience: options.audience,
      token,
      expiresAt: expiries.length > 0 ? Math.min(...expiries) : Number.POSITIVE_INFINITY,
    };
  } finally {
    if (injected === undefined) await (issuerFetch as ReturnType<typeof createIssuerFetch>).close();
  }
}

function unverifiedClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    return claims !== null && typeof claims === 'object' ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function describeError(error: unknown, oidc: typeof OpenIdClient): string {
  if (isHoopError(error)) return error.message;
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    // A 401 from the token endpoint carries the OAuth error in the challenge, not the body.
    const parameters = error.cause[0]?.parameters ?? {};
    const code = parameters.error ?? error.message;
    return `${code}${parameters.error_description ? ` (${parameters.error_description})` : ''}, HTTP ${error.status}`;
  }
  if (error instanceof oidc.ResponseBodyError) {
    return `${error.error}${error.error_description ? ` (${error.error_description})` : ''}, HTTP ${error.status}`;
  }
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error && cause.message !== error.message ? ` (${cause.message})` : '';
    return `${error.message}${detail}`;
  }
  return String(error);
}

function cacheFileName(options: TokenOptions): string {
  return oidcCacheFileName(options.issuer, options.clientId, options.audience);
}

async function readCache(file: string, options: TokenOptions, now: number): Promise<CachedToken | undefined> {
  return readCachedToken<CachedToken>(
    file,
    (cached) =>
      cached.issuer === options.issuer && cached.clientId === options.clientId && cached.audience === options.audience,
    now,
  );
}
