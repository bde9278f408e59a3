// An in-process MongoDB stand-in that speaks the wire protocol (OP_MSG, and OP_QUERY for the legacy
// handshake) to the real `mongodb` driver, for the store contract tests when no mongod is available.
// It implements the commands and query/update/aggregate operators hoopgate's Mongo store uses, with
// unique _id and unique indexes on insert; it does NOT implement transactions, change streams,
// replication, authentication or write-concern semantics (a real mongod does: set MONGODB_URI).
import { createServer, type Socket } from 'node:net';
import { Binary, BSON, Long, ObjectId, type Document } from 'mongodb';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
  }
}

interface IndexSpec {
  name: string;
  key: Record<string, number>;
  unique: boolean;
}

interface Collection {
  docs: Map<string, Document>;
  indexes: IndexSpec[];
}

// ---------- values ----------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function clone<T extends Document>(doc: T): T {
  return BSON.deserialize(BSON.serialize(doc)) as T;
}

function idKey(value: unknown): string {
  if (value instanceof ObjectId) return `o${value.toHexString()}`;
  if (typeof value === 'string') return `s${value}`;
  return `j${canonical(value)}`;
}

function canonical(value: unknown): string {
  if (value instanceof ObjectId) return `ObjectId(${value.toHexString()})`;
  if (value instanceof Binary) return `BinData(${value.sub_type},${Buffer.from(value.value()).toString('hex')})`;
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isPlainObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** BSON comparison order, simplified to the types a store writes. */
function typeRank(value: unknown): number {
  if (value === null || value === undefined) return 1;
  if (typeof value === 'number' || value instanceof Long) return 2;
  if (typeof value === 'string') return 3;
  if (Array.isArray(value)) return 5;
  if (value instanceof Binary) return 6;
  if (value instanceof ObjectId) return 7;
  if (typeof value === 'boolean') return 8;
  if (value instanceof Date) return 9;
  if (isPlainObject(value)) return 4;
  return 10;
}

function compare(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 1) return 0;
  if (ra === 2) return Number(a) - Number(b);
  if (ra === 3) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  if (ra === 6) {
    // BinData: by length, then subtype, then bytes (as MongoDB orders it).
    const [x, y] = [a as Binary, b as Binary];
    return x.length() - y.length() || x.sub_type - y.sub_type || Buffer.compare(x.value(), y.value());
  }
  if (ra === 7) return compare((a as ObjectId).toHexString(), (b as ObjectId).toHexString());
  if (ra === 8) return Number(a) - Number(b);
  if (ra === 9) return (a as Date).getTime() - (b as Date).getTime();
  if (ra === 5) {
    const x = a as unknown[];
    const y = b as unknown[];
    for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
      const c = compare(x[i], y[i]);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  }
  return compare(canonical(a), canonical(b));
}

const equals = (a: unknown, b: unknown): boolean => typeRank(a) === typeRank(b) && compare(a, b) === 0;

// ---------- paths ----------

/** Every value a dotted path reaches, traversing arrays like MongoDB does. */
function resolve(value: unknown, parts: readonly string[]): unknown[] {
  if (parts.length === 0) return [value];
  const [head, ...rest] = parts as [string, ...string[]];
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    if (/^\d+$/.test(head)) out.push(...resolve(value[Number(head)], rest));
    for (const item of value) if (isPlainObject(item)) out.push(...resolve(item, parts));
    return out.length === 0 ? [undefined] : out;
  }
  if (isPlainObject(value)) return resolve(value[head], rest);
  return [undefined];
}

function getPath(doc: unknown, path: string): unknown {
  let value = doc;
  for (const part of path.split('.')) {
    if (Array.isArray(value) && /^\d+$/.test(part)) value = value[Number(part)];
    else if (isPlainObject(value)) value = value[part];
    else return undefined;
  }
  return value;
}

