// Following an RFC 6902 JSON patch op by op, in place: enough to know where each value lands, so a
// placeholder can be matched to the field it is written to.
import { isObj, valueAt, type Obj, type Segment } from './unmask-support.js';

/** RFC 6901 pointer → tokens (array indices stay strings until resolved against a document). */
export function pointerTokens(pointer: unknown): string[] | undefined {
  if (typeof pointer !== 'string') return undefined;
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export class PatchFailure extends Error {}

/** Resolves pointer tokens against `doc` to a concrete path (`-` = one past the end of a list). */
export function concretePath(doc: unknown, tokens: readonly string[]): Segment[] {
  const path: Segment[] = [];
  let node = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      const index = token === '-' ? node.length : /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : -1;
      if (index < 0 || index > node.length) throw new PatchFailure(`bad list index "${token}"`);
      path.push(index);
      node = node[index];
    } else if (isObj(node)) {
      path.push(token);
      node = node[token];
    } else {
      throw new PatchFailure(`path does not exist at "${token}"`);
    }
  }
  return path;
}

/** Applies one RFC 6902 operation in place (`doc` is a wrapper {root}); enough to follow where values go. */
export function applyOperation(wrapper: { root: unknown }, op: Obj): void {
  const tokens = pointerTokens(op.path);
  if (tokens === undefined) throw new PatchFailure('invalid path');
  const parentOf = (path: Segment[]) => (path.length === 0 ? undefined : valueAt(wrapper.root, path.slice(0, -1)));
  const remove = (path: Segment[]): unknown => {
    if (path.length === 0) throw new PatchFailure('cannot remove the whole object');
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent) && typeof last === 'number' && last < parent.length) return parent.splice(last, 1)[0];
    if (isObj(parent) && typeof last === 'string' && last in parent) {
      const value = parent[last];
      delete parent[last];
      return value;
    }
    throw new PatchFailure('path does not exist');
  };
  const add = (path: Segment[], value: unknown, insert: boolean) => {
    if (path.length === 0) {
      wrapper.root = value;
      return;
    }
    const parent = parentOf(path);
    const last = path[path.length - 1];
    if (Array.isArray(parent) && typeof last === 'number') {
      if (insert) parent.splice(last, 0, value);
      else if (last < parent.length) parent[last] = value;
      else throw new PatchFailure('path does not exist');
    } else if (isObj(parent) && typeof last === 'string') {
      if (!insert && !(last in parent)) throw new PatchFailure('path does not exist');
      parent[last] = value;
    } else {
      throw new PatchFailure('path does not exist');
    }
  };
  switch (op.op) {
    case 'add':
      add(concretePath(wrapper.root, tokens), structuredClone(op.value), true);
      return;
    case 'replace':
      add(concretePath(wrapper.root, tokens), structuredClone(op.value), false);
      return;
    case 'remove':
      remove(concretePath(wrapper.root, tokens));
      return;
    case 'test':
      return;
    case 'move':
    case 'copy': {
      const from = pointerTokens(op.from);
      if (from === undefined) throw new PatchFailure('invalid from');
      const fromPath = concretePath(wrapper.root, from);
      const value = op.op === 'move' ? remove(fromPath) : structuredClone(valueAt(wrapper.root, fromPath));
      add(concretePath(wrapper.root, tokens), value, true);
      return;
    }
    default:
      throw new PatchFailure(`unknown operation ${JSON.stringify(op.op)}`);
  }
}
