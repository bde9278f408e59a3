// Create and update (PUT) with the API server's semantics: server-owned metadata replaced, status
// kept away from the main resource, generation bumps, no-op writes not written, finalizers honoured.
import { randomUUID } from 'node:crypto';
import { traitsOf, type Obj, type ResourceDef } from '../resources.js';
import { alreadyExists, badRequest, conflict, forbiddenPlain, invalid, notFound } from '../status.js';
import {
  canonical,
  decode,
  generatedSuffix,
  reconcile,
  recordManager,
  rfc3339,
  validate,
  withoutVolatile,
  type OpsDeps,
  type WriteOptions,
  type WriteResult,
} from './meta.js';

export function createObject(
  deps: OpsDeps,
  def: ResourceDef,
  namespace: string,
  body: unknown,
  opts: WriteOptions,
  operation: 'Update' | 'Apply' = 'Update',
  appliedConfig?: Obj,
): WriteResult {
  const { object: o, warnings } = decode(def, body, opts);
  const meta = o['metadata'];
  if (def.namespaced) {
    if (meta['namespace'] !== undefined && meta['namespace'] !== '' && meta['namespace'] !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    meta['namespace'] = namespace;
    const ns = deps.store.get('/namespaces', '', namespace);
    if (!ns) throw notFound('', 'namespaces', namespace);
    if (ns['status']?.['phase'] === 'Terminating') {
      throw forbiddenPlain(
        `${def.resource} ${JSON.stringify(meta['name'] ?? '')} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        def.group,
        def.resource,
        meta['name'] ?? '',
      );
    }
  } else delete meta['namespace'];
  if (!meta['name'] && meta['generateName']) meta['name'] = `${meta['generateName']}${generatedSuffix()}`;
  if (!meta['name'])
    throw invalid(def.group, def.kind, '', [
      { type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' },
    ]);
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
  if (deps.store.get(def.storeKey, def.namespaced ? namespace : '', meta['name']))
    throw alreadyExists(def, meta['name']);
  reconcile(deps, def, o);
  recordManager(deps, def, o, opts.fieldManager, operation, undefined, appliedConfig);
  // A placeholder keeps resourceVersion in its serialisation slot; the store sets the value.
  if (!opts.dryRun) meta['resourceVersion'] = '0';
  const object = canonical(def, o);
  if (opts.dryRun) return { object, created: true, warnings };
  const stored = deps.store.write(def.storeKey, object, 'ADDED');
  if (def.storeKey === '/namespaces') deps.onNamespaceCreated(meta['name']);
  return { object: stored, created: true, warnings };
}

/** The common tail of PUT and PATCH: `next` is the full desired object. */
export function commitObject(
  deps: OpsDeps,
  def: ResourceDef,
  old: Obj,
  next: Obj,
  opts: WriteOptions,
  operation: 'Update' | 'Apply',
  warnings: string[],
  appliedConfig?: Obj,
): WriteResult {
  const t = traitsOf(def.storeKey);
  const oldMeta = old['metadata'];
  const meta = (next['metadata'] ??= {});
  if (meta['name'] !== undefined && meta['name'] !== oldMeta['name']) {
    throw badRequest(
      `the name of the object (${meta['name']}) does not match the name on the URL (${oldMeta['name']})`,
    );
  }
  if (
    def.namespaced &&
    meta['namespace'] !== undefined &&
    meta['namespace'] !== '' &&
    meta['namespace'] !== oldMeta['namespace']
  ) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  if (
    meta['resourceVersion'] !== undefined &&
    meta['resourceVersion'] !== '' &&
    meta['resourceVersion'] !== oldMeta['resourceVersion']
  )
    throw conflict(def, oldMeta['name']);
  if (meta['uid'] !== undefined && meta['uid'] !== '' && meta['uid'] !== oldMeta['uid']) {
    throw conflict(
      def,
      oldMeta['name'],
      `Precondition failed: UID in precondition: ${meta['uid']}, UID in object meta: ${oldMeta['uid']}`,
    );
  }
  for (const k of [
    'name',
    'namespace',
    'uid',
    'creationTimestamp',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
    'generation',
    'resourceVersion',
    'managedFields',
  ]) {
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
    throw invalid(def.group, def.kind, oldMeta['name'], [
      {
        type: 'Invalid',
        field: 'roleRef',
        value: `rbac.RoleRef{APIGroup:"${next['roleRef']?.['apiGroup']}", Kind:"${next['roleRef']?.['kind']}", Name:"${next['roleRef']?.['name']}"}`,
        detail: 'cannot change roleRef',
      },
    ]);
  }
  if (t.tracksGeneration && JSON.stringify(next['spec']) !== JSON.stringify(old['spec']))
    meta['generation'] = Number(oldMeta['generation'] ?? 1) + 1;
  reconcile(deps, def, next);
  recordManager(deps, def, next, opts.fieldManager, operation, opts.subresource, appliedConfig);
  const object = canonical(def, next);
  // A no-op write is not written: same resourceVersion, no watch event (like the real registry).
  if (withoutVolatile(object) === withoutVolatile(old)) return { object: old, created: false, warnings };
  if (opts.dryRun) return { object, created: false, warnings };
  if (object['metadata']['deletionTimestamp'] && !(object['metadata']['finalizers'] ?? []).length) {
    const gone = deps.store.remove(
      def.storeKey,
      object['metadata']['namespace'] ?? '',
      object['metadata']['name'],
      object,
    );
    return { object: gone ?? object, created: false, warnings };
  }
  return { object: deps.store.write(def.storeKey, object, 'MODIFIED'), created: false, warnings };
}

export function updateObject(
  deps: OpsDeps,
  def: ResourceDef,
  namespace: string,
  name: string,
  body: unknown,
  opts: WriteOptions,
): WriteResult {
  const ns = def.namespaced ? namespace : '';
  const old = deps.store.get(def.storeKey, ns, name);
  const { object, warnings } = decode(def, body, opts);
  if (!old) {
    if (traitsOf(def.storeKey).allowCreateOnUpdate && opts.subresource === undefined) {
      if (object['metadata']['name'] !== undefined && object['metadata']['name'] !== name)
        throw badRequest(
          `the name of the object (${object['metadata']['name']}) does not match the name on the URL (${name})`,
        );
      return createObject(deps, def, namespace, { ...object, metadata: { ...object['metadata'], name } }, opts);
    }
    throw notFound(def.group, def.resource, name);
  }
  if ((object['metadata']['name'] ?? '') !== name)
    throw badRequest(
      `the name of the object (${object['metadata']['name'] ?? ''}) does not match the name on the URL (${name})`,
    );
  const result = commitObject(deps, def, old, object, opts, 'Update', warnings);
  return result;
}
