// `hoopgate token --gateway URL --saml-assertion-file F | --saml-assertion-command CMD`: the exec
// credential plugin of SAML agents (docs/saml.md). Reads a signed assertion (a file, or the standard
// output of a command run with /bin/sh), exchanges it at the gateway's /hoop/v1/token (RFC 7522),
// caches the token with the OIDC mode's rules, and prints an ExecCredential. The assertion is a
// credential: never printed, never cached.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { isLoopbackUrl } from '../authn/issuer-url.js';
import { HoopError } from '../lib/errors.js';
import type { CliIo } from './io.js';
import {
  execApiVersion,
  extraCaBundle,
  readCachedToken,
  readTokenArgs,
  rfc3339,
  tokenCacheDir,
  UsageError,
  writeCache,
} from './token-plugin.js';

interface SamlTokenOptions {
  gateway: string;
  source: { file: string } | { command: string };
  caFile?: string;
  cacheDir?: string;
}

interface CachedSamlToken {
  gateway: string;
  source: string;
  token: string;
  expiresAt: number;
}

const usage = `usage: hoopgate token --gateway URL (--saml-assertion-file F | --saml-assertion-command CMD) [--ca-file F] [--cache-dir D] [--no-cache]`;
const maxAssertionBytes = 1024 * 1024;
const commandTimeoutMs = 30_000;

