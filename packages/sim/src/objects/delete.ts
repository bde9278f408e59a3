// DELETE and DELETECOLLECTION: preconditions, finalizers, pods' grace period, and the namespace
// controller's cascade done at once.
import { fieldLabelsOf, traitsOf, type Obj, type ResourceDef } from '../resources.js';
import { matchesFields, matchesLabels, type FieldRequirement, type LabelRequirement } from '../selectors.js';
import { conflict, deleteSuccess, forbiddenPlain, notFound } from '../status.js';
import { rfc3339, type DeleteOptions, type OpsDeps } from './meta.js';

export const protectedNamespaces = new Set(['default', 'kube-system', 'kube-public']);

export function removeObject(
  deps: OpsDeps,
  def: ResourceDef,
  namespace: string,
  name: string,
  options: DeleteOptions,
  dryRun: boolean,
): Obj {
  const ns = def.namespaced ? namespace : '';
  const old = deps.store.get(def.storeKey, ns, name);
  if (!old) throw notFound(def.group, def.resource, name);
  const pre = options.preconditions;
  if (pre?.uid && pre.uid !== old['metadata']['uid'])
    throw conflict(
      def,
      name,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old['metadata']['uid']}`,
    );
  if (pre?.resourceVersion && pre.resourceVersion !== old['metadata']['resourceVersion']) {
    throw conflict(
      def,
      name,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old['metadata']['resourceVersion']}`,
    );
  }
  const t = traitsOf(def.storeKey);
  const now = rfc3339(deps.now());
  if (def.storeKey === '/namespaces') {
    if (protectedNamespaces.has(name))
      throw forbiddenPlain(
        `namespaces ${JSON.stringify(name)} is forbidden: this namespace may not be deleted`,
        '',
        'namespaces',
        name,
      );
    const terminating = structuredClone(old);
    terminating['metadata']['deletionTimestamp'] ??= now;
    terminating['status'] = { ...(terminating['status'] ?? {}), phase: 'Terminating' };
    if (dryRun) return terminating;
    // The namespace controller's work, done at once: contents first, then the namespace.
    for (const d of deps.registry.all()) {
      if (!d.namespaced || deps.registry.byStoreKey(d.storeKey) !== d) continue;
      for (const o of deps.store.list(d.storeKey, name)) deps.store.remove(d.storeKey, name, o['metadata']['name']);
    }
    deps.store.write('/namespaces', terminating, 'MODIFIED');
    deps.store.remove('/namespaces', '', name);
    return terminating;
  }
  const finalState = structuredClone(old);
  if ((old['metadata']['finalizers'] ?? []).length) {
    finalState['metadata']['deletionTimestamp'] ??= now;
    finalState['metadata']['deletionGracePeriodSeconds'] ??= 0;
    if (dryRun) return finalState;
    return deps.store.write(def.storeKey, finalState, 'MODIFIED');
  }
  if (def.storeKey === '/pods') {
    finalState['metadata']['deletionTimestamp'] = now;
    finalState['metadata']['deletionGracePeriodSeconds'] =
      options.gracePeriodSeconds ?? old['spec']?.['terminationGracePeriodSeconds'] ?? 30;
  }
  if (dryRun) return t.returnsDeletedObject ? finalState : deleteSuccess(def, name, old['metadata']['uid']);
  const gone = deps.store.remove(def.storeKey, ns, name, finalState) ?? finalState;
  return t.returnsDeletedObject ? gone : deleteSuccess(def, name, old['metadata']['uid']);
}

export function removeObjects(
  deps: OpsDeps,
  def: ResourceDef,
  namespace: string | undefined,
  labels: LabelRequirement[],
  fields: FieldRequirement[],
  dryRun: boolean,
): Obj {
  const items: Obj[] = [];
  for (const o of deps.store.list(def.storeKey, namespace)) {
    if (!matchesLabels(labels, o['metadata']['labels']) || !matchesFields(fields, fieldLabelsOf(def.storeKey, o)))
      continue;
    const r = removeObject(deps, def, o['metadata']['namespace'] ?? '', o['metadata']['name'], {}, dryRun);
    items.push(r['kind'] === 'Status' ? o : r);
  }
  return {
    kind: def.listKind,
    apiVersion: def.apiVersion,
    metadata: { resourceVersion: String(deps.store.currentRv()) },
    items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
  };
}
