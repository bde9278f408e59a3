// Masking engine (docs/reference.md §6): the public surface the proxy, audit and Slack modules use.
export { upstreamAccept, upstreamAcceptEncoding } from './accept.js';
export { createObjectMasker, LAST_APPLIED_ANNOTATION, MASKED_BASE64, MASKED_TEXT } from './mask-object.js';
export type { MaskHint, MaskResult, ObjectMasker } from './mask-object.js';
export { createResponseMasker, DEFAULT_MAX_OBJECT_BYTES } from './response-masker.js';
export type { ResponseMasker, ResponseMeta, ResponsePlan } from './response-masker.js';
export { createRequestBodyMasker, maskRequestBody } from './request-body.js';
export type { RequestBodyMasker, RequestBodyOptions } from './request-body.js';
export { kindToResource, resourceToKind } from './kinds.js';
