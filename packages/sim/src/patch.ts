// The four PATCH content types the API server accepts, applied to plain JSON: RFC 7386 merge patch,
// RFC 6902 JSON patch, strategic merge patch (lists merged by their patchMergeKey, `$patch`,
// `$setElementOrder/…`, `$deleteFromPrimitiveList/…`, `$retainKeys` directives) and server-side apply.
import type { Obj } from './resources.js';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

export class PatchError extends Error {
  readonly kind: 'bad-request' | 'invalid';
  constructor(kind: 'bad-request' | 'invalid', message: string) {
    super(message);
    this.name = 'PatchError';
    this.kind = kind;
  }
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError('invalid', `invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map(unescapePointer);
}

function getAt(doc: unknown, tokens: string[]): unknown {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops))
    throw new PatchError('bad-request', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let root = clone(doc);
  for (const raw of ops) {
    if (!isObj(raw)) throw new PatchError('bad-request', 'invalid JSON patch operation');
    const op = String(raw['op'] ?? '');
    const path = parsePointer(String(raw['path'] ?? ''));
    const fail = (why: string) => new PatchError('invalid', `${why}: doc is missing path: "${raw['path']}"`);
    const parentOf = (tokens: string[]) => ({
      parent: getAt(root, tokens.slice(0, -1)),
      key: tokens[tokens.length - 1],
    });
    const remove = (tokens: string[]) => {
      const { parent, key } = parentOf(tokens);
      if (key === undefined) throw fail('unable to remove the root');
      if (Array.isArray(parent)) {
        const i = Number(key);
        if (!(i >= 0 && i < parent.length)) throw fail(`unable to remove nonexistent key: ${key}`);
        return parent.splice(i, 1)[0];
      }
      if (!isObj(parent) || !(key in parent)) throw fail(`unable to remove nonexistent key: ${key}`);
      const v = parent[key];
      delete parent[key];
      return v;
    };
    const add = (tokens: string[], value: unknown) => {
      if (tokens.length === 0) {
        root = value;
        return;
      }
      const { parent, key } = parentOf(tokens);
      if (Array.isArray(parent)) {
        const i = key === '-' ? parent.length : Number(key);
        if (!(i >= 0 && i <= parent.length)) throw fail('unable to add at index');
        parent.splice(i, 0, value);
      } else if (isObj(parent)) parent[key!] = value;
      else throw fail(`unable to add key ${key}`);
    };
    switch (op) {
      case 'add':
        add(path, clone(raw['value']));
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        remove(path);
        add(path, clone(raw['value']));
        break;
      case 'move': {
        const v = remove(parsePointer(String(raw['from'])));
        add(path, v);
        break;
      }
      case 'copy':
        add(path, clone(getAt(root, parsePointer(String(raw['from'])))));
        break;
      case 'test':
        if (JSON.stringify(getAt(root, path)) !== JSON.stringify(raw['value']))
          throw new PatchError('invalid', `testing value ${raw['path']} failed: test failed`);
        break;
      default:
        throw new PatchError('bad-request', `Unexpected kind: ${op}`);
    }
  }
  return root;
}

/** patchMergeKey of the list fields of the served kinds (k8s.io/api struct tags); other lists are atomic. */
const mergeKeys: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  conditions: 'type',
  ownerReferences: 'uid',
  secrets: 'name',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  ports: 'containerPort',
};
/** Lists of scalars whose patchStrategy is merge (set semantics). */
const mergedScalarLists = new Set(['finalizers']);

export function mergeKeyFor(field: string, items: unknown[]): string | undefined {
  const key = mergeKeys[field];
  if (key === undefined) return undefined;
  // Service ports merge on `port`; container ports on `containerPort`.
  if (field === 'ports' && items.some((i) => isObj(i) && 'port' in i && !('containerPort' in i))) return 'port';
  return key;
}

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch))
    throw new PatchError('bad-request', 'invalid strategic merge patch: the patch is not a JSON object');
  return smpObject(isObj(target) ? target : {}, patch);
}

function smpObject(target: Obj, patch: Obj): Obj {
  if (patch['$patch'] === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return stripDirectives(rest) as Obj;
  }
  if (patch['$patch'] === 'delete') return {};
  let out = clone(target);
  const retain = patch['$retainKeys'];
  if (Array.isArray(retain)) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[field]) && Array.isArray(v))
        out[field] = (out[field] as unknown[]).filter((x) => !v.includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (isObj(v)) out[k] = smpObject(isObj(cur) ? cur : {}, v);
    else if (Array.isArray(v)) out[k] = smpList(k, Array.isArray(cur) ? cur : [], v);
    else out[k] = v;
  }
  return out;
}

function smpList(field: string, cur: unknown[], patch: unknown[]): unknown[] {
  if (patch.some((p) => isObj(p) && p['$patch'] === 'replace'))
    return stripDirectives(patch.filter((p) => !(isObj(p) && p['$patch'] === 'replace'))) as unknown[];
  const key = mergeKeyFor(field, [...cur, ...patch]);
  if (key === undefined) {
    if (mergedScalarLists.has(field)) return [...cur, ...patch.filter((p) => !cur.includes(p))];
    return stripDirectives(patch) as unknown[];
  }
  const out = clone(cur);
  for (const item of patch) {
    if (!isObj(item)) continue;
    const idx = out.findIndex((c) => isObj(c) && c[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpObject(out[idx] as Obj, item);
    else out.push(stripDirectives(item));
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !k.startsWith('$'))
      .map(([k, x]) => [k, stripDirectives(x)]),
  );
}

/**
 * Server-side apply, simplified: the applied configuration is merged into the live object like a
 * strategic merge patch, and fields this manager applied last time but left out now are removed
 * (what managedFields ownership achieves for a single manager). Conflicts between managers are not detected.
 */
export function serverSideApply(live: Obj | undefined, applied: Obj, previouslyApplied: Obj | undefined): Obj {
  const base = live ? clone(live) : {};
  if (previouslyApplied) pruneDropped(base, previouslyApplied, applied);
  return smpObject(base, applied);
}

function pruneDropped(live: Obj, prev: Obj, next: Obj): void {
  for (const [k, pv] of Object.entries(prev)) {
    if (k === 'apiVersion' || k === 'kind') continue;
    if (!(k in next)) {
      delete live[k];
      continue;
    }
    const nv = next[k];
    if (isObj(pv) && isObj(nv) && isObj(live[k])) pruneDropped(live[k], pv, nv);
    else if (Array.isArray(pv) && Array.isArray(nv) && Array.isArray(live[k])) {
      const key = mergeKeyFor(k, [...pv, ...nv]);
      if (key === undefined) continue;
      const keep = new Set(nv.filter(isObj).map((i) => JSON.stringify(i[key])));
      const dropped = new Set(
        pv
          .filter(isObj)
          .map((i) => JSON.stringify(i[key]))
          .filter((x) => !keep.has(x)),
      );
      live[k] = (live[k] as unknown[]).filter((i) => !(isObj(i) && dropped.has(JSON.stringify(i[key]))));
      for (const item of nv.filter(isObj)) {
        const before = pv.find((p) => isObj(p) && p[key] === item[key]);
        const target = (live[k] as unknown[]).find((l) => isObj(l) && l[key] === item[key]);
        if (isObj(before) && isObj(target)) pruneDropped(target, before, item);
      }
    }
  }
}

/** The FieldsV1 set of an object, as managedFields records it (`f:` fields, `k:` keyed list items, `v:` set values). */
export function fieldsV1(v: unknown, field = ''): Obj {
  const out: Obj = {};
  if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'apiVersion' || k === 'kind' || (field === '' && k === 'status')) continue;
      if (field === '' && k === 'metadata') {
        const m: Obj = {};
        for (const mk of ['labels', 'annotations', 'finalizers', 'ownerReferences'])
          if (isObj(x) && x[mk] !== undefined) m[`f:${mk}`] = fieldsV1(x[mk], mk);
        if (Object.keys(m).length) out['f:metadata'] = m;
        continue;
      }
      out[`f:${k}`] = fieldsV1(x, k);
    }
  } else if (Array.isArray(v)) {
    const key = mergeKeyFor(field, v);
    for (const item of v) {
      if (key !== undefined && isObj(item))
        out[`k:${JSON.stringify({ [key]: item[key] })}`] = { '.': {}, ...fieldsV1(item, '#item') };
      else if (!isObj(item) && mergedScalarLists.has(field)) out[`v:${JSON.stringify(item)}`] = {};
    }
  }
  return out;
}
