// pods/log: the container's canned lines, with tailLines, limitBytes, timestamps and follow
// (a heartbeat line per interval until either side closes).
import { queryBool } from '../query.js';
import type { Obj } from '../resources.js';
import { badRequest, notFound } from '../status.js';
import type { Ctx } from './context.js';
import { sendRaw, writeHead } from './respond.js';

export function serveLog(ctx: Ctx): void {
  const { namespace, name } = ctx.info;
  const pod = ctx.deps.store.get('/pods', namespace, name);
  if (!pod) throw notFound('', 'pods', name);
  const containers: string[] = [...(pod['spec']?.['initContainers'] ?? []), ...(pod['spec']?.['containers'] ?? [])].map(
    (c: Obj) => c['name'],
  );
  const main: string[] = (pod['spec']?.['containers'] ?? []).map((c: Obj) => c['name']);
  let container = ctx.query.get('container') ?? '';
  if (container === '') {
    const preferred = pod['metadata']?.['annotations']?.['kubectl.kubernetes.io/default-container'];
    if (main.length === 1) container = main[0]!;
    else if (preferred && main.includes(preferred)) container = preferred;
    else throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${main.join(' ')}]`);
  } else if (!containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
  // The sim's containers never restart: there is no previous instance (the kubelet's message).
  if (queryBool(ctx.query, 'previous'))
    throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
  const timestamps = queryBool(ctx.query, 'timestamps');
  const stamp = (line: string) =>
    timestamps ? `${new Date(ctx.deps.now()).toISOString().replace('Z', '000000Z')} ${line}` : line;
  let lines = ctx.deps.logLines.map(stamp);
  const tail = ctx.query.get('tailLines');
  if (tail !== null && Number(tail) >= 0) lines = Number(tail) === 0 ? [] : lines.slice(-Number(tail));
  let text = lines.map((l) => `${l}\n`).join('');
  const limit = Number(ctx.query.get('limitBytes') ?? NaN);
  if (Number.isFinite(limit) && limit > 0) text = text.slice(0, limit);
  const follow = queryBool(ctx.query, 'follow');
  if (!follow) return sendRaw(ctx, 200, 'text/plain', Buffer.from(text));
  writeHead(ctx, 200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  ctx.res.write(text);
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    ctx.res.write(`${stamp(`heartbeat ${n} from ${name}/${container}`)}\n`);
  }, ctx.deps.logFollowIntervalMs);
  const close = () => {
    clearInterval(timer);
    if (ctx.streams.delete(close)) ctx.res.end();
  };
  ctx.streams.add(close);
  ctx.req.on('close', close);
  ctx.res.on('close', close);
}
