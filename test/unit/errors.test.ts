// lib/errors.ts: every code's HTTP status and Kubernetes Status reason agree, as the API server pairs them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorCodes, HoopError, type ErrorCode } from '../../packages/gateway/src/lib/errors.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';

/** k8s.io/apimachinery/pkg/apis/meta/v1 StatusReason ↔ code; 502 has no reason of its own there. */
const reasonOfCode: Record<number, readonly string[]> = {
  400: ['BadRequest'],
  401: ['Unauthorized'],
  403: ['Forbidden'],
  404: ['NotFound'],
  415: ['UnsupportedMediaType'],
  422: ['Invalid'],
  429: ['TooManyRequests'],
  500: ['InternalError'],
  502: ['InternalError'],
  503: ['ServiceUnavailable'],
};

test('every error code carries the reason Kubernetes pairs with its status', () => {
  for (const [code, { status, reason }] of Object.entries(errorCodes)) {
    assert.ok(reasonOfCode[status]?.includes(reason), `${code}: ${status} ${reason}`);
  }
});

test('an unreachable API server is 503 ServiceUnavailable, as the API server answers for an unreachable aggregated API', () => {
  const error = new HoopError(
    'ERR_UPSTREAM_UNREACHABLE' satisfies ErrorCode,
    'API server of cluster "prod" (https://10.0.0.1:6443) is unreachable: ECONNREFUSED',
  );
  const status = statusFromError(error);
  assert.deepEqual(
    [status.kind, status.status, status.code, status.reason],
    ['Status', 'Failure', 503, 'ServiceUnavailable'],
  );
  assert.match(status.message, /^hoopgate: API server of cluster "prod"/);
});
