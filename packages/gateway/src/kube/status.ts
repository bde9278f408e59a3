// Kubernetes `Status` objects: the shape of every refusal, so kubectl prints
// `Error from server (Forbidden): hoopgate: …`. https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
import type { HoopError } from '../lib/errors.js';

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

/** Every hoopgate message starts with `hoopgate: ` so a user can tell us from the API server. */
export function hoopMessage(message: string): string {
  return message.startsWith('hoopgate: ') ? message : `hoopgate: ${message}`;
}

export function buildStatus(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): KubeStatus {
  const status: KubeStatus = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: hoopMessage(message),
    reason,
    code,
  };
  if (details !== undefined) status.details = details;
  return status;
}

export function statusFromError(error: HoopError): KubeStatus {
  return buildStatus(error.status, error.reason, error.message, error.details);
}
