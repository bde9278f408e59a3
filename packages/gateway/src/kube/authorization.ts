// The vocabulary of a Kubernetes authorization check (the attributes a SubjectAccessReview carries and
// its answer), shared by the pure policy (which derives and matches them) and the reviewers (which ask
// the API server), so neither imports the other.

export type AuthorizationAttributes =
  | {
      kind: 'resource';
      verb: string;
      group: string;
      version: string;
      resource: string;
      subresource: string;
      namespace: string;
      name: string;
    }
  | { kind: 'non-resource'; verb: string; path: string };

/** What RBAC (or any authorizer behind SubjectAccessReview) said. */
export type RbacAnswer = { allowed: boolean; reason?: string };

/** What a SelfSubjectAccessReview asks about (authorization.k8s.io/v1 spec). */
export interface ResourceAttributesSpec {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

export interface AccessReviewSpec {
  resourceAttributes?: ResourceAttributesSpec;
  nonResourceAttributes?: { path?: string; verb?: string };
}
