// Create, update, patch and delete of stored objects with the API server's semantics: metadata the
// server owns (uid, resourceVersion, generation, managedFields), status subresources, defaulting,
// validation, strict field validation, no-op updates, finalizers, namespace cascade, dry run.
// The parts live in objects/: meta (shared checks), write, patch, delete.
import type { Obj, Registry, ResourceDef } from './resources.js';
import type { FieldRequirement, LabelRequirement } from './selectors.js';
import type { Store } from './store.js';
import { removeObject, removeObjects } from './objects/delete.js';
import type { DeleteOptions, WriteOptions, WriteResult } from './objects/meta.js';
import { patchObject, type AppliedConfigs } from './objects/patch.js';
import { createObject, updateObject } from './objects/write.js';

export { protectedNamespaces } from './objects/delete.js';
export { canonical, rfc3339, type DeleteOptions, type WriteOptions, type WriteResult } from './objects/meta.js';

export interface ObjectOps {
  create(
    def: ResourceDef,
    namespace: string,
    body: unknown,
    opts: WriteOptions,
    operation?: 'Update' | 'Apply',
  ): WriteResult;
  update(def: ResourceDef, namespace: string, name: string, body: unknown, opts: WriteOptions): WriteResult;
  patch(
    def: ResourceDef,
    namespace: string,
    name: string,
    contentType: string,
    body: string,
    opts: WriteOptions & { force: boolean },
  ): WriteResult;
  remove(def: ResourceDef, namespace: string, name: string, options: DeleteOptions, dryRun: boolean): Obj;
  removeCollection(
    def: ResourceDef,
    namespace: string | undefined,
    labels: LabelRequirement[],
    fields: FieldRequirement[],
    dryRun: boolean,
  ): Obj;
}

export function createObjectOps(deps: {
  registry: Registry;
  store: Store;
  now: () => number;
  onNamespaceCreated: (name: string) => void;
}): ObjectOps {
  const applied: AppliedConfigs = new Map();
  return {
    create: (def, namespace, body, opts, operation) => createObject(deps, def, namespace, body, opts, operation),
    update: (def, namespace, name, body, opts) => updateObject(deps, def, namespace, name, body, opts),
    patch: (def, namespace, name, contentType, body, opts) =>
      patchObject(deps, applied, def, namespace, name, contentType, body, opts),
    remove: (def, namespace, name, options, dryRun) => removeObject(deps, def, namespace, name, options, dryRun),
    removeCollection: (def, namespace, labels, fields, dryRun) =>
      removeObjects(deps, def, namespace, labels, fields, dryRun),
  };
}
