// The validated, typed configuration (docs/reference.md §4). loadConfig() produces it frozen; every other
// module takes the part it needs. Durations are milliseconds here.

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface ListenConfig {
  host: string;
  port: number;
  /** Absent: plain HTTP for a TLS-terminating proxy in front (warned about at start). */
  tls?: TlsFiles;
  /** Offer HTTP/2 (ALPN `h2`) beside HTTP/1.1 on the TLS port (default true; no effect without tls). */
  http2: boolean;
}

export type ClusterCredentials = { tokenFile: string } | { kubeconfig: string; context?: string };

export interface ClusterConfig {
  name: string;
  server: string;
  caFile?: string;
  insecureSkipTLSVerify: boolean;
  /** The gateway's own identity: used ONLY for TokenRequest and SubjectAccessReview. */
  credentials?: ClusterCredentials;
  tokens: 'tokenRequest' | 'static';
  tokenTTLMs: number;
  /** For `tokens: static`: "namespace/name" → file holding that ServiceAccount's token. */
  staticTokens: Record<string, { tokenFile: string }>;
}

export interface IssuerConfig {
  issuer: string;
  audience: string;
  /** Dot path into the claims. */
  groupsClaim: string;
  usernameClaim: string;
  /** Optional CA bundle for reaching the issuer (a private IdP). */
  caFile?: string;
  /** Clients accepted as `azp` of a token with several audiences (besides `audience` itself). */
  authorizedParties?: readonly string[];
}

/** RBAC-like rule: an absent field or ["*"] matches anything. `resources` entries are `res` or `res/sub`. */
export interface Rule {
  verbs?: readonly string[];
  apiGroups?: readonly string[];
  resources?: readonly string[];
  namespaces?: readonly string[];
  names?: readonly string[];
}

export interface IdentityMatch {
  issuer?: readonly string[];
  subjects?: readonly string[];
  groups?: readonly string[];
  /** Claim dot path → accepted value(s). */
  claims?: Readonly<Record<string, readonly string[]>>;
}

/** Safe defaults (issue #3) an operator may switch off per identity, explicitly. */
export interface SafeDefaults {
  nodesProxy: boolean;
  impersonate: boolean;
  escalateBind: boolean;
  serviceAccountTokens: boolean;
  gatewayNamespace: boolean;
}

export interface IdentityConfig {
  name: string;
  match: IdentityMatch;
  /** "namespace/name" of the baseline, least-privileged ServiceAccount. */
  serviceAccount: string;
  /** Limit this identity to these clusters; absent = all. */
  clusters?: readonly string[];
  deny: readonly Rule[];
  approval: {
    serviceAccount?: string;
    require: readonly Rule[];
    escalate: boolean;
    /**
     * `ticket`: a call that needs approval is not held but answered at once (403 with the approval ID);
     * the same call sent again after approval runs once. `X-Hoop-Approval: wait` cannot override it.
     * Absent: `wait`.
     */
    mode?: 'wait' | 'ticket';
  };
  /** `allow` here disables a safe default for this identity (e.g. `allowUnsafe: [nodesProxy]`). */
  safeDefaults: SafeDefaults;
}

/** A group of one issuer's tokens: the same name from another issuer is another group. */
export interface ApproverGroup {
  issuer: string;
  group: string;
}

/** One person's identities on several channels (`approval.approvers.people`). */
export interface ApproverPerson {
  slackUser?: string;
  /** Set whenever oidcSubject is (completed with the only issuer when absent). */
  oidcIssuer?: string;
  oidcSubject?: string;
  email?: string;
}

export interface ApprovalConfig {
  timeoutMs: number;
  minApprovals: number;
  grantOptionsMs: readonly number[];
  approvers: {
    slackUsers: readonly string[];
    slackUserGroups: readonly string[];
    oidcGroups: readonly ApproverGroup[];
    /** Explicit links between a person's Slack user, OIDC subject and email. */
    people: readonly ApproverPerson[];
  };
  /** Held requests one identity may have at once; more are answered 429. */
  maxPendingPerIdentity: number;
  /** `approval.ticketTTL`: an approved ticket not used within this long needs a new approval. Absent: 15m. */
  ticketTtlMs?: number;
}

