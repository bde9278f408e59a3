// The sim's etcd: objects by storage key, one cluster-wide resourceVersion counter, and a bounded
// event history so a watch can start from any recent resourceVersion (older ones get 410 Expired).
import type { Obj } from './resources.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  storeKey: string;
  rv: number;
  object: Obj;
  /** The object before the change (MODIFIED and DELETED), to tell when it left a watch's selector. */
  previous?: Obj;
}

export interface Store {
  currentRv(): number;
  /** Oldest resourceVersion a watch can still start from. */
  oldestRv(): number;
  get(storeKey: string, namespace: string, name: string): Obj | undefined;
  /** Sorted like etcd keys: by namespace, then name. */
  list(storeKey: string, namespace?: string): Obj[];
  /** Writes the object with a new resourceVersion and returns the stored copy. */
  write(storeKey: string, object: Obj, type: 'ADDED' | 'MODIFIED'): Obj;
  remove(storeKey: string, namespace: string, name: string, finalState?: Obj): Obj | undefined;
  eventsSince(rv: number): StoreEvent[];
  subscribe(listener: (event: StoreEvent) => void): () => void;
}

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

export function createStore(options: { historySize?: number } = {}): Store {
  const historySize = options.historySize ?? 10_000;
  const data = new Map<string, Map<string, Obj>>();
  const history: StoreEvent[] = [];
  const listeners = new Set<(e: StoreEvent) => void>();
  let rv = 1;
  let oldest = 1;

  const bucket = (storeKey: string) => {
    let b = data.get(storeKey);
    if (!b) data.set(storeKey, (b = new Map()));
    return b;
  };
  const emit = (event: StoreEvent) => {
    history.push(event);
    if (history.length > historySize) oldest = history.shift()!.rv;
    for (const l of listeners) l(event);
  };

  return {
    currentRv: () => rv,
    oldestRv: () => oldest,
    get: (storeKey, namespace, name) => {
      const o = data.get(storeKey)?.get(keyOf(namespace, name));
      return o && structuredClone(o);
    },
    list: (storeKey, namespace) => {
      const b = data.get(storeKey);
      if (!b) return [];
      return [...b.entries()]
        .filter(([, o]) => namespace === undefined || (o['metadata']?.['namespace'] ?? '') === namespace)
        .sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0))
        .map(([, o]) => structuredClone(o));
    },
    write: (storeKey, object, type) => {
      rv += 1;
      const stored = structuredClone(object);
      stored['metadata']['resourceVersion'] = String(rv);
      const key = keyOf(stored['metadata']['namespace'] ?? '', stored['metadata']['name']);
      const b = bucket(storeKey);
      const previous = b.get(key);
      b.set(key, stored);
      emit({
        type,
        storeKey,
        rv,
        object: structuredClone(stored),
        ...(previous ? { previous: structuredClone(previous) } : {}),
      });
      return structuredClone(stored);
    },
    remove: (storeKey, namespace, name, finalState) => {
      const b = data.get(storeKey);
      const key = keyOf(namespace, name);
      const previous = b?.get(key);
      if (!b || !previous) return undefined;
      b.delete(key);
      rv += 1;
      // A DELETED event carries the object's last state with the deletion's resourceVersion (etcd semantics).
      const last = structuredClone(finalState ?? previous);
      last['metadata']['resourceVersion'] = String(rv);
      emit({ type: 'DELETED', storeKey, rv, object: structuredClone(last), previous: structuredClone(previous) });
      return last;
    },
    eventsSince: (since) => history.filter((e) => e.rv > since).map((e) => structuredClone(e)),
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
