// Coded errors: one base class, a closed set of codes, each mapped once to an HTTP status and a
// Kubernetes Status reason (kube/status.ts turns a HoopError into the Status body kubectl prints).

export const errorCodes = {
  ERR_BAD_REQUEST: { status: 400, reason: 'BadRequest' },
  ERR_NON_CANONICAL_PATH: { status: 400, reason: 'BadRequest' },
  ERR_BODY_TOO_LARGE: { status: 400, reason: 'BadRequest' },
  // The SAML token endpoint (src/saml/) answers these as OAuth errors (RFC 6749 §5.2), not Status.
  ERR_INVALID_GRANT: { status: 400, reason: 'BadRequest' },
  ERR_INVALID_REQUEST: { status: 400, reason: 'BadRequest' },
  ERR_UNSUPPORTED_GRANT_TYPE: { status: 400, reason: 'BadRequest' },
  ERR_UNAUTHENTICATED: { status: 401, reason: 'Unauthorized' },
  ERR_TOKEN_INVALID: { status: 401, reason: 'Unauthorized' },
  ERR_FORBIDDEN: { status: 403, reason: 'Forbidden' },
  ERR_IMPERSONATION: { status: 403, reason: 'Forbidden' },
  ERR_NO_IDENTITY: { status: 403, reason: 'Forbidden' },
  ERR_POLICY_DENIED: { status: 403, reason: 'Forbidden' },
  ERR_APPROVAL_REQUIRED: { status: 403, reason: 'Forbidden' },
  ERR_APPROVAL_DENIED: { status: 403, reason: 'Forbidden' },
  ERR_APPROVAL_EXPIRED: { status: 403, reason: 'Forbidden' },
  ERR_APPROVAL_CANCELLED: { status: 403, reason: 'Forbidden' },
  ERR_NOT_FOUND: { status: 404, reason: 'NotFound' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, reason: 'UnsupportedMediaType' },
  ERR_MASKED_VALUE: { status: 422, reason: 'Invalid' },
  ERR_INVALID: { status: 422, reason: 'Invalid' },
  /** `details.retryAfterSeconds` becomes the Retry-After header. */
  ERR_TOO_MANY_REQUESTS: { status: 429, reason: 'TooManyRequests' },
  ERR_UNMASKABLE: { status: 502, reason: 'InternalError' },
  // As the API server answers when an aggregated API's backend is unreachable: 503 ServiceUnavailable.
  ERR_UPSTREAM_UNREACHABLE: { status: 503, reason: 'ServiceUnavailable' },
  ERR_UPSTREAM_TOKEN: { status: 503, reason: 'ServiceUnavailable' },
  ERR_AUDIT_UNAVAILABLE: { status: 503, reason: 'ServiceUnavailable' },
  ERR_SHUTTING_DOWN: { status: 503, reason: 'ServiceUnavailable' },
  ERR_CONFIG: { status: 500, reason: 'InternalError' },
  ERR_INTERNAL: { status: 500, reason: 'InternalError' },
} as const satisfies Record<string, { status: number; reason: string }>;

export type ErrorCode = keyof typeof errorCodes;

export class HoopError extends Error {
  readonly code: ErrorCode;
  /** Extra Status `details` (e.g. `{ kind: 'namespaces', name: 'prod' }`). */
  readonly details: Record<string, unknown> | undefined;
  /**
   * For the operator, never the client: the config path that decided and how to change it. The
   * request's log line carries it; the message (the Status an agent reads) does not (issue #16).
   */
  readonly operatorDetail: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> | undefined; operatorDetail?: string | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoopError';
    this.code = code;
    this.details = options?.details;
    this.operatorDetail = options?.operatorDetail;
  }

  get status(): number {
    return errorCodes[this.code].status;
  }

  get reason(): string {
    return errorCodes[this.code].reason;
  }
}

export function isHoopError(value: unknown): value is HoopError {
  return value instanceof HoopError;
}

/** Translates anything thrown into a HoopError once, at a boundary; unknown errors become ERR_INTERNAL. */
export function toHoopError(value: unknown): HoopError {
  if (value instanceof HoopError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new HoopError('ERR_INTERNAL', `internal error: ${message}`, { cause: value });
}

export function assertNever(value: never, what = 'value'): never {
  throw new HoopError('ERR_INTERNAL', `unexpected ${what}: ${JSON.stringify(value)}`);
}
