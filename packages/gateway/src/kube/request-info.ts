// Classifies a request exactly as the kube-apiserver's RequestInfoFactory does
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so policy decides on what the API server
// will authorise. Table-tested against the API server's own cases (packages/sim/fixtures/requestinfo.json).
//
// Grammar (after percent-decoding the path once and trimming leading/trailing "/"):
//   target        = path [ "?" query ]
//   resource path = "/" prefix [ "/" group ] "/" version [ "/" special ] rest
//     prefix      = "api" (groupless: no group segment) | "apis" (a group segment follows)
//     special     = "proxy" | "watch"     (legacy verbs taken from the path; "proxy" has no subresources)
//     rest        = "/namespaces" [ "/" ns [ "/" ( "status" | "finalize" ) ] ]      → the namespace object
//                 | "/namespaces/" ns "/" resource [ "/" name [ "/" subresource [ "/" anything… ] ] ]
//                 | "/" resource [ "/" name [ "/" subresource [ "/" anything… ] ] ]
//   Fewer than 3 segments ("/api/v1") or 4 under "apis" ("/apis/apps/v1"), or another first segment
//   ("/version", "/healthz", "/openapi/v3"), is a non-resource request whose verb is the lower-case method.
// Verb of a resource request: the special segment, else POST create, GET/HEAD get, PUT update,
// PATCH patch, DELETE delete, anything else "". Then, with no name: get → list, or watch when the
// first `watch` query value is anything but "0"/"false"; delete → deletecollection. A list/watch
// whose fieldSelector requires metadata.name=X gets name X. A PATCH of /namespaces/X (server-side
// apply creating a namespace) has no namespace. "/api/v1/watch" or "/api/v1/proxy" alone is an error
// (the API server answers 500), refused here with 400.
import { HoopError } from '../lib/errors.js';

export interface RequestInfo {
  isResourceRequest: boolean;
  /** The decoded path, without the query. */
  path: string;
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** Decoded segments starting at {resource}/{name}/… (empty for non-resource requests). */
  parts: string[];
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

function badRequest(message: string): HoopError {
  return new HoopError('ERR_BAD_REQUEST', message);
}

/** Go's url.PathUnescape: `%XX` must be valid hex; `+` stays `+`. Decodes to UTF-8 like Go's byte strings. */
function unescapePath(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    // decodeURIComponent also rejects %XX sequences that are not UTF-8; Go would accept those bytes,
    // but a path that is not UTF-8 is refused rather than guessed at.
    throw badRequest(`the path ${JSON.stringify(raw)} is not valid percent-encoded UTF-8`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Go's url.QueryUnescape: `+` is a space; an invalid escape makes the pair unusable (returns null).
 * Go keeps non-UTF-8 bytes; they become U+FFFD here, which compares unequal to "false"/"0" either way.
 */
function unescapeQuery(raw: string): string | null {
  const plus = raw.replaceAll('+', ' ');
  if (!plus.includes('%')) return plus;
  const chunks: Buffer[] = [];
  let literalFrom = 0;
  for (let i = plus.indexOf('%'); i !== -1; i = plus.indexOf('%', literalFrom)) {
    const hex = plus.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    chunks.push(Buffer.from(plus.slice(literalFrom, i), 'utf8'), Buffer.from([Number.parseInt(hex, 16)]));
    literalFrom = i + 3;
  }
  chunks.push(Buffer.from(plus.slice(literalFrom), 'utf8'));
  return utf8.decode(Buffer.concat(chunks));
}

/**
 * Go's url.ParseQuery as the API server reads `req.URL.Query()`: pairs split on "&", a pair with a
 * ";" or an invalid escape is skipped (not fatal), values kept in order.
 */
export function parseGoQuery(query: string): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const pair of query.split('&')) {
    if (pair === '' || pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const key = unescapeQuery(eq === -1 ? pair : pair.slice(0, eq));
    const value = unescapeQuery(eq === -1 ? '' : pair.slice(eq + 1));
    if (key === null || value === null) continue;
    const list = values.get(key);
    if (list === undefined) values.set(key, [value]);
    else list.push(value);
  }
  return values;
}

/** strings.Trim(path, "/") then strings.Split: inner empty segments survive (the canonical check refuses them). */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

// ---- fields.ParseSelector + RequiresExactMatch("metadata.name") (k8s.io/apimachinery/pkg/fields) ----

/** Splits on "," not preceded by a backslash escape. */
function splitSelectorTerms(selector: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

/** Only `\\`, `\,`, `\=` are escapes; a bare "," or "=" in a value, or any other escape, is an error. */
function unescapeSelectorValue(value: string): string | null {
  let out = '';
  let inSlash = false;
  for (const c of value) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') return null;
      out += c;
      inSlash = false;
    } else if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') return null;
    else out += c;
  }
  return inSlash ? null : out;
}

type SelectorTerm = { field: string; op: '=' | '==' | '!='; value: string };

/** Returns the parsed terms in the API server's (sorted) order, or null when the selector is invalid. */
function parseFieldSelector(selector: string): SelectorTerm[] | null {
  if (selector === '') return [];
  const terms: SelectorTerm[] = [];
  // Go sorts the raw terms by byte order before parsing; the first matching term wins below.
  const raw = splitSelectorTerms(selector).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const term of raw) {
    if (term === '') continue;
    let parsed: SelectorTerm | null = null;
    for (let i = 0; i < term.length && parsed === null; i++) {
      for (const op of ['!=', '==', '='] as const) {
        if (term.startsWith(op, i)) {
          const value = unescapeSelectorValue(term.slice(i + op.length));
          if (value === null) return null;
          parsed = { field: term.slice(0, i), op, value };
          break;
        }
      }
    }
    if (parsed === null) return null;
    terms.push(parsed);
  }
  return terms;
}

