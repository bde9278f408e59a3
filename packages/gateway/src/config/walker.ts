// A small declarative schema walker: each node reads one value at a path and adds every problem
// it finds to a shared list instead of stopping at the first, so a file reports all its problems
// at once, each with its path (`identities[1].serviceAccount`). `${ENV}` is expanded per value.
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { didYouMean } from './suggest.js';
import { compilePattern, formatDuration, parseByteSize, parseDuration } from './values.js';

export { didYouMean, suggest } from './suggest.js';

export interface ConfigIssue {
  /** Where in the file: `clusters[0].server`; empty for the document itself. */
  path: string;
  message: string;
}

export interface WalkContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative file paths resolve against this (the config file's directory); absent: left relative. */
  readonly baseDir: string | undefined;
  /** Off for `check --skip-files`: validate a config away from the machine it runs on. */
  readonly checkFiles: boolean;
  readonly issues: ConfigIssue[];
}

type Parse<T> = (raw: unknown, at: string, cx: WalkContext) => T | undefined;

export interface Node<T> {
  /** Undefined when the value is refused (the reason is in cx.issues). Never called with undefined/null. */
  readonly parse: Parse<T>;
  /** Transforms a value that has no problem inside; report and return undefined to refuse it. */
  map<U>(fn: (value: T, at: string, cx: WalkContext) => U | undefined): Node<U>;
  /** A rule over a value that has no problem inside (cross-field checks of one object). */
  check(fn: (value: T, at: string, cx: WalkContext) => void): Node<T>;
}

export function node<T>(parse: Parse<T>): Node<T> {
  const self: Node<T> = {
    parse,
    map: <U>(fn: (value: T, at: string, cx: WalkContext) => U | undefined) =>
      node<U>((raw, at, cx) => {
        const before = cx.issues.length;
        const value = parse(raw, at, cx);
        return value === undefined || cx.issues.length > before ? undefined : fn(value, at, cx);
      }),
    // Unlike map, a failed check keeps the (partial) value, so list-wide rules still see it.
    check: (fn) =>
      node<T>((raw, at, cx) => {
        const before = cx.issues.length;
        const value = parse(raw, at, cx);
        if (value !== undefined && cx.issues.length === before) fn(value, at, cx);
        return value;
      }),
  };
  return self;
}

export function report(cx: WalkContext, path: string, message: string): undefined {
  cx.issues.push({ path, message });
  return undefined;
}

export function pathOf(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${at}[${JSON.stringify(key)}]`;
  return at === '' ? key : `${at}.${key}`;
}

/** How a refused value is quoted in a message. */
export function show(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (Array.isArray(raw)) return 'a list';
  if (raw !== null && typeof raw === 'object') return 'a mapping';
  return String(raw);
}

// ---- ${ENV} expansion ---------------------------------------------------------------------------

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$\{/g;

/**
 * Expands `${NAME}` and `${NAME:-default}` (the default also when NAME is empty, as in a shell);
 * `$${` is a literal `${`. Values are expanded after YAML parsing, so a variable can never inject
 * YAML structure, and a problem is reported at the path that uses it.
 */
export function expand(text: string, at: string, cx: WalkContext): string | undefined {
  if (!text.includes('${')) return text;
  let ok = true;
  const result = text.replace(
    reference,
    (whole, name: string | undefined, hasDefault: string | undefined, fallback: string | undefined) => {
      if (whole === '$${') return '${';
      if (name === undefined) {
        ok = false;
        report(cx, at, 'malformed variable reference: use ${NAME} or ${NAME:-default} (and $${ for a literal ${)');
        return whole;
      }
      const value = cx.env[name];
      if (hasDefault !== undefined) return value === undefined || value === '' ? (fallback ?? '') : value;
      if (value === undefined) {
        ok = false;
        report(cx, at, `environment variable ${name} is not set`);
        return whole;
      }
      return value;
    },
  );
  return ok ? result : undefined;
}

/** A scalar as text: strings are expanded; other types are refused with `expected`. */
function scalarText(raw: unknown, at: string, cx: WalkContext, expected: string): string | undefined {
  if (typeof raw === 'string') return expand(raw, at, cx);
  const hint = typeof raw === 'number' || typeof raw === 'boolean' ? ` (quote it: "${String(raw)}")` : '';
  return report(cx, at, `must be ${expected}, got ${show(raw)}${expected === 'a string' ? hint : ''}`);
}

// ---- leaves -------------------------------------------------------------------------------------

export interface StringOptions {
  /** The whole value must match. */
  pattern?: RegExp;
  /** Message when the pattern does not match, e.g. `must be "namespace/name"`. */
  expect?: string;
  allowEmpty?: boolean;
}

export function str(options: StringOptions = {}): Node<string> {
  return node((raw, at, cx) => {
    const text = scalarText(raw, at, cx, 'a string');
    if (text === undefined) return undefined;
    if (text === '' && !options.allowEmpty) return report(cx, at, 'must not be empty');
    if (options.pattern && !options.pattern.test(text)) {
      return report(cx, at, `${options.expect ?? `must match ${String(options.pattern)}`}, got ${show(text)}`);
    }
    return text;
  });
}

export function oneOf<const V extends string>(values: readonly V[], what?: string): Node<V> {
  return node((raw, at, cx) => {
    const text = scalarText(raw, at, cx, 'a string');
    if (text === undefined) return undefined;
    if ((values as readonly string[]).includes(text)) return text as V;
    const expected = what ?? `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
    return report(cx, at, `must be ${expected}, got ${show(text)}${didYouMean(text, values)}`);
  });
}