export interface SlackConfig {
  botToken: string;
  signingSecret: string;
  appToken?: string;
  channel: string;
  command: string;
  auditors: { slackUsers: readonly string[]; slackUserGroups: readonly string[] };
  apiUrl: string;
}

export interface MaskRule {
  /** Resources (plural, lower case) whose objects this rule applies to; ["*"] = any. */
  resources: readonly string[];
  /** Regular expression (a leading `(?i)` means case-insensitive) on keys of `data`/`stringData`/`binaryData`. */
  keys?: string;
  /** Simple JSON paths, e.g. `spec.containers[].env[].value`. */
  paths?: readonly string[];
  /** With `paths` into env-like lists: mask only items whose `name` matches. */
  whenName?: string;
}

export interface MaskingConfig {
  secrets: boolean;
  rules: readonly MaskRule[];
  /** Largest single object (or watch event) the masker holds in memory, bytes. */
  maxObjectBytes: number;
}

export interface AuditConfig {
  /** `sqlite:PATH` or `mongodb://…`. */
  store: string;
  bodies: boolean;
  maxBodyBytes: number;
  retentionMs: number;
  sessionIdleMs: number;
  checkpoint?: { everyMs: number; signingKeyFile?: string; postToSlack: boolean };
}

export interface ExecConfig {
  spdy: 'deny' | 'unrecorded';
  maxRecordBytes: number;
}

/** One limit of `limits` (issue #12): concurrent requests and a token bucket. */
export interface RateLimitConfig {
  maxConcurrent: number;
  requestsPerSecond: number;
  burst: number;
}

export interface LimitsConfig {
  /** Per client address, before authentication. */
  perAddress: RateLimitConfig;
  /** Per authenticated subject (issuer + sub), after authentication. */
  perIdentity: RateLimitConfig;
  /** Entries kept per table (least recently seen forgotten first). */
  maxTrackedClients: number;
}

export interface GatewayConfig {
  /** The namespace the gateway runs in: requests into it are denied by default. */
  namespace?: string;
  maxBodyBytes: number;
  drainTimeoutMs: number;
}

/** One SAML IdP whose signed assertions `/hoop/v1/token` exchanges (docs/saml.md). */
export interface SamlIdpConfig {
  /** The assertion's <Issuer>; also the identity's `issuer` for `match`. */
  entityId: string;
  /** Exactly one of certFile, metadataFile, metadataUrl gives the signing certificates. */
  certFile?: string;
  metadataFile?: string;
  metadataUrl?: string;
  /** CA bundle for metadataUrl (a private IdP). */
  caFile?: string;
  /** Attribute Name whose values are the agent's groups. */
  groupsAttribute?: string;
}

export interface SamlConfig {
  idps: readonly SamlIdpConfig[];
  /** Our entity ID: every AudienceRestriction of an accepted assertion must name it. */
  audience: string;
  tokenTTLMs: number;
  /** PKCS#8 PEM (P-256 or Ed25519) shared by replicas; absent: generated at start. */
  signingKeyFile?: string;
  /** `iss` of issued tokens (the gateway's public URL + `/hoop`); absent: from the listener. */
  issuer?: string;
  maxAssertionBytes: number;
}

export interface Config {
  listen: ListenConfig;
  clusters: readonly ClusterConfig[];
  oidc: { issuers: readonly IssuerConfig[] };
  identities: readonly IdentityConfig[];
  approval: ApprovalConfig;
  slack?: SlackConfig;
  masking: MaskingConfig;
  audit: AuditConfig;
  exec: ExecConfig;
  limits: LimitsConfig;
  gateway: GatewayConfig;
  saml?: SamlConfig;
}
