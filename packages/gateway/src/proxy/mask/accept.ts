// Content negotiation towards the API server: ask only for formats the masker can read (JSON, the
// JSON Table / metadata-only / discovery views), gzip or identity encoding. Protobuf, CBOR and YAML
// object encodings are never requested, so they never need to pass through unmasked.

export interface MediaType {
  /** Lower-case `type/subtype`. */
  essence: string;
  /** Parameters in their order, names lower-case, values unquoted. */
  params: [string, string][];
}

export function parseMediaType(value: string | undefined): MediaType | undefined {
  if (value === undefined) return undefined;
  const [head, ...rest] = value.split(';');
  const essence = (head ?? '').trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*@-]+$/.test(essence)) return undefined;
  const params: [string, string][] = [];
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    let val = part.slice(eq + 1).trim();
    if (val.length >= 2 && val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
    if (name !== '') params.push([name, val]);
  }
  return { essence, params };
}

export function mediaParam(type: MediaType, name: string): string | undefined {
  return type.params.find(([key]) => key === name)?.[1];
}

/** Types that encode Kubernetes objects; each is asked for as JSON instead. */
const objectEncodings = new Set([
  'application/json',
  'application/vnd.kubernetes.protobuf',
  'application/yaml',
  'application/cbor',
  'application/apply-patch+cbor',
  '*/*',
  'application/*',
]);

/** `as=` views the masker understands, by API group. */
const knownViews: Readonly<Record<string, readonly string[]>> = {
  'meta.k8s.io': ['Table', 'PartialObjectMetadata', 'PartialObjectMetadataList'],
  'apidiscovery.k8s.io': ['APIGroupDiscoveryList'],
};

/** The OpenAPI v2 protobuf document describes types and holds no objects; kubectl asks for it. */
export const openApiProtobufTypes: ReadonlySet<string> = new Set([
  'application/com.github.proto-openapi.spec.v2@v1.0+protobuf',
  'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
]);

function translate(type: MediaType): string | undefined {
  if (objectEncodings.has(type.essence)) {
    const as = mediaParam(type, 'as');
    if (as === undefined)
      return mediaParam(type, 'stream') === 'watch' ? 'application/json;stream=watch' : 'application/json';
    const group = mediaParam(type, 'g') ?? '';
    if (!(knownViews[group] ?? []).includes(as)) return undefined;
    const kept = type.params.filter(([name]) => name === 'as' || name === 'g' || name === 'v');
    return ['application/json', ...kept.map(([name, value]) => `${name}=${value}`)].join(';');
  }
  if (type.essence === 'text/plain') return 'text/plain';
  if (openApiProtobufTypes.has(type.essence)) return type.essence;
  if (type.essence.endsWith('+json')) return type.essence;
  return undefined;
}

/**
 * The Accept header sent upstream for a client's Accept: JSON twins of what it asked for, in its
 * order of preference (q-values applied, then dropped); `application/json` when nothing is left.
 */
export function upstreamAccept(clientAccept: string | undefined): string {
  const entries: { value: string; q: number; index: number }[] = [];
  (clientAccept ?? '').split(',').forEach((raw, index) => {
    const type = parseMediaType(raw);
    if (type === undefined) return;
    const qParam = mediaParam(type, 'q');
    const q = qParam === undefined ? 1 : Number(qParam);
    if (!Number.isFinite(q) || q <= 0) return;
    const value = translate({ essence: type.essence, params: type.params.filter(([name]) => name !== 'q') });
    if (value !== undefined) entries.push({ value, q, index });
  });
  entries.sort((a, b) => b.q - a.q || a.index - b.index);
  const values = [...new Set(entries.map((entry) => entry.value))];
  return values.length === 0 ? 'application/json' : values.join(',');
}

/** Accept-Encoding sent upstream: gzip (decoded and masked here) or identity, never br/deflate. */
export function upstreamAcceptEncoding(): string {
  return 'gzip';
}
