// Accept rewriting: the API server is only ever asked for formats the masker can read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upstreamAccept, upstreamAcceptEncoding } from '../../packages/gateway/src/proxy/mask/index.js';

describe('upstreamAccept', () => {
  const table: [string | undefined, string][] = [
    [undefined, 'application/json'],
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['application/json, */*', 'application/json'],
    // client-go with protobuf content config
    ['application/vnd.kubernetes.protobuf, */*', 'application/json'],
    ['application/vnd.kubernetes.protobuf', 'application/json'],
    ['application/vnd.kubernetes.protobuf;stream=watch', 'application/json;stream=watch'],
    ['application/cbor', 'application/json'],
    ['application/yaml', 'application/json'],
    // kubectl get
    [
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
    ],
    // protobuf Table requests become their JSON twins
    [
      'application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf;as=Table;v=v1beta1;g=meta.k8s.io,application/vnd.kubernetes.protobuf',
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
    ],
    // metadata-only informers
    [
      'application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
      'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
    ],
    [
      'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
      'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
    ],
    // aggregated discovery (kubectl 1.30+)
    [
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;q=0.9',
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json',
    ],
    [
      'application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList',
    ],
    // unknown views are dropped; q-values order, q=0 excludes
    ['application/json;as=Secret;g=;v=v1', 'application/json'],
    [
      'application/json;q=0.5, application/json;as=Table;v=v1;g=meta.k8s.io',
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    ],
    ['application/vnd.kubernetes.protobuf;q=0, text/html', 'application/json'],
    ['application/json; charset=utf-8', 'application/json'],
    ['text/plain', 'text/plain'],
    [
      'application/com.github.proto-openapi.spec.v2@v1.0+protobuf',
      'application/com.github.proto-openapi.spec.v2@v1.0+protobuf',
    ],
    ['application/jwk-set+json', 'application/jwk-set+json'],
  ];
  for (const [client, upstream] of table) {
    it(`${JSON.stringify(client)} → ${upstream}`, () => {
      const result = upstreamAccept(client);
      assert.equal(result, upstream);
      assert.ok(
        !/protobuf(?!$)|cbor|yaml/.test(
          result.replace('application/com.github.proto-openapi.spec.v2@v1.0+protobuf', ''),
        ),
      );
    });
  }

  it('asks upstream for gzip or identity only', () => {
    assert.equal(upstreamAcceptEncoding(), 'gzip');
  });
});
