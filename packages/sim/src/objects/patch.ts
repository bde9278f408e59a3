// PATCH in its four content types: server-side apply (remembering what each manager applied, so a
// field it stops applying is removed), JSON patch, merge patch and strategic merge patch.
import { parse as parseYaml } from 'yaml';
import { jsonPatch, mergePatch, PatchError, serverSideApply, strategicMergePatch } from '../patch.js';
import type { Obj, ResourceDef } from '../resources.js';
import { badRequest, invalid, notFound, patchMediaTypes, SimStatusError, unsupportedMediaType } from '../status.js';
import { decode, isObj, type OpsDeps, type WriteOptions, type WriteResult } from './meta.js';
import { commitObject, createObject } from './write.js';

/** What each field manager last applied (server-side apply), keyed by appliedKey. */
export type AppliedConfigs = Map<string, Obj>;

const appliedKey = (def: ResourceDef, ns: string, name: string, manager: string) =>
  `${def.storeKey}|${ns}|${name}|${manager}`;

export function patchObject(
  deps: OpsDeps,
  applied: AppliedConfigs,
  def: ResourceDef,
  namespace: string,
  name: string,
  contentType: string,
  body: string,
  opts: WriteOptions & { force: boolean },
): WriteResult {
  const ns = def.namespaced ? namespace : '';
  const old = deps.store.get(def.storeKey, ns, name);
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
        if (!opts.fieldManager || opts.fieldManager === '')
          throw invalid('meta.k8s.io', 'PatchOptions', '', [
            { type: 'Required', field: 'fieldManager', detail: 'is required for apply patch' },
          ]);
        if (!isObj(doc)) throw badRequest('error decoding YAML: the applied configuration is not an object');
        if (doc['apiVersion'] === undefined || doc['kind'] === undefined)
          throw badRequest(`invalid object type: ${doc['apiVersion'] ?? ''}, Kind=${doc['kind'] ?? ''}`);
        const metaName = isObj(doc['metadata']) ? doc['metadata']['name'] : undefined;
        if (metaName !== undefined && metaName !== name)
          throw badRequest(`the name of the object (${metaName}) does not match the name on the URL (${name})`);
        const key = appliedKey(def, ns, name, opts.fieldManager);
        const appliedConfig = structuredClone(doc);
        if (!old) {
          const result = createObject(
            deps,
            def,
            namespace,
            { ...doc, metadata: { ...(isObj(doc['metadata']) ? doc['metadata'] : {}), name } },
            opts,
            'Apply',
            appliedConfig,
          );
          if (!opts.dryRun) applied.set(key, appliedConfig);
          return result;
        }
        const { object: decoded, warnings } = decode(def, doc, opts);
        const merged = serverSideApply(old, decoded, applied.get(key));
        const result = commitObject(deps, def, old, merged, opts, 'Apply', warnings, appliedConfig);
        if (!opts.dryRun) applied.set(key, appliedConfig);
        return result;
      }
      case 'application/json-patch+json':
      case 'application/merge-patch+json':
      case 'application/strategic-merge-patch+json': {
        if (!old) throw notFound(def.group, def.resource, name);
        const next =
          type === 'application/json-patch+json'
            ? jsonPatch(old, doc)
            : type === 'application/merge-patch+json'
              ? mergePatch(old, doc)
              : strategicMergePatch(old, doc);
        if (!isObj(next)) throw badRequest('the patch produced something that is not an object');
        const { object, warnings } = decode(def, next, opts);
        return commitObject(deps, def, old, object, opts, 'Update', warnings);
      }
      default:
        throw unsupportedMediaType(patchMediaTypes);
    }
  } catch (e) {
    if (e instanceof PatchError) {
      if (e.kind === 'bad-request') throw badRequest(e.message);
      throw new SimStatusError({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: e.message,
        reason: 'Invalid',
        code: 422,
      });
    }
    throw e;
  }
}