function setPath(doc: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let target: Record<string, unknown> = doc;
  for (const part of parts.slice(0, -1)) {
    const next = target[part];
    if (!isPlainObject(next) && !Array.isArray(next)) target[part] = {};
    target = target[part] as Record<string, unknown>;
  }
  target[parts[parts.length - 1] as string] = value;
}

function unsetPath(doc: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  const parent = getPath(doc, parts.slice(0, -1).join('.')) ?? (parts.length === 1 ? doc : undefined);
  if (isPlainObject(parent)) delete parent[parts[parts.length - 1] as string];
}

// ---------- query ----------

const isOperatorObject = (value: unknown): value is Record<string, unknown> =>
  isPlainObject(value) && Object.keys(value).length > 0 && Object.keys(value).every((k) => k.startsWith('$'));

function candidateEquals(candidates: unknown[], expected: unknown): boolean {
  return candidates.some(
    (c) => equals(c ?? null, expected ?? null) || (Array.isArray(c) && c.some((item) => equals(item, expected))),
  );
}

function candidateCompare(candidates: unknown[], expected: unknown, test: (c: number) => boolean): boolean {
  const flat = candidates.flatMap((c) => (Array.isArray(c) ? c : [c]));
  return flat.some((c) => c !== undefined && typeRank(c) === typeRank(expected) && test(compare(c, expected)));
}

function matchCondition(candidates: unknown[], condition: unknown): boolean {
  if (!isOperatorObject(condition)) return candidateEquals(candidates, condition);
  return Object.entries(condition).every(([op, arg]) => {
    switch (op) {
      case '$eq':
        return candidateEquals(candidates, arg);
      case '$ne':
        return !candidateEquals(candidates, arg);
      case '$gt':
        return candidateCompare(candidates, arg, (c) => c > 0);
      case '$gte':
        return candidateCompare(candidates, arg, (c) => c >= 0);
      case '$lt':
        return candidateCompare(candidates, arg, (c) => c < 0);
      case '$lte':
        return candidateCompare(candidates, arg, (c) => c <= 0);
      case '$in':
        return (arg as unknown[]).some((v) => candidateEquals(candidates, v));
      case '$nin':
        return !(arg as unknown[]).some((v) => candidateEquals(candidates, v));
      case '$exists':
        return candidates.some((c) => c !== undefined) === Boolean(arg);
      case '$not':
        return !matchCondition(candidates, arg);
      case '$size':
        return candidates.some((c) => Array.isArray(c) && c.length === arg);
      case '$elemMatch':
        return candidates.some(
          (c) =>
            Array.isArray(c) &&
            c.some((item) =>
              isOperatorObject(arg)
                ? matchCondition([item], arg)
                : isPlainObject(item) && matches(item, arg as Document),
            ),
        );
      default:
        throw new CommandError(`unknown operator: ${op}`, 2, 'BadValue');
    }
  });
}

function matches(doc: Document, filter: Document | undefined): boolean {
  if (filter === undefined) return true;
  return Object.entries(filter).every(([key, condition]) => {
    if (key === '$and') return (condition as Document[]).every((f) => matches(doc, f));
    if (key === '$or') return (condition as Document[]).some((f) => matches(doc, f));
    if (key === '$nor') return !(condition as Document[]).some((f) => matches(doc, f));
    if (key.startsWith('$')) throw new CommandError(`unknown top level operator: ${key}`, 2, 'BadValue');
    return matchCondition(resolve(doc, key.split('.')), condition);
  });
}

function sortDocs(docs: Document[], sort: Record<string, number> | undefined): Document[] {
  if (sort === undefined || Object.keys(sort).length === 0) return docs;
  const keys = Object.entries(sort);
  return [...docs].sort((a, b) => {
    for (const [key, direction] of keys) {
      const c = compare(getPath(a, key), getPath(b, key));
      if (c !== 0) return direction < 0 ? -c : c;
    }
    return 0;
  });
}

