// The gateway's view of masking: which Accept to send upstream, how to treat each upstream response
// (pass, mask on the fly, refuse), and the masked text of a request body for the record. Binds the
// pure maskers of proxy/mask to a classified request.
import type { MaskingConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { maskCredentialFields } from './mask/credentials.js';
import { createRequestBodyMasker, createResponseMasker, upstreamAccept, type ResponsePlan } from './mask/index.js';

export interface UpstreamResponseMeta {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  status: number;
  method: string;
}

export interface GatewayMasker {
  upstreamAccept(clientAccept: string | undefined, info: RequestInfo): string;
  plan(meta: UpstreamResponseMeta, info: RequestInfo): ResponsePlan;
  maskRequestBody(body: Buffer, contentType: string | undefined, info: RequestInfo): string;
}

const ACCEPT_CACHE_ENTRIES = 64;

export function createGatewayMasker(config: MaskingConfig): GatewayMasker {
  const responses = createResponseMasker(config);
  const bodies = createRequestBodyMasker(config);
  const accepts = new Map<string, string>();
  const resourceOf = (info: RequestInfo) =>
    info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  return {
    upstreamAccept(clientAccept) {
      // Clients send a handful of distinct Accept headers: each is parsed once (#13). Bounded, as the
      // header is the client's: a full cache starts over.
      const key = clientAccept ?? '';
      let value = accepts.get(key);
      if (value !== undefined) return value;
      value = upstreamAccept(clientAccept);
      if (key.length > 1024) return value;
      if (accepts.size >= ACCEPT_CACHE_ENTRIES) accepts.clear();
      accepts.set(key, value);
      return value;
    },
    plan(meta, info) {
      return responses.transform({
        contentType: meta.contentType,
        contentEncoding: meta.contentEncoding,
        isWatch: info.verb === 'watch',
        status: meta.status,
        ...(info.isResourceRequest ? { resource: resourceOf(info) } : {}),
      });
    },
    maskRequestBody(body, contentType, info) {
      // TokenReview.spec.token (another identity's bearer token) never reaches the record or Slack.
      return maskCredentialFields(bodies(body, contentType, info.isResourceRequest ? { resource: info.resource } : {}));
    },
  };
}
