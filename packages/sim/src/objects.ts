// Create, update, patch and delete of stored objects with the API server's semantics: metadata the
// server owns (uid, resourceVersion, generation, managedFields), status subresources, defaulting,
// validation, strict field validation, no-op updates, finalizers, namespace cascade, dry run.
import { randomBytes, randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { fieldsV1, jsonPatch, mergePatch, PatchError, serverSideApply, strategicMergePatch } from './patch.js';
import { traitsOf, validateName, type Obj, type Registry, type ResourceDef } from './resources.js';
import { alreadyExists, badRequest, conflict, deleteSuccess, forbiddenPlain, invalid, notFound, patchMediaTypes, unsupportedMediaType, type FieldError, SimStatusError } from './status.js';
import type { Store } from './store.js';
import { matchesFields, matchesLabels, type FieldRequirement, type LabelRequirement } from './selectors.js';
import { fieldLabelsOf } from './resources.js';

export interface WriteOptions {
  dryRun: boolean;
  fieldManager: string;
  fieldValidation: 'Strict' | 'Warn' | 'Ignore';
  /** Set when the request addressed the status subresource. */
  subresource?: 'status';
}

export interface WriteResult { object: Obj; created: boolean; warnings: string[] }

export interface DeleteOptions { preconditions?: { uid?: string; resourceVersion?: string }; gracePeriodSeconds?: number; propagationPolicy?: string }

export interface ObjectOps {
  create(def: ResourceDef, namespace: string, body: unknown, opts: WriteOptions, operation?: 'Update' | 'Apply'): WriteResult;
  update(def: ResourceDef, namespace: string, name: string, body: unknown, opts: WriteOptions): WriteResult;
  patch(def: ResourceDef, namespace: string, name: string, contentType: string, body: string, opts: WriteOptions & { force: boolean }): WriteResult;
  remove(def: ResourceDef, namespace: string, name: string, options: DeleteOptions, dryRun: boolean): Obj;
  removeCollection(def: ResourceDef, namespace: string | undefined, labels: LabelRequirement[], fields: FieldRequirement[], dryRun: boolean): Obj;
}

export const protectedNamespaces = new Set(['default', 'kube-system', 'kube-public']);

const metaOrder = ['name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp',
  'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields'];
const metaFields = new Set(metaOrder);

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Field order as the API server serialises: kind, apiVersion, metadata (its own fixed order), the rest, status. */
export function canonical(def: ResourceDef, o: Obj): Obj {
  const meta: Obj = {};
  const m: Obj = o['metadata'] ?? {};
  for (const k of metaOrder) if (m[k] !== undefined) meta[k] = m[k];
  for (const k of Object.keys(m)) if (!metaFields.has(k)) meta[k] = m[k];
  const out: Obj = { kind: def.kind, apiVersion: def.apiVersion, metadata: meta };
  for (const [k, v] of Object.entries(o)) if (!['kind', 'apiVersion', 'metadata', 'status'].includes(k)) out[k] = v;
  if (o['status'] !== undefined) out['status'] = o['status'];
  return out;
}

function withoutVolatile(o: Obj): string {
  const c = structuredClone(o);
  delete c['metadata']?.['managedFields'];
  delete c['metadata']?.['resourceVersion'];
  return JSON.stringify(c);
}

const nameChars = 'bcdfghjklmnpqrstvwxz2456789';
function generatedSuffix(): string {
  return [...randomBytes(5)].map((b) => nameChars[b % nameChars.length]).join('');
}

function unknownFields(def: ResourceDef, o: Obj): string[] {
  const allowed = traitsOf(def.storeKey).fields;
  const out: string[] = [];
  if (allowed) for (const k of Object.keys(o)) if (!allowed.includes(k)) out.push(k);
  if (isObj(o['metadata'])) for (const k of Object.keys(o['metadata'])) if (!metaFields.has(k)) out.push(`metadata.${k}`);
  return out;
}

export function createObjectOps(deps: { registry: Registry; store: Store; now: () => number; onNamespaceCreated: (name: string) => void }): ObjectOps {
  const { store, registry } = deps;
  /** What each field manager last applied (server-side apply), to remove fields it stops applying. */
  const applied = new Map<string, Obj>();
  const appliedKey = (def: ResourceDef, ns: string, name: string, manager: string) => `${def.storeKey}|${ns}|${name}|${manager}`;

  function decode(def: ResourceDef, body: unknown, opts: WriteOptions): { object: Obj; warnings: string[] } {
    if (!isObj(body)) throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: the object provided is not a JSON object`);
    if (body['apiVersion'] !== undefined && body['apiVersion'] !== def.apiVersion) {
      throw badRequest(`the API version in the data (${body['apiVersion']}) does not match the expected API version (${def.apiVersion})`);
    }
    if (body['kind'] !== undefined && body['kind'] !== def.kind) {
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: the kind in the data (${body['kind']}) does not match the expected kind (${def.kind})`);
    }
    if (body['metadata'] !== undefined && !isObj(body['metadata'])) throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: metadata is not an object`);
    const object = structuredClone(body);
    object['metadata'] ??= {};
    const warnings: string[] = [];
    const unknown = unknownFields(def, object);
    if (unknown.length && opts.fieldValidation === 'Strict') {
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(', ')}`);
    }
    if (unknown.length && opts.fieldValidation === 'Warn') warnings.push(...unknown.map((f) => `unknown field ${JSON.stringify(f)}`));
    for (const f of unknown) {
      if (f.startsWith('metadata.')) delete object['metadata'][f.slice('metadata.'.length)];
      else delete object[f];
    }
    if (def.storeKey === '/secrets') {
      for (const [k, v] of Object.entries((object['data'] ?? {}) as Obj)) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
          throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${Math.max(0, String(v).search(/[^A-Za-z0-9+/=]/))} (key ${JSON.stringify(k)})`);
        }
      }
    }
    return { object, warnings };
  }

  function validate(def: ResourceDef, o: Obj): void {
    const t = traitsOf(def.storeKey);
    const name: string = o['metadata']['name'];
    const errs: FieldError[] = [...validateName(t.nameRule ?? 'subdomain', name), ...(t.validate?.(o) ?? [])];
    const labels = o['metadata']['labels'];
    if (labels !== undefined && (!isObj(labels) || Object.values(labels).some((v) => typeof v !== 'string'))) {
      errs.push({ type: 'Invalid', field: 'metadata.labels', value: JSON.stringify(labels), detail: 'label values must be strings' });
    }
    if (errs.length) throw invalid(def.group, def.kind, name, errs);
  }

  function recordManager(def: ResourceDef, o: Obj, manager: string, operation: 'Update' | 'Apply', subresource?: string, appliedConfig?: Obj): void {
    const entries = ((o['metadata']['managedFields'] ?? []) as Obj[])
      .filter((e) => !(e['manager'] === manager && e['operation'] === operation && (e['subresource'] ?? '') === (subresource ?? '')));
    const entry: Obj = { manager, operation, apiVersion: def.apiVersion, time: rfc3339(deps.now()), fieldsType: 'FieldsV1', fieldsV1: fieldsV1(appliedConfig ?? o) };
    if (subresource) entry['subresource'] = subresource;
    entries.push(entry);
    o['metadata']['managedFields'] = entries;
  }

  /** The controllers the sim has: a Deployment is at once fully rolled out. */
  function reconcile(def: ResourceDef, o: Obj): void {
    if (def.storeKey !== 'apps/deployments') return;
    const replicas = Number(o['spec']?.['replicas'] ?? 1);
    const now = rfc3339(deps.now());
    const status: Obj = { observedGeneration: o['metadata']['generation'] ?? 1 };
    if (replicas > 0) Object.assign(status, { replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas });
    const previous: Obj[] = o['status']?.['conditions'] ?? [];
    const since = (type: string) => previous.find((c) => c['type'] === type)?.['lastTransitionTime'] ?? now;
    status['conditions'] = [
      { type: 'Available', status: 'True', lastUpdateTime: now, lastTransitionTime: since('Available'), reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' },
      { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: since('Progressing'), reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${o['metadata']['name']}-${(o['metadata']['uid'] ?? '').slice(0, 10).replace(/-/g, '')}" has successfully progressed.` },
    ];
    o['status'] = status;
  }

  function create(def: ResourceDef, namespace: string, body: unknown, opts: WriteOptions, operation: 'Update' | 'Apply' = 'Update', appliedConfig?: Obj): WriteResult {
    const { object: o, warnings } = decode(def, body, opts);
    const meta = o['metadata'];
    if (def.namespaced) {
      if (meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta['namespace'] = namespace;
      const ns = store.get('/namespaces', '', namespace);
      if (!ns) throw notFound('', 'namespaces', namespace);
      if (ns['status']?.['phase'] === 'Terminating') {
        throw forbiddenPlain(`${def.resource} ${JSON.stringify(meta['name'] ?? '')} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, def.group, def.resource, meta['name'] ?? '');
      }
    } else delete meta['namespace'];
    if (!meta['name'] && meta['generateName']) meta['name'] = `${meta['generateName']}${generatedSuffix()}`;
    if (!meta['name']) throw invalid(def.group, def.kind, '', [{ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' }]);
    const now = deps.now();
    const t = traitsOf(def.storeKey);
    // Server-owned metadata: whatever the client sent is replaced.
    delete meta['resourceVersion'];
    delete meta['deletionTimestamp'];
    delete meta['deletionGracePeriodSeconds'];
    delete meta['managedFields'];
    delete meta['selfLink'];
    meta['uid'] = randomUUID();
    meta['creationTimestamp'] = rfc3339(now);
    if (t.tracksGeneration) meta['generation'] = 1;
    else delete meta['generation'];
    if (t.hasStatusSubresource) delete o['status'];
    t.defaults?.(o, { now: rfc3339(now), isCreate: true });
    validate(def, o);
    if (store.get(def.storeKey, def.namespaced ? namespace : '', meta['name'])) throw alreadyExists(def, meta['name']);
    reconcile(def, o);
    recordManager(def, o, opts.fieldManager, operation, undefined, appliedConfig);
    // A placeholder keeps resourceVersion in its serialisation slot; the store sets the value.
    if (!opts.dryRun) meta['resourceVersion'] = '0';
    const object = canonical(def, o);
    if (opts.dryRun) return { object, created: true, warnings };
    const stored = store.write(def.storeKey, object, 'ADDED');
    if (def.storeKey === '/namespaces') deps.onNamespaceCreated(meta['name']);
    return { object: stored, created: true, warnings };
  }

  /** The common tail of PUT and PATCH: `next` is the full desired object. */
  function commit(def: ResourceDef, old: Obj, next: Obj, opts: WriteOptions, operation: 'Update' | 'Apply', warnings: string[], appliedConfig?: Obj): WriteResult {
    const t = traitsOf(def.storeKey);
    const oldMeta = old['metadata'];
    const meta = (next['metadata'] ??= {});
    if (meta['name'] !== undefined && meta['name'] !== oldMeta['name']) {
      throw badRequest(`the name of the object (${meta['name']}) does not match the name on the URL (${oldMeta['name']})`);
    }
    if (def.namespaced && meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== oldMeta['namespace']) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (meta['resourceVersion'] !== undefined && meta['resourceVersion'] !== '' && meta['resourceVersion'] !== oldMeta['resourceVersion']) throw conflict(def, oldMeta['name']);
    if (meta['uid'] !== undefined && meta['uid'] !== '' && meta['uid'] !== oldMeta['uid']) {
      throw conflict(def, oldMeta['name'], `Precondition failed: UID in precondition: ${meta['uid']}, UID in object meta: ${oldMeta['uid']}`);
    }
    for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'resourceVersion', 'managedFields']) {
      if (oldMeta[k] === undefined) delete meta[k];
      else meta[k] = oldMeta[k];
    }
    if (opts.subresource === 'status') {
      // The status subresource changes status only.
      const status = next['status'];
      next = structuredClone(old);
      next['status'] = status;
    } else if (t.hasStatusSubresource) {
      if (old['status'] === undefined) delete next['status'];
      else next['status'] = old['status'];
    }
    t.defaults?.(next, { now: rfc3339(deps.now()), isCreate: false });
    validate(def, next);
    if (def.storeKey.endsWith('bindings') && JSON.stringify(next['roleRef']) !== JSON.stringify(old['roleRef'])) {
      throw invalid(def.group, def.kind, oldMeta['name'], [{ type: 'Invalid', field: 'roleRef', value: `rbac.RoleRef{APIGroup:"${next['roleRef']?.['apiGroup']}", Kind:"${next['roleRef']?.['kind']}", Name:"${next['roleRef']?.['name']}"}`, detail: 'cannot change roleRef' }]);
    }
    if (t.tracksGeneration && JSON.stringify(next['spec']) !== JSON.stringify(old['spec'])) meta['generation'] = Number(oldMeta['generation'] ?? 1) + 1;
    reconcile(def, next);
    recordManager(def, next, opts.fieldManager, operation, opts.subresource, appliedConfig);
    const object = canonical(def, next);
    // A no-op write is not written: same resourceVersion, no watch event (like the real registry).
    if (withoutVolatile(object) === withoutVolatile(old)) return { object: old, created: false, warnings };
    if (opts.dryRun) return { object, created: false, warnings };
    if (object['metadata']['deletionTimestamp'] && !(object['metadata']['finalizers'] ?? []).length) {
      const gone = store.remove(def.storeKey, object['metadata']['namespace'] ?? '', object['metadata']['name'], object);
      return { object: gone ?? object, created: false, warnings };
    }
    return { object: store.write(def.storeKey, object, 'MODIFIED'), created: false, warnings };
  }

  function update(def: ResourceDef, namespace: string, name: string, body: unknown, opts: WriteOptions): WriteResult {
    const ns = def.namespaced ? namespace : '';
    const old = store.get(def.storeKey, ns, name);
    const { object, warnings } = decode(def, body, opts);
    if (!old) {
      if (traitsOf(def.storeKey).allowCreateOnUpdate && opts.subresource === undefined) {
        if (object['metadata']['name'] !== undefined && object['metadata']['name'] !== name) throw badRequest(`the name of the object (${object['metadata']['name']}) does not match the name on the URL (${name})`);
        return create(def, namespace, { ...object, metadata: { ...object['metadata'], name } }, opts);
      }
      throw notFound(def.group, def.resource, name);
    }
    if ((object['metadata']['name'] ?? '') !== name) throw badRequest(`the name of the object (${object['metadata']['name'] ?? ''}) does not match the name on the URL (${name})`);
    const result = commit(def, old, object, opts, 'Update', warnings);
    return result;
  }

  function patch(def: ResourceDef, namespace: string, name: string, contentType: string, body: string, opts: WriteOptions & { force: boolean }): WriteResult {
    const ns = def.namespaced ? namespace : '';
    const old = store.get(def.storeKey, ns, name);
    const type = contentType.split(';')[0]!.trim().toLowerCase();
    let doc: unknown;
    try {
      doc = type === 'application/apply-patch+yaml' ? parseYaml(body) : JSON.parse(body);
    } catch (e) {
      throw badRequest(`error decoding patch: ${(e as Error).message}`);
    }
    try {
      switch (type) {
        case 'application/apply-patch+yaml': {
          if (!opts.fieldManager || opts.fieldManager === '') throw invalid('meta.k8s.io', 'PatchOptions', '', [{ type: 'Required', field: 'fieldManager', detail: 'is required for apply patch' }]);
          if (!isObj(doc)) throw badRequest('error decoding YAML: the applied configuration is not an object');
          if (doc['apiVersion'] === undefined || doc['kind'] === undefined) throw badRequest(`invalid object type: ${doc['apiVersion'] ?? ''}, Kind=${doc['kind'] ?? ''}`);
          const metaName = isObj(doc['metadata']) ? doc['metadata']['name'] : undefined;
          if (metaName !== undefined && metaName !== name) throw badRequest(`the name of the object (${metaName}) does not match the name on the URL (${name})`);
          const key = appliedKey(def, ns, name, opts.fieldManager);
          const appliedConfig = structuredClone(doc);
          if (!old) {
            const result = create(def, namespace, { ...doc, metadata: { ...(isObj(doc['metadata']) ? doc['metadata'] : {}), name } }, opts, 'Apply', appliedConfig);
            if (!opts.dryRun) applied.set(key, appliedConfig);
            return result;
          }
          const { object: decoded, warnings } = decode(def, doc, opts);
          const merged = serverSideApply(old, decoded, applied.get(key));
          const result = commit(def, old, merged, opts, 'Apply', warnings, appliedConfig);
          if (!opts.dryRun) applied.set(key, appliedConfig);
          return result;
        }
        case 'application/json-patch+json':
        case 'application/merge-patch+json':
        case 'application/strategic-merge-patch+json': {
          if (!old) throw notFound(def.group, def.resource, name);
          const next = type === 'application/json-patch+json' ? jsonPatch(old, doc) : type === 'application/merge-patch+json' ? mergePatch(old, doc) : strategicMergePatch(old, doc);
          if (!isObj(next)) throw badRequest('the patch produced something that is not an object');
          const { object, warnings } = decode(def, next, opts);
          return commit(def, old, object, opts, 'Update', warnings);
        }
        default:
          throw unsupportedMediaType(patchMediaTypes);
      }
    } catch (e) {
      if (e instanceof PatchError) {
        if (e.kind === 'bad-request') throw badRequest(e.message);
        throw new SimStatusError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: 'Invalid', code: 422 });
      }
      throw e;
    }
  }

  function remove(def: ResourceDef, namespace: string, name: string, options: DeleteOptions, dryRun: boolean): Obj {
    const ns = def.namespaced ? namespace : '';
    const old = store.get(def.storeKey, ns, name);
    if (!old) throw notFound(def.group, def.resource, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== old['metadata']['uid']) throw conflict(def, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old['metadata']['uid']}`);
    if (pre?.resourceVersion && pre.resourceVersion !== old['metadata']['resourceVersion']) {
      throw conflict(def, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old['metadata']['resourceVersion']}`);
    }
    const t = traitsOf(def.storeKey);
    const now = rfc3339(deps.now());
    if (def.storeKey === '/namespaces') {
      if (protectedNamespaces.has(name)) throw forbiddenPlain(`namespaces ${JSON.stringify(name)} is forbidden: this namespace may not be deleted`, '', 'namespaces', name);
      const terminating = structuredClone(old);
      terminating['metadata']['deletionTimestamp'] ??= now;
      terminating['status'] = { ...(terminating['status'] ?? {}), phase: 'Terminating' };
      if (dryRun) return terminating;
      // The namespace controller's work, done at once: contents first, then the namespace.
      for (const d of registry.all()) {
        if (!d.namespaced || registry.byStoreKey(d.storeKey) !== d) continue;
        for (const o of store.list(d.storeKey, name)) store.remove(d.storeKey, name, o['metadata']['name']);
      }
      store.write('/namespaces', terminating, 'MODIFIED');
      store.remove('/namespaces', '', name);
      return terminating;
    }
    const finalState = structuredClone(old);
    if ((old['metadata']['finalizers'] ?? []).length) {
      finalState['metadata']['deletionTimestamp'] ??= now;
      finalState['metadata']['deletionGracePeriodSeconds'] ??= 0;
      if (dryRun) return finalState;
      return store.write(def.storeKey, finalState, 'MODIFIED');
    }
    if (def.storeKey === '/pods') {
      finalState['metadata']['deletionTimestamp'] = now;
      finalState['metadata']['deletionGracePeriodSeconds'] = options.gracePeriodSeconds ?? old['spec']?.['terminationGracePeriodSeconds'] ?? 30;
    }
    if (dryRun) return t.returnsDeletedObject ? finalState : deleteSuccess(def, name, old['metadata']['uid']);
    const gone = store.remove(def.storeKey, ns, name, finalState) ?? finalState;
    return t.returnsDeletedObject ? gone : deleteSuccess(def, name, old['metadata']['uid']);
  }

  function removeCollection(def: ResourceDef, namespace: string | undefined, labels: LabelRequirement[], fields: FieldRequirement[], dryRun: boolean): Obj {
    const items: Obj[] = [];
    for (const o of store.list(def.storeKey, namespace)) {
      if (!matchesLabels(labels, o['metadata']['labels']) || !matchesFields(fields, fieldLabelsOf(def.storeKey, o))) continue;
      const r = remove(def, o['metadata']['namespace'] ?? '', o['metadata']['name'], {}, dryRun);
      items.push(r['kind'] === 'Status' ? o : r);
    }
    return {
      kind: def.listKind, apiVersion: def.apiVersion, metadata: { resourceVersion: String(store.currentRv()) },
      items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    };
  }

  return { create: (d, n, b, o, op) => create(d, n, b, o, op), update, patch, remove, removeCollection };
}