/** A scalar from YAML, or a string that became one through `${ENV}` expansion. */
function fromScalar<T>(
  raw: unknown,
  at: string,
  cx: WalkContext,
  kind: string,
  read: (text: string) => T | undefined,
): T | undefined {
  if (typeof raw === 'string' && raw.includes('${')) {
    const text = expand(raw, at, cx);
    if (text === undefined) return undefined;
    const value = read(text);
    return value === undefined ? report(cx, at, `must be ${kind}, got ${show(text)}`) : value;
  }
  return undefined;
}

export function int(options: { min?: number; max?: number } = {}): Node<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return node((raw, at, cx) => {
    const value =
      typeof raw === 'string' && raw.includes('${')
        ? fromScalar(raw, at, cx, 'an integer', (t) => (/^-?\d+$/.test(t) ? Number(t) : undefined))
        : Number.isSafeInteger(raw)
          ? (raw as number)
          : report(cx, at, `must be an integer, got ${show(raw)}`);
    if (value === undefined) return undefined;
    if (value < min || value > max) {
      return report(
        cx,
        at,
        max === Number.MAX_SAFE_INTEGER
          ? `must be at least ${min}, got ${value}`
          : `must be between ${min} and ${max}, got ${value}`,
      );
    }
    return value;
  });
}

export function bool(): Node<boolean> {
  const read = (t: string) => (t === 'true' ? true : t === 'false' ? false : undefined);
  return node((raw, at, cx) => {
    if (typeof raw === 'boolean') return raw;
    if (typeof raw === 'string' && raw.includes('${')) return fromScalar(raw, at, cx, 'true or false', read);
    return report(cx, at, `must be true or false, got ${show(raw)}`);
  });
}

/** A duration (`90s`, `5m`, `12h`, `90d`, `500ms`) → milliseconds. */
export function duration(options: { min?: number; max?: number; why?: string } = {}): Node<number> {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = options;
  return node((raw, at, cx) => {
    if (typeof raw === 'number')
      return report(cx, at, `must be a duration like 90s, 5m, 12h or 90d, got ${raw} (add a unit)`);
    const text = scalarText(raw, at, cx, 'a duration like 90s, 5m, 12h or 90d');
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) return report(cx, at, `must be a duration like 90s, 5m, 12h or 90d, got ${show(text)}`);
    if (ms < min)
      return report(
        cx,
        at,
        `must be at least ${formatDuration(min)}${options.why ? ` (${options.why})` : ''}, got ${text}`,
      );
    if (ms > max)
      return report(
        cx,
        at,
        `must be at most ${formatDuration(max)}${options.why ? ` (${options.why})` : ''}, got ${text}`,
      );
    return ms;
  });
}

/** A byte size: an integer or `64Ki`, `8Mi`, `1Gi`. */
export function bytes(options: { min?: number } = {}): Node<number> {
  const { min = 1 } = options;
  return node((raw, at, cx) => {
    const value = typeof raw === 'string' ? expand(raw, at, cx) : raw;
    if (value === undefined) return undefined;
    const size = parseByteSize(value);
    if (size === undefined) return report(cx, at, `must be a byte count like 65536, 64Ki or 8Mi, got ${show(value)}`);
    if (size < min) return report(cx, at, `must be at least ${min}, got ${size}`);
    return size;
  });
}

