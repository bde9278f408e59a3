// A local SAML 2.0 IdP for the demo and the tests: an RSA signing key with a self-signed
// certificate, and freshly signed assertions (alone, or inside a signed or unsigned <Response>),
// as ADFS, Okta, Entra ID or Keycloak would issue them for a machine.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import forge from 'node-forge';
import { SignedXml } from 'xml-crypto';

export interface SamlSigningMaterial {
  /** PKCS#8 PEM. */
  key: string;
  /** Self-signed X.509 PEM: what the gateway's `certFile` holds. */
  cert: string;
}

export function generateSamlSigningMaterial(commonName = 'hoopgate local SAML IdP', days = 30): SamlSigningMaterial {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(
    privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  ) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { key, cert: forge.pki.certificateToPem(cert) };
}

export interface AssertionSpec {
  issuer: string;
  nameId: string;
  audience: string;
  attributes?: Record<string, string | readonly string[]>;
  /** ms since epoch; default now. */
  now?: number;
  /** Lifetime from `now`; default 5 minutes. */
  ttlMs?: number;
  /** Shift NotBefore (e.g. into the future); default now − 0. */
  notBefore?: number;
  id?: string;
  nameIdFormat?: string;
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const iso = (ms: number) => new Date(ms).toISOString();

/** An unsigned SAML 2.0 assertion with bearer confirmation, conditions and attributes. */
export function buildAssertion(spec: AssertionSpec): string {
  const now = spec.now ?? Date.now();
  const end = now + (spec.ttlMs ?? 300_000);
  const notBefore = spec.notBefore ?? now;
  const id = spec.id ?? `_${randomUUID()}`;
  const attributes = Object.entries(spec.attributes ?? {})
    .map(([name, value]) => {
      const values = (typeof value === 'string' ? [value] : value)
        .map((v) => `<saml:AttributeValue>${escape(v)}</saml:AttributeValue>`)
        .join('');
      return `<saml:Attribute Name="${escape(name)}">${values}</saml:Attribute>`;
    })
    .join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${escape(id)}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${escape(spec.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${escape(spec.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified')}">${escape(spec.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(end)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(end)}"><saml:AudienceRestriction><saml:Audience>${escape(spec.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:X509</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes === '' ? '' : `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>`) +
    `</saml:Assertion>`
  );
}

/** A <Response> around assertions (the XML of each, as given). */
export function buildResponse(
  issuer: string,
  assertions: readonly string[],
  options: { id?: string; now?: number } = {},
): string {
  const id = options.id ?? `_${randomUUID()}`;
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${escape(id)}" Version="2.0" IssueInstant="${iso(options.now ?? Date.now())}">` +
    `<saml:Issuer>${escape(issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    assertions.join('') +
    `</samlp:Response>`
  );
}

/**
 * Signs the first element named `element` (enveloped, exclusive c14n, RSA-SHA256), the Signature
 * placed right after its Issuer as the SAML schema wants.
 */
export function signElement(
  xml: string,
  element: 'Assertion' | 'Response',
  material: SamlSigningMaterial,
  options: { algorithm?: string; digest?: string } = {},
): string {
  const signer = new SignedXml({ privateKey: material.key, publicCert: material.cert });
  signer.signatureAlgorithm = (options.algorithm ?? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256') as never;
  signer.canonicalizationAlgorithm = 'http://www.w3.org/2001/10/xml-exc-c14n#';
  const target = `//*[local-name(.)='${element}']`;
  signer.addReference({
    xpath: target,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: (options.digest ?? 'http://www.w3.org/2001/04/xmlenc#sha256') as never,
  });
  signer.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return signer.getSignedXml();
}

export interface LocalSamlIdp {
  entityId: string;
  material: SamlSigningMaterial;
  /** A fresh signed assertion (a new ID each time), as XML. */
  issue(spec: Omit<AssertionSpec, 'issuer'> & { sign?: 'assertion' | 'response' }): string;
}

export function createLocalSamlIdp(
  entityId: string,
  material: SamlSigningMaterial = generateSamlSigningMaterial(),
): LocalSamlIdp {
  return {
    entityId,
    material,
    issue({ sign = 'assertion', ...spec }) {
      const assertion = buildAssertion({ ...spec, issuer: entityId });
      if (sign === 'assertion') return signElement(assertion, 'Assertion', material);
      return signElement(
        buildResponse(entityId, [assertion], spec.now === undefined ? {} : { now: spec.now }),
        'Response',
        material,
      );
    },
  };
}

/** base64url, as RFC 7522 sends an assertion. */
export function encodeAssertion(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64url');
}
