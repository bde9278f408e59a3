// Where a SAML IdP's signing certificates come from besides a PEM file (issue #14): a metadata file
// and a metadata URL fetched like a JWKS — kept, refreshed after maxAge, stale kept on failure.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { certificatesFromMetadata, createIdpSource } from '../../packages/gateway/src/saml/idp-certificates.js';
import { generateTlsMaterial } from '../../packages/sim/src/tls.js';

const entityId = 'https://idp.test/saml';
const signing = generateTlsMaterial({ commonName: 'idp signing' }).cert;
const encryption = generateTlsMaterial({ commonName: 'idp encryption' }).cert;
const base64Of = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

function metadata(options: { entity?: string; doctype?: boolean } = {}): string {
  return `${options.doctype ? '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' : ''}<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${options.entity ?? entityId}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${base64Of(signing)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${base64Of(encryption)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
}

describe('SAML metadata as a certificate source', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hoopgate-saml-metadata-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('metadataFile: the signing certificate of the entity, not its encryption one', async () => {
    const file = join(dir, 'metadata.xml');
    writeFileSync(file, metadata());
    const source = createIdpSource({ entityId, metadataFile: file }, { clock: Date.now });
    const certificates = await source.certificates();
    assert.deepEqual(certificates.map(fingerprint), [fingerprint(signing)]);
    assert.deepEqual(source.status(), { ok: true });
  });

  test('metadata of another entity, or with a DTD, is refused naming the file', () => {
    assert.throws(() => certificatesFromMetadata(metadata({ entity: 'https://other.test' }), entityId, 'idp.xml'), {
      code: 'ERR_CONFIG',
      message: `idp.xml: no EntityDescriptor with entityID "${entityId}"`,
    });
    assert.throws(
      () => certificatesFromMetadata(metadata({ doctype: true }), entityId, 'idp.xml'),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_CONFIG');
        assert.match(error.message, /^idp\.xml: .*(DOCTYPE|DTD|declaration)/i);
        return true;
      },
    );
  });

  describe('metadataUrl', () => {
    let server: Server;
    let url: string;
    let fetches = 0;
    let failing = false;
    before(async () => {
      server = createServer((_req, res) => {
        fetches += 1;
        if (failing) return void res.writeHead(500).end();
        res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(metadata());
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metadata`;
    });
    after(() => server.close());

    test('fetched once, kept for maxAge, refetched after it; stale kept when the IdP fails', async () => {
      let now = 1_000_000;
      const source = createIdpSource(
        { entityId, metadataUrl: url },
        { clock: () => now, maxAgeMs: 60_000, cooldownMs: 1_000 },
      );
      assert.equal(source.status().ok, false, 'not ready before the first fetch');
      assert.deepEqual((await source.certificates()).map(fingerprint), [fingerprint(signing)]);
      await source.certificates();
      assert.equal(fetches, 1, 'kept in memory within maxAge');
      now += 60_000;
      await source.certificates();
      assert.equal(fetches, 2, 'refetched after maxAge');
      failing = true;
      now += 60_000;
      assert.deepEqual(
        (await source.certificates()).map(fingerprint),
        [fingerprint(signing)],
        'stale certificates stay usable',
      );
      assert.equal(fetches, 3);
      await source.close();
    });

    test('an IdP that never answered refuses (no certificate, not ready), retried only after the cooldown', async () => {
      failing = true;
      const before = fetches;
      let now = 5_000_000;
      const source = createIdpSource({ entityId, metadataUrl: url }, { clock: () => now, cooldownMs: 30_000 });
      await assert.rejects(
        source.certificates(),
        /cannot read SAML metadata of https:\/\/idp\.test\/saml from http:\/\/127\.0\.0\.1:\d+\/metadata: HTTP 500/,
      );
      await assert.rejects(source.certificates(), /HTTP 500/);
      assert.equal(fetches, before + 1, 'no second fetch inside the cooldown');
      assert.equal(source.status().ok, false);
      now += 30_000;
      failing = false;
      assert.deepEqual((await source.certificates()).map(fingerprint), [fingerprint(signing)]);
      assert.equal(source.status().ok, true);
      await source.close();
    });
  });
});
