// A caller whose token verified but who is refused anyway (over the per-identity limit, #12): the
// error carries the verified principal, so the refusal is recorded with who it was.
import { HoopError, type ErrorCode } from '../lib/errors.js';
import type { Principal } from './principal.js';

export class RefusedCallerError extends HoopError {
  readonly principal: Principal;

  constructor(principal: Principal, code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, { details });
    this.principal = principal;
  }
}

/** The verified principal a refusal names, when the caller was verified before being refused. */
export function refusedCallerOf(error: HoopError): Principal | undefined {
  return error instanceof RefusedCallerError ? error.principal : undefined;
}