function requiredName(terms: readonly SelectorTerm[]): string | undefined {
  for (const term of terms) {
    if (term.field === 'metadata.name' && term.op !== '!=') return term.value;
  }
  return undefined;
}

/** k8s.io/apimachinery/pkg/api/validation/path.IsValidPathSegmentName. */
function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/** Go's strings.EqualFold(value, "false"): simple case folding, in which "ſ" (U+017F) folds to "s". */
function equalFoldFalse(value: string): boolean {
  return value.length === 5 && value.replaceAll('ſ', 's').replace(/[A-Z]/g, (c) => c.toLowerCase()) === 'false';
}

const INT64 = /^[+-]?[0-9]+$/;

/**
 * Whether metav1.ListOptions decoding would fail for these query values: the API server then
 * resets the options (no name from the fieldSelector) and reads `watch` with strings.ToLower.
 * labelSelector syntax is not replayed here; a bad one fails the request upstream with 400 anyway.
 */
function listOptionsDecodeFails(query: Map<string, string[]>, fieldTerms: SelectorTerm[] | null): boolean {
  if (fieldTerms === null) return true;
  for (const key of ['limit', 'timeoutSeconds']) {
    const value = query.get(key)?.[0];
    if (value === undefined) continue;
    if (!INT64.test(value)) return true;
    const n = BigInt(value);
    if (n > 9223372036854775807n || n < -9223372036854775808n) return true;
  }
  return false;
}

/** Classifies a request: `method` as sent, `rawPath` the path and query exactly as received. */
export function parseRequestInfo(method: string, rawPath: string): RequestInfo {
  const queryAt = rawPath.indexOf('?');
  const rawPathOnly = queryAt === -1 ? rawPath : rawPath.slice(0, queryAt);
  const rawQuery = queryAt === -1 ? '' : rawPath.slice(queryAt + 1);
  const path = unescapePath(rawPathOnly);

  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };

  let parts = splitPath(path);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0] as string)) return info;
  info.apiPrefix = parts[0] as string;
  parts = parts.slice(1);

  if (!GROUPLESS_API_PREFIXES.has(info.apiPrefix)) {
    if (parts.length < 3) return info;
    info.apiGroup = parts[0] as string;
    parts = parts.slice(1);
  }

  info.isResourceRequest = true;
  info.apiVersion = parts[0] as string;
  parts = parts.slice(1);

  const first = parts[0] as string;
  if (SPECIAL_VERBS.has(first)) {
    if (parts.length < 2)
      throw badRequest(
        `unable to determine kind and namespace from ${JSON.stringify(path)}: "${first}" needs a resource after it`,
      );
    info.verb = first;
    parts = parts.slice(1);
  } else {
    info.verb = METHOD_VERBS[method] ?? '';
  }

  if (parts[0] === 'namespaces') {
    // Server-side apply creates a namespace with PATCH /namespaces/{name}: not "in" that namespace.
    if (parts.length === 2 && info.verb === 'patch') {
      info.namespace = '';
    } else if (parts.length > 1) {
      info.namespace = parts[1] as string;
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] as string)) parts = parts.slice(2);
    }
  }

  info.parts = parts;
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) info.subresource = parts[2] as string;
  if (parts.length >= 2) info.name = parts[1] as string;
  if (parts.length >= 1) info.resource = parts[0] as string;

  if (info.name === '' && info.verb === 'get') {
    const query = parseGoQuery(rawQuery);
    const selector = query.get('fieldSelector')?.[0];
    const fieldTerms = selector === undefined ? [] : parseFieldSelector(selector);
    const watch = query.get('watch')?.[0];
    if (listOptionsDecodeFails(query, fieldTerms)) {
      // The API server's fallback compares strings.ToLower(watch) with "false"/"0" (no folding of "ſ").
      info.verb =
        watch === undefined || watch === '0' || watch.replace(/[A-Z]/g, (c) => c.toLowerCase()) === 'false'
          ? 'list'
          : 'watch';
    } else {
      info.verb = watch === undefined || watch === '0' || equalFoldFalse(watch) ? 'list' : 'watch';
      const name = fieldTerms === null ? undefined : requiredName(fieldTerms);
      if (name !== undefined && isValidPathSegmentName(name)) info.name = name;
    }
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}