function project(doc: Document, projection: Record<string, unknown> | undefined): Document {
  if (projection === undefined || Object.keys(projection).length === 0) return doc;
  const fields = Object.entries(projection).filter(([k]) => k !== '_id');
  const inclusive = fields.some(([, v]) => v === 1 || v === true);
  if (inclusive) {
    const out: Document = {};
    if (projection._id !== 0 && projection._id !== false) out._id = doc._id;
    for (const [key, value] of fields) {
      if (value !== 1 && value !== true) continue;
      const found = getPath(doc, key);
      if (found !== undefined) setPath(out, key, found);
    }
    return out;
  }
  const out = clone(doc);
  for (const [key] of Object.entries(projection)) unsetPath(out, key);
  return out;
}

// ---------- update ----------

function applyUpdate(doc: Document, update: Document, inserting: boolean): Document {
  const keys = Object.keys(update);
  if (keys.length > 0 && !keys.some((k) => k.startsWith('$'))) return { _id: doc._id, ...clone(update) };
  const next = clone(doc);
  for (const [op, fields] of Object.entries(update)) {
    for (const [path, value] of Object.entries(fields as Document)) {
      const current = getPath(next, path);
      switch (op) {
        case '$set':
          setPath(next, path, value);
          break;
        case '$setOnInsert':
          if (inserting) setPath(next, path, value);
          break;
        case '$unset':
          unsetPath(next, path);
          break;
        case '$inc':
          setPath(next, path, (typeof current === 'number' ? current : 0) + (value as number));
          break;
        case '$min':
          if (current === undefined || compare(value, current) < 0) setPath(next, path, value);
          break;
        case '$max':
          if (current === undefined || compare(value, current) > 0) setPath(next, path, value);
          break;
        case '$push':
        case '$addToSet': {
          if (current !== undefined && !Array.isArray(current))
            throw new CommandError(`field ${path} is not an array`, 2, 'BadValue');
          const items = isPlainObject(value) && Array.isArray(value.$each) ? value.$each : [value];
          const list = [...((current as unknown[] | undefined) ?? [])];
          for (const item of items) if (op === '$push' || !list.some((x) => equals(x, item))) list.push(item);
          setPath(next, path, list);
          break;
        }
        default:
          throw new CommandError(`unknown update operator: ${op}`, 9, 'FailedToParse');
      }
    }
  }
  return next;
}

/** The equality fields of a filter, as the base of an upserted document. */
function upsertBase(filter: Document): Document {
  const base: Document = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key.startsWith('$')) continue;
    if (!isOperatorObject(value)) setPath(base, key, value);
    else if ('$eq' in value) setPath(base, key, value.$eq);
  }
  return base;
}

// ---------- aggregate ----------

function evalExpr(expr: unknown, doc: Document): unknown {
  if (typeof expr === 'string' && expr.startsWith('$')) return getPath(doc, expr.slice(1));
  if (Array.isArray(expr)) return expr.map((e) => evalExpr(e, doc));
  if (!isPlainObject(expr)) return expr;
  const keys = Object.keys(expr);
  if (keys.length === 1 && (keys[0] as string).startsWith('$')) {
    const op = keys[0] as string;
    const arg = expr[op];
    const args = Array.isArray(arg) ? arg.map((a) => evalExpr(a, doc)) : [evalExpr(arg, doc)];
    switch (op) {
      case '$literal':
        return arg;
      case '$cond': {
        const [cond, then, otherwise] = Array.isArray(arg)
          ? (arg as unknown[])
          : [(arg as Document).if, (arg as Document).then, (arg as Document).else];
        return evalExpr(cond, doc) ? evalExpr(then, doc) : evalExpr(otherwise, doc);
      }
      case '$eq':
        return equals(args[0] ?? null, args[1] ?? null);
      case '$ne':
        return !equals(args[0] ?? null, args[1] ?? null);
      case '$gt':
        return compare(args[0], args[1]) > 0;
      case '$gte':
        return compare(args[0], args[1]) >= 0;
      case '$lt':
        return compare(args[0], args[1]) < 0;
      case '$lte':
        return compare(args[0], args[1]) <= 0;
      case '$and':
        return args.every(Boolean);
      case '$or':
        return args.some(Boolean);
      case '$not':
        return !args[0];
      case '$ifNull':
        return args.find((a) => a !== null && a !== undefined) ?? null;
      case '$add':
        return args.reduce((sum: number, a) => sum + Number(a ?? 0), 0);
      default:
        throw new CommandError(`unsupported expression operator: ${op}`, 168, 'InvalidPipelineOperator');
    }
  }
  const out: Document = {};
  for (const [key, value] of Object.entries(expr)) out[key] = evalExpr(value, doc);
  return out;
}

