// Loads the discovery documents of fixtures/kubernetes/discovery (this package) at start, serves them byte for
// byte, and derives from them which resources the sim stores (so discovery and serving never disagree).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const aggregatedDiscoveryMediaType = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export interface DiscoveredResource {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  singular: string;
  verbs: string[];
  shortNames: string[];
  /** Subresource names (`status`, `log`, `token`, …) and their verbs. */
  subresources: Map<string, string[]>;
}

export interface DiscoveryDocuments {
  /** Served bodies by request path (`/api`, `/api/v1`, `/apis`, `/apis/apps/v1`), exactly as in the files. */
  legacy: Map<string, Buffer>;
  aggregated: Buffer;
  /** Group versions listed by `/apis` (APIGroupList), for synthesising resource lists of the ones without a file. */
  listedGroupVersions: string[];
  resources: DiscoveredResource[];
}

/** The package's own fixtures/ (see fixtures/README.md), unless overridden (option, then HOOPGATE_FIXTURES_DIR). */
export function resolveFixturesDir(override?: string): string {
  if (override) return override;
  const fromEnv = process.env['HOOPGATE_FIXTURES_DIR'];
  if (fromEnv) return fromEnv;
  // From src/ (tests, through tsx) and from dist/ alike, the fixtures are one folder up.
  return fileURLToPath(new URL('../fixtures/', import.meta.url));
}

interface LegacyResource {
  name: string;
  kind: string;
  namespaced: boolean;
  singularName?: string;
  verbs: string[];
  shortNames?: string[];
}

export function loadDiscovery(fixturesDir: string): DiscoveryDocuments {
  const dir = join(fixturesDir, 'kubernetes', 'discovery');
  if (!existsSync(dir))
    throw new Error(
      `simulated api server: discovery fixtures not found at ${dir}; set HOOPGATE_FIXTURES_DIR or the fixturesDir option`,
    );
  const legacy = new Map<string, Buffer>();
  const byGv = new Map<string, DiscoveredResource[]>();
  let aggregated: Buffer | undefined;
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    const body = readFileSync(join(dir, file));
    if (file === 'aggregated_v2.json') {
      aggregated = body;
      continue;
    }
    const path = `/${file.slice(0, -'.json'.length).split('__').join('/')}`;
    legacy.set(path, body);
    const doc = JSON.parse(body.toString('utf8')) as {
      kind?: string;
      groupVersion?: string;
      resources?: LegacyResource[];
    };
    if (doc.kind !== 'APIResourceList' || !doc.groupVersion || !doc.resources) continue;
    const [group, version] = doc.groupVersion.includes('/')
      ? (doc.groupVersion.split('/') as [string, string])
      : ['', doc.groupVersion];
    byGv.set(doc.groupVersion, fromLegacy(group, version, doc.resources));
  }
  if (!aggregated) throw new Error(`simulated api server: ${join(dir, 'aggregated_v2.json')} is missing`);
  // Group versions only the aggregated document describes are served too, so `kubectl get jobs` finds them.
  for (const [gv, list] of fromAggregated(JSON.parse(aggregated.toString('utf8'))))
    if (!byGv.has(gv)) byGv.set(gv, list);
  // kube-apiserver never lists a group version without resources ("Skipping API … because it has no
  // resources"); the upstream fixtures do (storage.k8s.io/v1beta1), which sends clients to an empty list.
  for (const [gv, list] of byGv) if (list.length === 0) byGv.delete(gv);
  for (const path of [...legacy.keys()]) {
    const gv = path.replace(/^\/apis?\//, '');
    if (/^\/apis?\/./.test(path) && !byGv.has(gv)) legacy.delete(path);
  }
  const apis = legacy.get('/apis');
  let listedGroupVersions: string[] = [];
  if (apis) {
    const doc = JSON.parse(apis.toString('utf8')) as ApiGroupList;
    const kept = withoutEmptyVersions(doc, (gv) => byGv.has(gv));
    if (kept !== doc) legacy.set('/apis', Buffer.from(`${JSON.stringify(kept, null, 2)}\n`));
    listedGroupVersions = kept.groups.flatMap((g) => g.versions.map((v) => v.groupVersion));
  }
  const aggregatedDoc = JSON.parse(aggregated.toString('utf8')) as AggregatedList;
  const nonEmpty = aggregatedDoc.items
    .map((g) => ({ ...g, versions: g.versions.filter((v) => v.resources.length > 0) }))
    .filter((g) => g.versions.length > 0);
  if (
    nonEmpty.some((g, i) => g.versions.length !== aggregatedDoc.items[i]?.versions.length) ||
    nonEmpty.length !== aggregatedDoc.items.length
  ) {
    aggregated = Buffer.from(JSON.stringify({ ...aggregatedDoc, items: nonEmpty }));
  }
  return { legacy, aggregated, listedGroupVersions, resources: [...byGv.values()].flat() };
}