/** A regular expression (leading `(?i)`: case-insensitive); kept as its source text. */
export function pattern(): Node<string> {
  return str().map((source, at, cx) => {
    try {
      compilePattern(source);
      return source;
    } catch (error) {
      return report(cx, at, `not a valid regular expression: ${(error as Error).message}`);
    }
  });
}

/** A file that must exist and be readable; relative paths resolve against the config file's directory. */
export function file(): Node<string> {
  return str().map((path, at, cx) => {
    const absolute = isAbsolute(path) || cx.baseDir === undefined ? path : resolve(cx.baseDir, path);
    if (!cx.checkFiles) return absolute;
    let stat: ReturnType<typeof statSync> | undefined;
    try {
      stat = statSync(absolute);
    } catch {
      // ENOENT, and ENOTDIR for a path under a file
    }
    if (!stat) return report(cx, at, `file not found: ${absolute}`);
    if (!stat.isFile()) return report(cx, at, `not a file: ${absolute}`);
    try {
      accessSync(absolute, constants.R_OK);
    } catch {
      return report(cx, at, `file not readable: ${absolute}`);
    }
    return absolute;
  });
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackHost(hostname: string): boolean {
  return loopbackHosts.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

export interface UrlOptions {
  /** `any`: http allowed (warned about elsewhere); `loopback`: http only for localhost/127.0.0.1/[::1]. */
  http: 'any' | 'loopback';
  /** Keep the text exactly (an OIDC issuer is compared byte for byte with `iss`). */
  exact?: boolean;
  trailingSlash?: 'strip' | 'add';
}

export function url(options: UrlOptions): Node<string> {
  return str().map((text, at, cx) => {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return report(cx, at, `must be an https URL, got ${show(text)}`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      return report(cx, at, `must be an https URL, got ${show(text)}`);
    if (parsed.protocol === 'http:' && options.http === 'loopback' && !isLoopbackHost(parsed.hostname)) {
      return report(cx, at, `must be an https URL (http only for localhost), got ${show(text)}`);
    }
    if (parsed.username || parsed.password) return report(cx, at, 'must not carry credentials in the URL');
    if (parsed.search || parsed.hash) return report(cx, at, `must not have a query or fragment, got ${show(text)}`);
    if (options.exact) return text;
    const base = `${parsed.origin}${parsed.pathname}`;
    if (options.trailingSlash === 'add') return base.endsWith('/') ? base : `${base}/`;
    return base.replace(/\/+$/, '');
  });
}

// ---- structure ----------------------------------------------------------------------------------

export interface ListOptions<T> {
  min?: number;
  /** Entries must differ in this key (reported on the later entry, at `field`). */
  unique?: { key: (item: DeepPartial<T>) => string | undefined; field?: string; what: string };
}

/** A YAML sequence. A refused entry leaves a hole (its index stays), so later paths stay right. */
export function list<T>(item: Node<T>, options: ListOptions<T> = {}): Node<T[]> {
  return node((raw, at, cx) => {
    if (!Array.isArray(raw)) return report(cx, at, `must be a list, got ${show(raw)}`);
    const { min = 0, unique } = options;
    if (raw.length < min) return report(cx, at, min === 1 ? 'must not be empty' : `must have at least ${min} entries`);
    const items = raw.map((entry, i) =>
      entry === undefined || entry === null
        ? report(cx, pathOf(at, i), 'must not be empty')
        : item.parse(entry, pathOf(at, i), cx),
    );
    if (unique) {
      const seen = new Map<string, number>();
      items.forEach((entry, i) => {
        const key = entry === undefined ? undefined : unique.key(entry as DeepPartial<T>);
        if (key === undefined) return;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else
          report(
            cx,
            unique.field === undefined ? pathOf(at, i) : pathOf(pathOf(at, i), unique.field),
            `duplicate ${unique.what} ${JSON.stringify(key)} (also ${pathOf(at, first)})`,
          );
      });
    }
    return items as T[];
  });
}

/** A scalar or a list of them (match fields: `groups: ci` or `groups: [ci, release]`). */
export function oneOrMany<T>(item: Node<T>): Node<T[]> {
  const many = list(item, { min: 1 });
  return node((raw, at, cx) => (Array.isArray(raw) ? many.parse(raw, at, cx) : wrap(item.parse(raw, at, cx))));
}

function wrap<T>(value: T | undefined): T[] | undefined {
  return value === undefined ? undefined : [value];
}

function isMapping(raw: unknown): raw is Record<string, unknown> {
  return (
    raw !== null &&
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    !(raw instanceof Uint8Array) &&
    !(raw instanceof Date)
  );
}

/** A mapping with free keys (`staticTokens`, `claims`); `key` validates each key's text. */
export function record<T>(value: Node<T>, key?: (name: string) => string | undefined): Node<Record<string, T>> {
  return node((raw, at, cx) => {
    if (!isMapping(raw)) return report(cx, at, `must be a mapping, got ${show(raw)}`);
    const out: Record<string, T> = {};
    for (const [name, entry] of Object.entries(raw)) {
      // Assigning `__proto__` would replace the result's prototype instead of adding a key.
      const problem = name === '__proto__' ? 'reserved key' : key?.(name);
      if (problem !== undefined) {
        report(cx, pathOf(at, name), problem);
        continue;
      }
      const parsed =
        entry === undefined || entry === null
          ? report(cx, pathOf(at, name), 'must not be empty')
          : value.parse(entry, pathOf(at, name), cx);
      if (parsed !== undefined) out[name] = parsed;
    }
    return out;
  });
}

export interface Field<T, Present extends boolean> {
  readonly node: Node<T>;
  readonly present: Present;
  /** The key in the YAML when it differs from the output name (`tokenTTL` → `tokenTTLMs`). */
  readonly from?: string;
  /** A raw default, read through `node` as if it were written in the file. */
  readonly fallback?: unknown;
  /** Appended to `required`: why the field cannot be left out. */
  readonly why?: string;
  readonly required?: boolean;
}

export const req = <T>(n: Node<T>, why?: string): Field<T, true> =>
  why === undefined ? { node: n, present: true, required: true } : { node: n, present: true, required: true, why };
export const opt = <T>(n: Node<T>): Field<T, false> => ({ node: n, present: false });
export const def = <T>(n: Node<T>, fallback: unknown): Field<T, true> => ({ node: n, present: true, fallback });
export const from = <F extends Field<unknown, boolean>>(key: string, field: F): F => ({ ...field, from: key });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any field type: Field<T> is invariant in T, unknown would not accept them
type AnyField = Field<any, boolean>;
type Shape = Record<string, AnyField>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type Out<S extends Shape> = Simplify<
  {
    [K in keyof S as S[K] extends Field<unknown, true> ? K : never]: S[K] extends Field<infer T, boolean> ? T : never;
  } & {
    [K in keyof S as S[K] extends Field<unknown, true> ? never : K]?: S[K] extends Field<infer T, boolean> ? T : never;
  }
>;

/**
 * A mapping with known keys. Unknown keys are errors (with a did-you-mean); a missing or null key
 * takes its default, or is reported as required. A refused field is left out of the (partial) result.
 */
export function obj<S extends Shape>(shape: S): Node<Out<S>> {
  const byYamlKey = new Map(Object.entries(shape).map(([name, field]) => [field.from ?? name, name] as const));
  return node((raw, at, cx) => {
    if (!isMapping(raw)) return report(cx, at, `must be a mapping, got ${show(raw)}`);
    for (const key of Object.keys(raw)) {
      if (!byYamlKey.has(key)) report(cx, pathOf(at, key), `unknown key${didYouMean(key, byYamlKey.keys())}`);
    }
    const out: Record<string, unknown> = {};
    for (const [yamlKey, name] of byYamlKey) {
      const field = shape[name] as AnyField;
      const at2 = pathOf(at, yamlKey);
      const given = raw[yamlKey];
      let value: unknown;
      if (given !== undefined && given !== null) value = field.node.parse(given, at2, cx);
      else if (field.fallback !== undefined) value = field.node.parse(field.fallback, at2, cx);
      else if (field.required) report(cx, at2, field.why ? `required ${field.why}` : 'required');
      if (value !== undefined) out[name] = value;
    }
    return out as Out<S>;
  });
}

export type DeepPartial<T> = T extends readonly (infer U)[]
  ? readonly (DeepPartial<U> | undefined)[]
  : T extends object
    ? { readonly [K in keyof T]?: DeepPartial<T[K]> }
    : T;