function group(docs: Document[], spec: Document): Document[] {
  const groups = new Map<string, { id: unknown; docs: Document[] }>();
  for (const doc of docs) {
    const id = evalExpr(spec._id, doc) ?? null;
    const key = canonical(id);
    const found = groups.get(key) ?? { id, docs: [] };
    found.docs.push(doc);
    groups.set(key, found);
  }
  return [...groups.values()].map(({ id, docs: members }) => {
    const out: Document = { _id: id };
    for (const [field, accumulator] of Object.entries(spec)) {
      if (field === '_id') continue;
      const [op, arg] = Object.entries(accumulator as Document)[0] as [string, unknown];
      const values = members.map((d) => evalExpr(arg, d));
      const present = values.filter((v) => v !== null && v !== undefined);
      switch (op) {
        case '$sum':
          out[field] = values.reduce((sum: number, v) => sum + (typeof v === 'number' ? v : 0), 0);
          break;
        case '$count':
          out[field] = members.length;
          break;
        case '$avg':
          out[field] =
            present.length === 0 ? null : present.reduce((s: number, v) => s + Number(v), 0) / present.length;
          break;
        case '$min':
          out[field] = present.length === 0 ? null : present.reduce((m, v) => (compare(v, m) < 0 ? v : m));
          break;
        case '$max':
          out[field] = present.length === 0 ? null : present.reduce((m, v) => (compare(v, m) > 0 ? v : m));
          break;
        case '$first':
          out[field] = values[0] ?? null;
          break;
        case '$last':
          out[field] = values[values.length - 1] ?? null;
          break;
        case '$push':
          out[field] = values;
          break;
        case '$addToSet':
          out[field] = values.filter((v, i) => values.findIndex((w) => equals(w, v)) === i);
          break;
        default:
          throw new CommandError(`unsupported accumulator: ${op}`, 15952, 'Location15952');
      }
    }
    return out;
  });
}

function aggregate(input: Document[], pipeline: Document[]): Document[] {
  let docs = input;
  for (const stage of pipeline) {
    const [name, spec] = Object.entries(stage)[0] as [string, unknown];
    switch (name) {
      case '$match':
        docs = docs.filter((d) => matches(d, spec as Document));
        break;
      case '$sort':
        docs = sortDocs(docs, spec as Record<string, number>);
        break;
      case '$limit':
        docs = docs.slice(0, spec as number);
        break;
      case '$skip':
        docs = docs.slice(spec as number);
        break;
      case '$group':
        docs = group(docs, spec as Document);
        break;
      case '$count':
        docs = [{ [spec as string]: docs.length }];
        break;
      case '$project':
        docs = docs.map((d) => {
          const s = spec as Document;
          const simple = Object.values(s).every((v) => v === 0 || v === 1 || v === true || v === false);
          if (simple) return project(d, s);
          const out: Document = s._id === 0 ? {} : { _id: d._id };
          for (const [k, v] of Object.entries(s))
            if (k !== '_id') out[k] = v === 1 || v === true ? getPath(d, k) : evalExpr(v, d);
          return out;
        });
        break;
      default:
        throw new CommandError(`unsupported pipeline stage: ${name}`, 40324, 'Location40324');
    }
  }
  return docs;
}

// ---------- server ----------

export interface MongoTestServer {
  /** mongodb://127.0.0.1:PORT */
  readonly url: string;
  /** Commands received, by name (e.g. `insert`), for assertions on round trips. */
  readonly commands: Record<string, number>;
  stop(): Promise<void>;
}

