// Reading what a request asks for: its body (JSON, YAML or protobuf, size-capped), write options,
// label/field selectors, delete options and the caller.
import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type { WriteOptions } from '../objects.js';
import { decodeProtobufObject } from '../protobuf.js';
import type { UserInfo } from '../rbac.js';
import { supportedFieldLabels, type Obj, type ResourceDef } from '../resources.js';
import { parseFieldSelector, parseLabelSelector, type FieldRequirement, type LabelRequirement } from '../selectors.js';
import { badRequest, objectMediaTypes, tooLarge, unsupportedMediaType } from '../status.js';
import type { Ctx } from './context.js';

const maxBodyBytes = 3 * 1024 * 1024;

async function readBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBytes(req)).toString('utf8');
}

export async function readObjectBody(ctx: Ctx): Promise<unknown> {
  const bytes = await readBytes(ctx.req);
  const type = String(ctx.req.headers['content-type'] ?? 'application/json')
    .split(';')[0]!
    .trim()
    .toLowerCase();
  if (type === 'application/vnd.kubernetes.protobuf') return decodeProtobufObject(bytes);
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw badRequest('the body of the request was empty');
  try {
    if (type === 'application/json' || type === '') return JSON.parse(text);
    if (type === 'application/yaml') return parseYaml(text);
  } catch (e) {
    throw badRequest(`the object provided is unrecognized (${(e as Error).message})`);
  }
  throw unsupportedMediaType(objectMediaTypes);
}

export function userOf(ctx: Ctx): UserInfo {
  return ctx.auth?.user ?? { name: 'system:anonymous', groups: ['system:unauthenticated'] };
}

export function writeOptions(ctx: Ctx): WriteOptions {
  const dryRun = ctx.query.getAll('dryRun');
  if (dryRun.some((d) => d !== 'All'))
    throw badRequest(
      `dryRun: Unsupported value: ${JSON.stringify(dryRun.find((d) => d !== 'All'))}: supported values: "All"`,
    );
  const fv = ctx.query.get('fieldValidation') ?? 'Warn';
  const fieldValidation = fv === 'Strict' || fv === 'Ignore' ? fv : 'Warn';
  const manager = ctx.query.get('fieldManager') ?? String(ctx.req.headers['user-agent'] ?? 'unknown').split('/')[0]!;
  return { dryRun: dryRun.length > 0, fieldManager: manager, fieldValidation };
}

export function selectors(ctx: Ctx, def: ResourceDef): { labels: LabelRequirement[]; fields: FieldRequirement[] } {
  const ls = ctx.query.get('labelSelector') ?? '';
  const fs = ctx.query.get('fieldSelector') ?? '';
  const labels = parseLabelSelector(ls);
  const fields = parseFieldSelector(fs);
  const supported = supportedFieldLabels(def.storeKey);
  const bad = fields.find((f) => !supported.includes(f.field));
  if (bad) {
    throw badRequest(
      `Unable to find "${def.group}/${def.version}, Resource=${def.resource}" that match label selector "${ls}", field selector "${fs}": field label not supported: ${bad.field}`,
    );
  }
  return { labels, fields };
}

export function deleteOptionsFrom(
  ctx: Ctx,
  body: string,
): {
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
} {
  let opts: Obj = {};
  if (body.trim() !== '') {
    try {
      opts = JSON.parse(body) as Obj;
    } catch {
      throw badRequest(
        'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml',
      );
    }
  }
  const grace = ctx.query.get('gracePeriodSeconds') ?? opts['gracePeriodSeconds'];
  const out: {
    preconditions?: { uid?: string; resourceVersion?: string };
    gracePeriodSeconds?: number;
    propagationPolicy?: string;
  } = {};
  if (opts['preconditions']) out.preconditions = opts['preconditions'];
  if (grace !== undefined && grace !== null) out.gracePeriodSeconds = Number(grace);
  const policy = ctx.query.get('propagationPolicy') ?? opts['propagationPolicy'];
  if (policy) out.propagationPolicy = String(policy);
  if (Array.isArray(opts['dryRun']) && opts['dryRun'].includes('All') && !ctx.query.has('dryRun'))
    ctx.query.append('dryRun', 'All');
  return out;
}