export async function runSamlToken(argv: readonly string[], io: CliIo, deps: { clock: () => number }): Promise<number> {
  try {
    const options = parseOptions(argv, io);
    const apiVersion = execApiVersion(io.env.KUBERNETES_EXEC_INFO);
    const sourceKey = 'file' in options.source ? `file:${options.source.file}` : `command:${options.source.command}`;
    const cacheFile =
      options.cacheDir === undefined
        ? undefined
        : join(
            options.cacheDir,
            `saml-${createHash('sha256')
              .update(JSON.stringify([options.gateway, sourceKey]))
              .digest('hex')
              .slice(0, 40)}.json`,
          );
    let credential =
      cacheFile === undefined
        ? undefined
        : await readCachedToken<CachedSamlToken>(
            cacheFile,
            (c) => c.gateway === options.gateway && c.source === sourceKey,
            deps.clock(),
          );
    if (credential === undefined) {
      const assertion = await readAssertion(options, io);
      const { token, expiresAt } = await exchange(options, assertion, deps.clock(), io.env);
      credential = { gateway: options.gateway, source: sourceKey, token, expiresAt };
      if (cacheFile !== undefined) await writeCache(cacheFile, credential);
    }
    io.stdout(
      `${JSON.stringify({ apiVersion, kind: 'ExecCredential', status: { token: credential.token, expirationTimestamp: rfc3339(credential.expiresAt) } })}\n`,
    );
    return 0;
  } catch (error) {
    io.stderr(`hoopgate token: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof UsageError) io.stderr(`${usage}\n`);
    return 1;
  }
}

function parseOptions(argv: readonly string[], io: CliIo): SamlTokenOptions {
  const { values, noCache } = readTokenArgs(
    argv,
    new Set(['gateway', 'saml-assertion-file', 'saml-assertion-command', 'ca-file', 'cache-dir']),
    ' in SAML mode',
  );
  const gatewayText = values.get('gateway') ?? '';
  let gateway: URL;
  try {
    gateway = new URL(gatewayText);
  } catch {
    throw new UsageError(`--gateway must be the gateway's URL, got ${JSON.stringify(gatewayText)}`);
  }
  if (gateway.protocol !== 'https:' && !(gateway.protocol === 'http:' && isLoopbackUrl(gateway))) {
    throw new UsageError(
      '--gateway must be an https URL (plain http only on loopback): the assertion and the token are credentials',
    );
  }
  const file = values.get('saml-assertion-file');
  const command = values.get('saml-assertion-command');
  if ((file === undefined) === (command === undefined))
    throw new UsageError('give exactly one of --saml-assertion-file and --saml-assertion-command');
  const options: SamlTokenOptions = {
    gateway: gateway.origin + gateway.pathname.replace(/\/+$/, ''),
    source: file !== undefined ? { file: resolve(io.cwd, file) } : { command: command ?? '' },
  };
  const caFile = values.get('ca-file');
  if (caFile !== undefined) options.caFile = resolve(io.cwd, caFile);
  const cacheDir = tokenCacheDir(values, noCache, io);
  if (cacheDir !== undefined) options.cacheDir = cacheDir;
  return options;
}

/** The assertion as base64url: XML is encoded, base64 text (what most tools print) is passed on. */
async function readAssertion(options: SamlTokenOptions, io: CliIo): Promise<string> {
  let text: string;
  if ('file' in options.source) {
    try {
      text = await readFile(options.source.file, 'utf8');
    } catch (error) {
      throw new HoopError(
        'ERR_CONFIG',
        `cannot read the assertion file ${options.source.file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  } else {
    const command = options.source.command;
    text = await new Promise<string>((resolveOutput, reject) => {
      execFile(
        '/bin/sh',
        ['-c', command],
        {
          cwd: io.cwd,
          env: { ...io.env } as NodeJS.ProcessEnv,
          timeout: commandTimeoutMs,
          maxBuffer: maxAssertionBytes * 2,
        },
        (error, stdout, stderr) => {
          if (error) {
            const detail = stderr.trim().split('\n').slice(-3).join(' | ');
            reject(
              new HoopError(
                'ERR_CONFIG',
                `the assertion command failed (${error.code ?? error.signal ?? 'error'})${detail === '' ? '' : `: ${detail}`}`,
              ),
            );
          } else resolveOutput(stdout);
        },
      );
    });
  }
  const trimmed = text.trim();
  if (trimmed === '') throw new HoopError('ERR_INVALID_REQUEST', 'the assertion is empty');
  if (trimmed.startsWith('<')) return Buffer.from(trimmed, 'utf8').toString('base64url');
  const compact = trimmed.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact))
    throw new HoopError('ERR_INVALID_REQUEST', 'the assertion is neither XML nor base64 text');
  return compact;
}

async function exchange(
  options: SamlTokenOptions,
  assertion: string,
  now: number,
  env: CliIo['env'],
): Promise<{ token: string; expiresAt: number }> {
  // --ca-file (the gateway's CA) replaces the roots; else HOOPGATE_EXTRA_CA_CERTS adds to them.
  const ca = options.caFile === undefined ? await extraCaBundle(env) : await readFile(options.caFile, 'utf8');
  const dispatcher = new Agent(ca === undefined ? {} : { connect: { ca } });
  const endpoint = `${options.gateway}/hoop/v1/token`;
  try {
    let response;
    try {
      response = await request(endpoint, {
        dispatcher,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer',
          assertion,
        }).toString(),
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
    } catch (error) {
      const cause = (error as { cause?: Error }).cause;
      throw new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `cannot reach ${endpoint}: ${(error as Error).message}${cause ? ` (${cause.message})` : ''}`,
      );
    }
    const text = await response.body.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // reported below
    }
    if (response.statusCode !== 200) {
      const error = typeof body.error === 'string' ? body.error : `HTTP ${response.statusCode}`;
      const description = typeof body.error_description === 'string' ? ` (${body.error_description})` : '';
      throw new HoopError('ERR_INVALID_GRANT', `the gateway refused the assertion: ${error}${description}`);
    }
    const token = body.access_token;
    const expiresIn = body.expires_in;
    if (typeof token !== 'string' || typeof expiresIn !== 'number')
      throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `${endpoint} answered without access_token and expires_in`);
    return { token, expiresAt: now + expiresIn * 1000 };
  } finally {
    await dispatcher.close();
  }
}