export async function startMongoServer(): Promise<MongoTestServer> {
  const dbs = new Map<string, Map<string, Collection>>();
  const commands: Record<string, number> = {};
  const sockets = new Set<Socket>();
  let connectionId = 0;

  function collection(db: string, name: string, create = true): Collection | undefined {
    let database = dbs.get(db);
    if (database === undefined) {
      if (!create) return undefined;
      database = new Map();
      dbs.set(db, database);
    }
    let coll = database.get(name);
    if (coll === undefined && create) {
      coll = { docs: new Map(), indexes: [{ name: '_id_', key: { _id: 1 }, unique: true }] };
      database.set(name, coll);
    }
    return coll;
  }

  function checkUnique(coll: Collection, doc: Document, ignoreKey?: string): void {
    for (const index of coll.indexes) {
      if (!index.unique) continue;
      const fields = Object.keys(index.key);
      const key = canonical(fields.map((f) => getPath(doc, f) ?? null));
      for (const [existingKey, existing] of coll.docs) {
        if (existingKey === ignoreKey) continue;
        if (canonical(fields.map((f) => getPath(existing, f) ?? null)) === key) {
          throw new CommandError(
            `E11000 duplicate key error collection index: ${index.name} dup key: ${key}`,
            11000,
            'DuplicateKey',
          );
        }
      }
    }
  }

  function store(coll: Collection, doc: Document, replacingKey?: string): void {
    const key = idKey(doc._id);
    if (replacingKey === undefined && coll.docs.has(key)) {
      throw new CommandError(
        `E11000 duplicate key error index: _id_ dup key: { _id: ${canonical(doc._id)} }`,
        11000,
        'DuplicateKey',
      );
    }
    checkUnique(coll, doc, replacingKey ?? key);
    coll.docs.set(key, clone(doc));
  }

  function writeError(index: number, error: unknown): Document {
    const e = error instanceof CommandError ? error : new CommandError(String(error), 1, 'InternalError');
    return { index, code: e.code, errmsg: e.message };
  }

  /** Open cursors (find/aggregate with a batchSize smaller than the result): the rest, served by getMore. */
  const cursors = new Map<string, { ns: string; rest: Document[] }>();
  let nextCursorId = 1;

  function cursorReply(db: string, name: string, docs: Document[], batchSize?: unknown): Document {
    const ns = `${db}.${name}`;
    const size = typeof batchSize === 'number' && batchSize > 0 ? batchSize : docs.length;
    if (docs.length <= size) return { cursor: { firstBatch: docs, id: Long.fromNumber(0), ns }, ok: 1 };
    const id = nextCursorId++;
    cursors.set(String(id), { ns, rest: docs.slice(size) });
    return { cursor: { firstBatch: docs.slice(0, size), id: Long.fromNumber(id), ns }, ok: 1 };
  }

  function getMore(body: Document): Document {
    const id = String(body.getMore);
    const open = cursors.get(id);
    if (open === undefined) throw new CommandError(`cursor id ${id} not found`, 43, 'CursorNotFound');
    const size = typeof body.batchSize === 'number' && body.batchSize > 0 ? body.batchSize : open.rest.length;
    const batch = open.rest.splice(0, size);
    if (open.rest.length === 0) cursors.delete(id);
    return {
      cursor: { nextBatch: batch, id: Long.fromNumber(open.rest.length === 0 ? 0 : Number(id)), ns: open.ns },
      ok: 1,
    };
  }

  function modify(
    coll: Collection,
    spec: { q: Document; u: Document; upsert?: boolean; multi?: boolean; sort?: Document },
  ) {
    const targets = sortDocs(
      [...coll.docs.values()].filter((d) => matches(d, spec.q)),
      spec.sort as Record<string, number> | undefined,
    );
    const chosen = spec.multi === true ? targets : targets.slice(0, 1);
    const updated: Document[] = [];
    for (const doc of chosen) {
      const next = applyUpdate(doc, spec.u, false);
      if (!equals(next._id, doc._id)) throw new CommandError('the _id field cannot be changed', 66, 'ImmutableField');
      store(coll, next, idKey(doc._id));
      updated.push(next);
    }
    if (chosen.length === 0 && spec.upsert === true) {
      const base = upsertBase(spec.q);
      const next = applyUpdate({ ...base, _id: base._id ?? new ObjectId() }, spec.u, true);
      if (next._id === undefined) next._id = base._id ?? new ObjectId();
      store(coll, next);
      return { matched: 0, updated: [next], upserted: next._id as unknown, before: [] as Document[] };
    }
    return { matched: chosen.length, updated, upserted: undefined, before: chosen };
  }

  function run(body: Document): Document {
    const name = Object.keys(body)[0] ?? '';
    const lower = name.toLowerCase();
    commands[name] = (commands[name] ?? 0) + 1;
    const db = typeof body.$db === 'string' ? body.$db : 'admin';
    const target = String(body[name]);
    switch (lower) {
      case 'hello':
      case 'ismaster':
        return {
          helloOk: true,
          ismaster: true,
          isWritablePrimary: true,
          maxBsonObjectSize: 16 * 1024 * 1024,
          maxMessageSizeBytes: 48_000_000,
          maxWriteBatchSize: 100_000,
          localTime: new Date(),
          logicalSessionTimeoutMinutes: 30,
          connectionId,
          minWireVersion: 0,
          maxWireVersion: 21,
          readOnly: false,
          ok: 1,
        };
      case 'ping':
      case 'endsessions':
      case 'killallsessions':
        return { ok: 1 };
      case 'buildinfo':
        return { version: '7.0.0-hoopgate-test', versionArray: [7, 0, 0, 0], ok: 1 };
      case 'insert': {
        const coll = collection(db, target) as Collection;
        const documents = (body.documents as Document[] | undefined) ?? [];
        const writeErrors: Document[] = [];
        let n = 0;
        for (const [index, doc] of documents.entries()) {
          try {
            store(coll, doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc);
            n += 1;
          } catch (error) {
            writeErrors.push(writeError(index, error));
            if (body.ordered !== false) break;
          }
        }
        return writeErrors.length > 0 ? { n, writeErrors, ok: 1 } : { n, ok: 1 };
      }
      case 'find': {
        const coll = collection(db, target, false);
        let docs = sortDocs(
          [...(coll?.docs.values() ?? [])].filter((d) => matches(d, body.filter as Document | undefined)),
          body.sort as Record<string, number> | undefined,
        );
        if (typeof body.skip === 'number') docs = docs.slice(body.skip);
        if (typeof body.limit === 'number' && body.limit !== 0) docs = docs.slice(0, Math.abs(body.limit));
        return cursorReply(
          db,
          target,
          docs.map((d) => project(d, body.projection as Document | undefined)),
          body.batchSize,
        );
      }
      case 'getmore':
        return getMore(body);
      case 'killcursors': {
        const ids = ((body.cursors as unknown[] | undefined) ?? []).map(String);
        for (const id of ids) cursors.delete(id);
        return { cursorsKilled: body.cursors ?? [], cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [], ok: 1 };
      }
      case 'count': {
        const coll = collection(db, target, false);
        return {
          n: [...(coll?.docs.values() ?? [])].filter((d) => matches(d, body.query as Document | undefined)).length,
          ok: 1,
        };
      }
      case 'distinct': {
        const coll = collection(db, target, false);
        const values: unknown[] = [];
        for (const doc of coll?.docs.values() ?? []) {
          if (!matches(doc, body.query as Document | undefined)) continue;
          for (const value of resolve(doc, String(body.key).split('.')).flatMap((v) => (Array.isArray(v) ? v : [v]))) {
            if (value !== undefined && !values.some((v) => equals(v, value))) values.push(value);
          }
        }
        return { values, ok: 1 };
      }
      case 'update': {
        const coll = collection(db, target) as Collection;
        let n = 0;
        let nModified = 0;
        const upserted: Document[] = [];
        const writeErrors: Document[] = [];
        for (const [index, spec] of ((body.updates as Document[] | undefined) ?? []).entries()) {
          try {
            const result = modify(coll, spec as { q: Document; u: Document; upsert?: boolean; multi?: boolean });
            if (result.upserted !== undefined) {
              upserted.push({ index, _id: result.upserted });
              n += 1;
            } else {
              n += result.matched;
              nModified += result.updated.filter((d, i) => !equals(d, result.before[i])).length;
            }
          } catch (error) {
            writeErrors.push(writeError(index, error));
            if (body.ordered !== false) break;
          }
        }
        return {
          n,
          nModified,
          ...(upserted.length > 0 ? { upserted } : {}),
          ...(writeErrors.length > 0 ? { writeErrors } : {}),
          ok: 1,
        };
      }
      case 'delete': {
        const coll = collection(db, target, false);
        let n = 0;
        for (const spec of (body.deletes as Document[] | undefined) ?? []) {
          if (coll === undefined) break;
          for (const [key, doc] of [...coll.docs]) {
            if (!matches(doc, spec.q as Document)) continue;
            coll.docs.delete(key);
            n += 1;
            if (spec.limit === 1) break;
          }
        }
        return { n, ok: 1 };
      }
      case 'findandmodify': {
        const coll = collection(db, target) as Collection;
        const query = (body.query as Document | undefined) ?? {};
        if (body.remove === true) {
          const [doc] = sortDocs(
            [...coll.docs.values()].filter((d) => matches(d, query)),
            body.sort as Record<string, number> | undefined,
          );
          if (doc !== undefined) coll.docs.delete(idKey(doc._id));
          return { lastErrorObject: { n: doc === undefined ? 0 : 1 }, value: doc ?? null, ok: 1 };
        }
        const result = modify(coll, {
          q: query,
          u: body.update as Document,
          upsert: body.upsert === true,
          sort: body.sort as Document,
        });
        const after = result.updated[0];
        const value = body.new === true ? after : result.before[0];
        return {
          lastErrorObject: {
            n: after === undefined ? 0 : 1,
            updatedExisting: result.matched > 0,
            ...(result.upserted === undefined ? {} : { upserted: result.upserted }),
          },
          value: value === undefined ? null : project(value, body.fields as Document | undefined),
          ok: 1,
        };
      }
      case 'aggregate': {
        const coll = collection(db, target, false);
        return cursorReply(
          db,
          target,
          aggregate([...(coll?.docs.values() ?? [])], (body.pipeline as Document[] | undefined) ?? []),
          (body.cursor as Document | undefined)?.batchSize,
        );
      }
      case 'createindexes': {
        const coll = collection(db, target) as Collection;
        const before = coll.indexes.length;
        for (const spec of (body.indexes as Document[] | undefined) ?? []) {
          if (coll.indexes.some((i) => i.name === spec.name)) continue;
          coll.indexes.push({
            name: String(spec.name),
            key: spec.key as Record<string, number>,
            unique: spec.unique === true,
          });
        }
        return {
          createdCollectionAutomatically: false,
          numIndexesBefore: before,
          numIndexesAfter: coll.indexes.length,
          ok: 1,
        };
      }
      case 'listindexes': {
        const coll = collection(db, target, false);
        return cursorReply(
          db,
          target,
          (coll?.indexes ?? []).map((i) => ({ v: 2, key: i.key, name: i.name, ...(i.unique ? { unique: true } : {}) })),
        );
      }
      case 'drop':
        dbs.get(db)?.delete(target);
        return { ok: 1 };
      case 'dropdatabase':
        dbs.delete(db);
        return { ok: 1 };
      default:
        throw new CommandError(`no such command: '${name}'`, 59, 'CommandNotFound');
    }
  }

  function respond(body: Document): Document {
    try {
      return run(body);
    } catch (error) {
      const e = error instanceof CommandError ? error : new CommandError((error as Error).message, 1, 'InternalError');
      return { ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName };
    }
  }

  function header(length: number, requestId: number, responseTo: number, opCode: number): Buffer {
    const head = Buffer.alloc(16);
    head.writeInt32LE(length, 0);
    head.writeInt32LE(requestId, 4);
    head.writeInt32LE(responseTo, 8);
    head.writeInt32LE(opCode, 12);
    return head;
  }

  let nextRequestId = 1;
  function handle(socket: Socket, message: Buffer): void {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_QUERY) {
      let offset = 20;
      while (message[offset] !== 0) offset += 1;
      offset += 1 + 8;
      const query = BSON.deserialize(message.subarray(offset, offset + message.readInt32LE(offset)));
      const doc = BSON.serialize(respond(query));
      const prefix = Buffer.alloc(20);
      prefix.writeInt32LE(0, 0);
      prefix.writeBigInt64LE(0n, 4);
      prefix.writeInt32LE(0, 12);
      prefix.writeInt32LE(1, 16);
      socket.write(Buffer.concat([header(16 + 20 + doc.length, nextRequestId++, requestId, OP_REPLY), prefix, doc]));
      return;
    }
    if (opCode !== OP_MSG) {
      socket.destroy();
      return;
    }
    const flags = message.readUInt32LE(16);
    const end = message.length - ((flags & 1) === 1 ? 4 : 0);
    let offset = 20;
    let body: Document = {};
    const sequences: Record<string, Document[]> = {};
    while (offset < end) {
      const kind = message[offset];
      offset += 1;
      const size = message.readInt32LE(offset);
      if (kind === 0) {
        body = BSON.deserialize(message.subarray(offset, offset + size));
        offset += size;
      } else {
        const sectionEnd = offset + size;
        let cursor = offset + 4;
        const start = cursor;
        while (message[cursor] !== 0) cursor += 1;
        const identifier = message.toString('utf8', start, cursor);
        cursor += 1;
        const docs: Document[] = [];
        while (cursor < sectionEnd) {
          const length = message.readInt32LE(cursor);
          docs.push(BSON.deserialize(message.subarray(cursor, cursor + length)));
          cursor += length;
        }
        sequences[identifier] = docs;
        offset = sectionEnd;
      }
    }
    const reply = respond({ ...body, ...sequences });
    if ((flags & 2) === 2) return; // moreToCome: unacknowledged write
    const doc = BSON.serialize(reply);
    const flagBits = Buffer.alloc(5);
    flagBits.writeUInt32LE(0, 0);
    flagBits.writeUInt8(0, 4);
    socket.write(Buffer.concat([header(16 + 5 + doc.length, nextRequestId++, requestId, OP_MSG), flagBits, doc]));
  }

  const server = createServer((socket) => {
    connectionId += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      while (buffer.length >= 4) {
        const length = buffer.readInt32LE(0);
        if (buffer.length < length) break;
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        try {
          handle(socket, message);
        } catch {
          socket.destroy();
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('mongo test server has no port');

  return {
    url: `mongodb://127.0.0.1:${address.port}`,
    commands,
    stop() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The MongoDB the tests run against: a real one when MONGODB_URI is set (each caller gets its own
 * database), otherwise a fresh in-process wire-protocol server.
 */
export async function openMongoBackend(env: Readonly<Record<string, string | undefined>> = process.env): Promise<{
  real: boolean;
  url(database: string): string;
  commands?: Record<string, number>;
  stop(): Promise<void>;
}> {
  const uri = env.MONGODB_URI;
  if (uri !== undefined && uri !== '') {
    const parsed = new URL(uri);
    return {
      real: true,
      url(database) {
        const copy = new URL(parsed.href);
        copy.pathname = `/${database}`;
        return copy.href;
      },
      stop: async () => undefined,
    };
  }
  const server = await startMongoServer();
  return {
    real: false,
    url: (database) => `${server.url}/${database}`,
    commands: server.commands,
    stop: () => server.stop(),
  };
}
