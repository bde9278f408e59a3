// list (selectors, limit/continue paging) and watch (initial events, resume from a resourceVersion,
// bookmarks, timeouts) over the store.
import type { Negotiated } from '../negotiate.js';
import { canonical } from '../objects.js';
import { queryBool } from '../query.js';
import { fieldLabelsOf, type Obj, type ResourceDef } from '../resources.js';
import { matchesFields, matchesLabels } from '../selectors.js';
import { badRequest, expired } from '../status.js';
import type { StoreEvent } from '../store.js';
import type { Ctx } from './context.js';
import { selectors } from './request.js';
import { present, sendObject, writeHead } from './respond.js';

const defaultWatchTimeoutMs = 30 * 60_000;

export function serveList(ctx: Ctx, def: ResourceDef, neg: Negotiated): void {
  const { labels, fields } = selectors(ctx, def);
  const namespace = def.namespaced && ctx.info.namespace ? ctx.info.namespace : undefined;
  let items = ctx.deps.store
    .list(def.storeKey, namespace)
    .filter(
      (o) => matchesLabels(labels, o['metadata']['labels']) && matchesFields(fields, fieldLabelsOf(def.storeKey, o)),
    );
  const rv = ctx.deps.store.currentRv();
  const meta: Obj = { resourceVersion: String(rv) };
  const token = ctx.query.get('continue');
  if (token) {
    let start: string;
    try {
      const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { v?: string; start?: string };
      if (parsed.v !== 'meta.k8s.io/v1' || typeof parsed.start !== 'string') throw new Error('bad token');
      start = parsed.start;
    } catch {
      throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
    }
    items = items.filter((o) => `${o['metadata']['namespace'] ?? ''}/${o['metadata']['name']}` >= start);
  }
  const limit = Number(ctx.query.get('limit') ?? '0');
  if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
    const next = items[limit]!;
    meta['continue'] = Buffer.from(
      JSON.stringify({
        v: 'meta.k8s.io/v1',
        rv,
        start: `${next['metadata']['namespace'] ?? ''}/${next['metadata']['name']}`,
      }),
    ).toString('base64');
    if (labels.length === 0 && fields.length === 0) meta['remainingItemCount'] = items.length - limit;
    items = items.slice(0, limit);
  }
  // Typed lists carry no kind/apiVersion on their items.
  const list = {
    kind: def.listKind,
    apiVersion: def.apiVersion,
    metadata: meta,
    items: items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
  };
  sendObject(ctx, 200, present(ctx, def, neg, list, true), neg, { isList: true });
}

export function serveWatch(ctx: Ctx, def: ResourceDef, neg: Negotiated): void {
  const { labels, fields } = selectors(ctx, def);
  const namespace = def.namespaced && ctx.info.namespace ? ctx.info.namespace : undefined;
  const name = ctx.info.name;
  const matches = (o: Obj | undefined) =>
    o !== undefined &&
    (namespace === undefined || (o['metadata']['namespace'] ?? '') === namespace) &&
    (name === '' || o['metadata']['name'] === name) &&
    matchesLabels(labels, o['metadata']['labels']) &&
    matchesFields(fields, fieldLabelsOf(def.storeKey, o));
  const rvParam = ctx.query.get('resourceVersion') ?? '';
  const sendInitial = queryBool(ctx.query, 'sendInitialEvents');
  const bookmarks = queryBool(ctx.query, 'allowWatchBookmarks');
  if (rvParam !== '' && !/^\d+$/.test(rvParam))
    throw badRequest(`resourceVersion: Invalid value: ${JSON.stringify(rvParam)}: must be a non-negative integer`);
  const timeoutSeconds = Number(ctx.query.get('timeoutSeconds') ?? NaN);
  const timeoutMs =
    Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds * 1000 : defaultWatchTimeoutMs;

  writeHead(ctx, 200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  ctx.res.flushHeaders();
  let headersSent = false;
  const write = (type: string, object: Obj) => {
    let out = object;
    if (type !== 'ERROR' && type !== 'BOOKMARK' && neg.target.as !== 'object') {
      // Only the first Table event carries column definitions (watchEmbeddedEncoder's NoHeaders).
      out = present(ctx, def, neg, object, false, headersSent);
      headersSent = true;
    }
    ctx.res.write(`${JSON.stringify({ type, object: out })}\n`);
  };
  const bookmark = (annotations?: Record<string, string>) => {
    const metadata: Obj = { resourceVersion: String(ctx.deps.store.currentRv()), creationTimestamp: null };
    if (annotations) metadata['annotations'] = annotations;
    write('BOOKMARK', { kind: def.kind, apiVersion: def.apiVersion, metadata });
  };
  const deliver = (e: StoreEvent) => {
    if (e.storeKey !== def.storeKey) return;
    const was = matches(e.previous);
    const is = matches(e.object);
    const object = canonical(def, e.object);
    if (e.type === 'ADDED' && is) write('ADDED', object);
    else if (e.type === 'MODIFIED') {
      if (was && is) write('MODIFIED', object);
      else if (!was && is) write('ADDED', object);
      else if (was && !is) write('DELETED', object);
    } else if (e.type === 'DELETED' && (was || is)) write('DELETED', object);
  };

  if (rvParam === '' || rvParam === '0' || sendInitial) {
    for (const o of ctx.deps.store.list(def.storeKey, namespace)) if (matches(o)) write('ADDED', canonical(def, o));
    if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  } else {
    const since = Number(rvParam);
    if (since < ctx.deps.store.oldestRv() - 1) {
      write(
        'ERROR',
        expired(`too old resource version: ${since} (${ctx.deps.store.oldestRv()})`).status as unknown as Obj,
      );
      ctx.res.end();
      return;
    }
    for (const e of ctx.deps.store.eventsSince(since)) deliver(e);
  }
  const unsubscribe = ctx.deps.store.subscribe(deliver);
  const bookmarkTimer = bookmarks ? setInterval(() => bookmark(), ctx.deps.bookmarkIntervalMs) : undefined;
  const close = () => {
    if (!ctx.streams.delete(close)) return;
    unsubscribe();
    clearTimeout(timeout);
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    ctx.res.end();
  };
  const timeout = setTimeout(close, timeoutMs);
  ctx.streams.add(close);
  ctx.req.on('close', close);
  ctx.res.on('close', close);
}
