// Reads the YAML configuration, validates it once against the schema and returns it deeply
// frozen; every problem is reported together, each with its path in the file. loadConfig (what
// `serve` and `check` call) also reads what the files hold, so check refuses what serve would.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { HoopError } from '../lib/errors.js';
import { checkWithLibraries } from './library-checks.js';
import { completeConfig, redactStore, walkConfig, type ParsedConfig } from './schema.js';
import type { Config } from './types.js';
import { isLoopbackHost } from './walker.js';
import type { ConfigIssue, WalkContext } from './walker.js';

export type { ConfigIssue } from './walker.js';

export interface ParseOptions {
  /** Relative file paths resolve against it (loadConfig: the file's directory). */
  baseDir?: string;
  /** Named in the error heading: `invalid configuration (hoopgate.yaml):`. */
  source?: string;
  /** Check that referenced files exist and are readable (default true). */
  checkFiles?: boolean;
}

/** Every problem of one configuration; `message` lists them all, one per line. */
export class ConfigError extends HoopError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], source?: string) {
    const heading = source === undefined ? 'invalid configuration:' : `invalid configuration (${source}):`;
    const lines = issues.map((issue) => `  ${issue.path === '' ? '(document)' : issue.path}: ${issue.message}`);
    super('ERR_CONFIG', [heading, ...lines].join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export async function loadConfig(
  path: string,
  env: Readonly<Record<string, string | undefined>>,
  options: Omit<ParseOptions, 'baseDir'> = {},
): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new HoopError('ERR_CONFIG', `cannot read configuration ${path}: ${reason}`, { cause: error });
  }
  const parseOptions = { source: path, ...options, baseDir: dirname(resolve(path)) };
  const { parsed, cx } = walkText(text, env, parseOptions);
  if (parsed !== undefined) await checkWithLibraries(parsed, cx);
  return finish(parsed, cx, parseOptions.source);
}

/**
 * Validates a configuration text against the schema (without loadConfig's library checks: the
 * gateway's kubeconfig and a MongoDB connection string are read only by loadConfig).
 */
export function parseConfig(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  options: ParseOptions = {},
): Config {
  const { parsed, cx } = walkText(text, env, options);
  return finish(parsed, cx, options.source);
}

function finish(parsed: ParsedConfig | undefined, cx: WalkContext, source: string | undefined): Config {
  if (cx.issues.length > 0 || parsed === undefined) throw new ConfigError(cx.issues, source);
  return deepFreeze(completeConfig(parsed));
}

/** Parses the YAML and walks the schema; throws at once only for YAML syntax errors. */
function walkText(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  options: ParseOptions,
): { parsed: ParsedConfig | undefined; cx: WalkContext } {
  const issues: ConfigIssue[] = [];
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [first, ...more] = document.errors;
  if (first !== undefined) {
    // One syntax error cascades into many; the first is the one to fix. The yaml package spells
    // "… at line 3, column 5:\n<excerpt>": keep the position, drop the excerpt.
    const [head = first.message] = first.message.split('\n');
    const position = first.linePos?.[0];
    const later =
      more.length === 0 ? '' : ` (and ${more.length} more yaml error${more.length === 1 ? '' : 's'} after it)`;
    const message = lowerFirst(head.replace(/ at line \d+, column \d+:?$/, '')) + later;
    issues.push({ path: position ? `line ${position.line}, column ${position.col}` : '', message });
  }
  if (issues.length > 0) throw new ConfigError(issues, options.source);

  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError([{ path: '', message: lowerFirst((error as Error).message) }], options.source);
  }
  if (raw === null || raw === undefined)
    throw new ConfigError([{ path: '', message: 'the configuration is empty' }], options.source);

  const cx: WalkContext = { env, baseDir: options.baseDir, checkFiles: options.checkFiles ?? true, issues };
  return { parsed: walkConfig(raw, cx), cx };
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Legal but risky settings, said at start (serve) and by `check`. */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.listen.tls === undefined) {
    warnings.push(
      'listen: no tls, serving plain http: kubectl sends no bearer token to a plain-http server: put a TLS-terminating proxy in front',
    );
  }
  config.clusters.forEach((cluster, i) => {
    if (cluster.server.startsWith('http:') && !isLoopbackUrl(cluster.server)) {
      warnings.push(
        `clusters[${i}].server: plain http upstream ${cluster.server}: ServiceAccount tokens and responses cross the network unencrypted`,
      );
    } else if (cluster.server.startsWith('http:')) {
      warnings.push(`clusters[${i}].server: plain http upstream ${cluster.server} (fine for a local test server only)`);
    }
    if (cluster.insecureSkipTLSVerify) {
      warnings.push(
        `clusters[${i}].insecureSkipTLSVerify: the API server's certificate is not verified: anyone on the path can read the tokens; set caFile`,
      );
    }
  });
  if (!config.masking.secrets) {
    warnings.push(
      'masking.secrets: false: Secret values leave the gateway unmasked and reach the audit store and Slack',
    );
  }
  config.identities.forEach((identity, i) => {
    const { groups, subjects, claims } = identity.match;
    if (groups === undefined && subjects === undefined && claims === undefined) {
      const from = identity.match.issuer === undefined ? 'every trusted issuer' : identity.match.issuer.join(', ');
      const shadow = i < config.identities.length - 1 ? '; the identities after it are never reached' : '';
      warnings.push(`identities[${i}] (${identity.name}): matches every token from ${from}${shadow}`);
    }
  });
  return warnings;
}

function isLoopbackUrl(text: string): boolean {
  return isLoopbackHost(new URL(text).hostname);
}

/** One line describing a valid config, for `check` and the start banner. */
export function describeConfig(config: Config): string {
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const clusters = count(config.clusters.length, 'cluster', 'clusters');
  const identities = count(config.identities.length, 'identity', 'identities');
  return `${clusters}, ${identities}, store ${redactStore(config.audit.store)}`;
}
