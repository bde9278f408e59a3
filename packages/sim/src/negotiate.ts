// Content negotiation of the API server's responses: JSON or YAML, as the object itself, a
// meta.k8s.io Table, or PartialObjectMetadata(List). Protobuf is not produced: a client that also
// accepts JSON gets JSON; one that accepts only protobuf gets 406 NotAcceptable.
import { notAcceptable } from './status.js';

export type Target =
  | { as: 'object' }
  | { as: 'Table'; version: 'v1' | 'v1beta1' }
  | { as: 'PartialObjectMetadata' | 'PartialObjectMetadataList'; version: 'v1' | 'v1beta1' };

export interface Negotiated {
  target: Target;
  yaml: boolean;
}

interface MediaRange {
  type: string;
  params: Record<string, string>;
  q: number;
  order: number;
}

function parseAccept(accept: string): MediaRange[] {
  return accept
    .split(',')
    .map((part, order) => {
      const [type = '', ...rawParams] = part.split(';').map((s) => s.trim());
      const params: Record<string, string> = {};
      for (const p of rawParams) {
        const eq = p.indexOf('=');
        if (eq > 0) params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
      }
      const q = params['q'] === undefined ? 1 : Number(params['q']);
      return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0, order };
    })
    .filter((m) => m.type !== '' && m.q > 0)
    .sort((a, b) => b.q - a.q || a.order - b.order);
}

export function negotiate(accept: string | undefined): Negotiated {
  if (!accept || accept.trim() === '') return { target: { as: 'object' }, yaml: false };
  for (const m of parseAccept(accept)) {
    const yaml = m.type === 'application/yaml';
    if (!yaml && m.type !== 'application/json' && m.type !== '*/*' && m.type !== 'application/*') continue;
    const as = m.params['as'];
    if (as === undefined) return { target: { as: 'object' }, yaml };
    const version = m.params['v'];
    if (m.params['g'] !== 'meta.k8s.io' || (version !== 'v1' && version !== 'v1beta1')) continue;
    if (as === 'Table') return { target: { as: 'Table', version }, yaml };
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return { target: { as, version }, yaml };
  }
  throw notAcceptable();
}

export function contentTypeOf(n: Negotiated): string {
  const base = n.yaml ? 'application/yaml' : 'application/json';
  return n.target.as === 'object' ? base : `${base};as=${n.target.as};v=${n.target.version};g=meta.k8s.io`;
}
