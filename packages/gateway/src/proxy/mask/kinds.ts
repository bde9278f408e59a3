// Kind ↔ resource names for masking rules: config rules name resources (`configmaps`), objects name
// their kind (`ConfigMap`). An explicit table for irregular plurals, a lower-case plural fallback.

/** Kinds whose resource name is not simply `lower(kind) + "s"`. */
const irregular: Readonly<Record<string, string>> = {
  Endpoints: 'endpoints',
  EndpointSlice: 'endpointslices',
  Ingress: 'ingresses',
  IngressClass: 'ingressclasses',
  NetworkPolicy: 'networkpolicies',
  PodSecurityPolicy: 'podsecuritypolicies',
  PriorityClass: 'priorityclasses',
  StorageClass: 'storageclasses',
  RuntimeClass: 'runtimeclasses',
  ResourceClaimTemplate: 'resourceclaimtemplates',
  DeviceClass: 'deviceclasses',
  ComponentStatus: 'componentstatuses',
  PodDisruptionBudget: 'poddisruptionbudgets',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  MutatingAdmissionPolicy: 'mutatingadmissionpolicies',
  FlowSchema: 'flowschemas',
  ServiceCIDR: 'servicecidrs',
  IPAddress: 'ipaddresses',
};

/** The common kinds, listed so the table (not a guess) answers for them. */
const regular = [
  'Secret',
  'ConfigMap',
  'Pod',
  'PodTemplate',
  'Service',
  'ServiceAccount',
  'Namespace',
  'Node',
  'Event',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'ReplicationController',
  'ResourceQuota',
  'LimitRange',
  'Binding',
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'ControllerRevision',
  'Job',
  'CronJob',
  'HorizontalPodAutoscaler',
  'Role',
  'RoleBinding',
  'ClusterRole',
  'ClusterRoleBinding',
  'Lease',
  'CustomResourceDefinition',
  'APIService',
  'CertificateSigningRequest',
  'TokenReview',
  'TokenRequest',
  'SubjectAccessReview',
  'SelfSubjectAccessReview',
  'LocalSubjectAccessReview',
  'SelfSubjectRulesReview',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'VolumeAttachment',
  'CSIDriver',
  'CSINode',
  'CSIStorageCapacity',
  'PriorityLevelConfiguration',
  'ResourceClaim',
  'ResourceSlice',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicyBinding',
] as const;

const kindToResourceTable: ReadonlyMap<string, string> = new Map([
  ...regular.map((kind) => [kind, `${kind.toLowerCase()}s`] as const),
  ...Object.entries(irregular),
]);

const resourceToKindTable: ReadonlyMap<string, string> = new Map(
  [...kindToResourceTable].map(([kind, resource]) => [resource, kind] as const),
);

/** `ConfigMap` → `configmaps`; unknown kinds get the lower-case English plural the API server would use. */
export function kindToResource(kind: string): string {
  const known = kindToResourceTable.get(kind);
  if (known !== undefined) return known;
  const lower = kind.toLowerCase();
  if (/(s|x|z|ch|sh)$/.test(lower)) return `${lower}es`;
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

/** `secrets` (or `secrets/status`) → `Secret`; undefined for resources outside the table. */
export function resourceToKind(resource: string | undefined): string | undefined {
  if (resource === undefined) return undefined;
  const base = resource.split('/')[0] ?? resource;
  return resourceToKindTable.get(base.toLowerCase());
}