interface ApiGroupList {
  groups: {
    name: string;
    preferredVersion?: { groupVersion: string; version: string };
    versions: { groupVersion: string; version: string }[];
  }[];
}

/** The APIGroupList without the versions `served` rejects (and groups left with none); the same object when nothing goes. */
function withoutEmptyVersions(doc: ApiGroupList, served: (groupVersion: string) => boolean): ApiGroupList {
  if (doc.groups.every((g) => g.versions.every((v) => served(v.groupVersion)))) return doc;
  const groups = doc.groups.flatMap((g) => {
    const versions = g.versions.filter((v) => served(v.groupVersion));
    if (versions.length === 0) return [];
    const preferredVersion =
      g.preferredVersion && served(g.preferredVersion.groupVersion) ? g.preferredVersion : versions[0];
    return [{ ...g, ...(preferredVersion ? { preferredVersion } : {}), versions }];
  });
  return { ...doc, groups };
}

function fromLegacy(group: string, version: string, list: LegacyResource[]): DiscoveredResource[] {
  const top = new Map<string, DiscoveredResource>();
  for (const r of list) {
    if (r.name.includes('/')) continue;
    top.set(r.name, {
      group,
      version,
      resource: r.name,
      kind: r.kind,
      namespaced: r.namespaced,
      singular: r.singularName || r.kind.toLowerCase(),
      verbs: r.verbs,
      shortNames: r.shortNames ?? [],
      subresources: new Map(),
    });
  }
  for (const r of list) {
    const [parent, sub] = r.name.split('/');
    if (sub !== undefined) top.get(parent!)?.subresources.set(sub, r.verbs);
  }
  return [...top.values()];
}

interface AggregatedList {
  items: {
    metadata: { name: string };
    versions: {
      version: string;
      resources: {
        resource: string;
        responseKind: { kind: string };
        scope: string;
        singularResource: string;
        verbs: string[];
        shortNames?: string[];
        subresources?: { subresource: string; verbs: string[] }[];
      }[];
    }[];
  }[];
}

function fromAggregated(doc: AggregatedList): Map<string, DiscoveredResource[]> {
  const out = new Map<string, DiscoveredResource[]>();
  for (const g of doc.items) {
    for (const v of g.versions) {
      out.set(
        `${g.metadata.name}/${v.version}`,
        v.resources.map((r) => ({
          group: g.metadata.name,
          version: v.version,
          resource: r.resource,
          kind: r.responseKind.kind,
          namespaced: r.scope === 'Namespaced',
          singular: r.singularResource,
          verbs: r.verbs,
          shortNames: r.shortNames ?? [],
          subresources: new Map((r.subresources ?? []).map((s) => [s.subresource, s.verbs])),
        })),
      );
    }
  }
  return out;
}

/** The APIResourceList for a listed group version that has no file of its own. */
export function synthesizeResourceList(groupVersion: string, resources: readonly DiscoveredResource[]): Buffer {
  const [group, version] = groupVersion.split('/') as [string, string];
  const list = resources
    .filter((r) => r.group === group && r.version === version)
    .flatMap((r) => [
      {
        name: r.resource,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: r.verbs,
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      },
      ...[...r.subresources].map(([sub, verbs]) => ({
        name: `${r.resource}/${sub}`,
        singularName: '',
        namespaced: r.namespaced,
        kind: r.kind,
        verbs,
      })),
    ]);
  return Buffer.from(JSON.stringify({ kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources: list }));
}
