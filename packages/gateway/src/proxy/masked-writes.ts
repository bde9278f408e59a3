// The edge of round-trip-safe writes (issue #16, proxy/mask/unmask-write.ts): after admission (the
// write is authorised and recorded) and before forwarding, reads the stored object with the SAME
// ServiceAccount token the write will use, and returns the body to forward, or a refusal.
// The values read never leave this function except inside the body sent to the API server.
import type { MaskingConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import type { RequestInfo } from '../kube/request-info.js';
import { forwardToUpstream, type Upstream } from './forward.js';
import { createWriteRestorer, type StoredObject } from './mask/unmask-write.js';

export type PreparedWrite = { kind: 'forward'; body: Buffer; kept: string[] } | { kind: 'refuse'; error: HoopError };

/** What a masked write needs of its admission: where it goes and as whom (pipeline/types.ts Admission has these). */
export interface WriteTarget {
  path: string;
  token: string;
  serviceAccount: string;
  info: RequestInfo;
  cluster: { upstream: Upstream };
}

export interface MaskedWriteKeeper {
  prepare(
    admission: WriteTarget,
    request: { method: string; contentType: string | undefined; body: Buffer },
    signal: AbortSignal,
  ): Promise<PreparedWrite>;
}

export function createMaskedWriteKeeper(masking: MaskingConfig): MaskedWriteKeeper {
  const restorer = createWriteRestorer(masking);

  async function readStored(
    admission: WriteTarget,
    describe: string,
    signal: AbortSignal,
  ): Promise<StoredObject | HoopError> {
    // The object's own URL: the write's path without its query (dryRun, fieldManager …).
    const path = admission.path.split('?')[0] ?? admission.path;
    const response = await forwardToUpstream(admission.cluster.upstream, {
      method: 'GET',
      path,
      headers: { authorization: `Bearer ${admission.token}`, accept: 'application/json' },
      signal,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (response.status === 404) return undefined;
    if (response.status !== 200) {
      return new HoopError(
        response.status === 401 || response.status === 403 ? 'ERR_MASKED_VALUE' : 'ERR_UPSTREAM_UNREACHABLE',
        `the body carries masked values for ${describe}; keeping them needs the stored object, and reading it as ${admission.serviceAccount} answered ${response.status}: send the real values, or leave those keys out`,
      );
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // Falls through to the refusal below.
    }
    return new HoopError(
      'ERR_UPSTREAM_UNREACHABLE',
      `reading ${describe} to keep its masked values returned something that is not a JSON object; nothing was written`,
    );
  }

  return {
    async prepare(admission, request, signal) {
      const { info } = admission;
      const describe =
        info.name === ''
          ? `the new ${info.resource} object`
          : `${info.resource}/${info.name}${info.namespace === '' ? '' : ` -n ${info.namespace}`}`;
      const analysis = restorer.analyse({
        method: request.method,
        contentType: request.contentType,
        body: request.body,
        resource: info.isResourceRequest ? info.resource : '',
        subresource: info.subresource,
        describe,
      });
      // Status details name the object like the API server's own Invalid answers do.
      const withObject = (error: HoopError) =>
        error.details === undefined
          ? error
          : new HoopError(error.code, error.message, {
              details: {
                ...(info.name === '' ? {} : { name: info.name }),
                group: info.apiGroup,
                kind: info.resource,
                ...error.details,
              },
            });
      switch (analysis.kind) {
        case 'pass':
          return { kind: 'forward', body: request.body, kept: [] };
        case 'refuse':
          return { kind: 'refuse', error: withObject(analysis.error) };
        case 'restore': {
          const stored = await readStored(admission, describe, signal);
          if (stored instanceof HoopError) return { kind: 'refuse', error: stored };
          const restored = analysis.restore(stored);
          if (restored.kind === 'refuse') return { kind: 'refuse', error: withObject(restored.error) };
          return restored.kind === 'pass'
            ? { kind: 'forward', body: request.body, kept: [] }
            : { kind: 'forward', body: restored.body, kept: restored.kept };
        }
      }
    },
  };
}
