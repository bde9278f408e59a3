// What every part of the simulator's request handler shares: its dependencies, the per-request
// context (request, response, parsed query and request info, caller) and the request log record.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticated, Authenticator } from '../authn.js';
import type { DiscoveryDocuments } from '../discovery.js';
import type { ObjectOps } from '../objects.js';
import type { OpenApiDocs } from '../openapi.js';
import type { RbacState } from '../rbac.js';
import type { SimRequestInfo } from '../request-info.js';
import type { Registry } from '../resources.js';
import type { Store } from '../store.js';

export interface SimRequestRecord {
  time: number;
  method: string;
  /** Path and query exactly as received. */
  rawPath: string;
  /** 'admin' | 'system:serviceaccount:<ns>:<name>' | null for no or unknown token. */
  identity: string | null;
  token: string | null;
  headers: Record<string, string | string[] | undefined>;
  /** 0 until the response head is written. */
  status: number;
}

export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
  gitCommit: string;
  gitTreeState: string;
  buildDate: string;
  goVersion: string;
  compiler: string;
  platform: string;
}

export interface SimHandlerDeps {
  registry: Registry;
  store: Store;
  ops: ObjectOps;
  authn: Authenticator;
  rbac: RbacState;
  discovery: DiscoveryDocuments;
  openapi: OpenApiDocs;
  version: VersionInfo;
  now: () => number;
  logLines: readonly string[];
  requests: SimRequestRecord[];
  /** TokenRequest's minimum spec.expirationSeconds (the real server's is 600). */
  minTokenExpirationSeconds: number;
  /** Interval of BOOKMARK events on watches that allow them. */
  bookmarkIntervalMs: number;
  /** Interval of new lines on a followed log. */
  logFollowIntervalMs: number;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  record: SimRequestRecord;
  query: URLSearchParams;
  info: SimRequestInfo;
  auth: Authenticated | undefined;
  deps: SimHandlerDeps;
  /** Closers of the open streams (watches, followed logs), shared by the whole handler. */
  streams: Set<() => void>;
}
