// Stage 6, the request body: read (bounded) only once the caller is known (#12: nothing is buffered
// for an unauthenticated client), and masked at once: only its masked form is recorded or shown.
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError } from '../lib/errors.js';
import type { GatewayMasker } from '../proxy/masking.js';
import { refused, type IncomingRequest, type Step } from './types.js';

export async function readRequestBody(
  request: IncomingRequest,
  info: RequestInfo,
  masker: Pick<GatewayMasker, 'maskRequestBody'>,
): Promise<Step<{ body?: Buffer; maskedBody?: string }>> {
  try {
    const body = await request.readBody?.();
    if (body === undefined || body.length === 0) return body === undefined ? { ok: true } : { ok: true, body };
    const contentType = request.headers['content-type'];
    const maskedBody = masker.maskRequestBody(body, Array.isArray(contentType) ? contentType[0] : contentType, info);
    return { ok: true, body, maskedBody };
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
}
