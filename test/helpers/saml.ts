// SAML test material: the classic forgeries built from a genuinely signed assertion (signature
// wrapping layouts, tampering, comment injection), and DTD payloads (XXE, entity expansion).
import { buildAssertion, buildResponse, type AssertionSpec } from '../../packages/demo/src/local-saml-idp.js';

export const dsig = 'http://www.w3.org/2000/09/xmldsig#';

/** The first `<saml:Assertion …>…</saml:Assertion>` (with its signature) out of a document. */
export function extractAssertion(xml: string): string {
  const start = xml.indexOf('<saml:Assertion');
  const end = xml.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
  if (start < 0 || end < start) throw new Error('no assertion in the document');
  return xml.slice(start, end);
}

/** An unsigned assertion for another subject (the attacker's), optionally reusing an ID. */
export function evilAssertion(spec: Omit<AssertionSpec, 'nameId'> & { nameId?: string }): string {
  return buildAssertion({
    ...spec,
    nameId: spec.nameId ?? 'admin@agents.example.com',
    attributes: { groups: ['admins', 'saml-readers'] },
  });
}

export function idOf(xml: string): string {
  const match = /<saml:Assertion[^>]* ID="([^"]+)"/.exec(xml);
  if (match?.[1] === undefined) throw new Error('no assertion ID');
  return match[1];
}

/**
 * XSW "signature moved into Object": the evil assertion takes the signature, and the signed
 * assertion travels inside that signature's <ds:Object>, where its reference still resolves.
 */
export function wrapInSignatureObject(signed: string, evil: string): string {
  const sigStart = signed.indexOf('<ds:Signature');
  const sigEnd = signed.indexOf('</ds:Signature>') + '</ds:Signature>'.length;
  const signature = signed.slice(sigStart, sigEnd);
  const original = signed.slice(0, sigStart) + signed.slice(sigEnd);
  const moved = signature.replace('</ds:Signature>', `<ds:Object>${original}</ds:Object></ds:Signature>`);
  return evil.replace('</saml:Issuer>', `</saml:Issuer>${moved}`);
}

/** XSW "nested in Advice": the signed assertion hidden in the evil assertion's <Advice>. */
export function nestInAdvice(signed: string, evil: string): string {
  return evil.replace('<saml:AuthnStatement', `<saml:Advice>${signed}</saml:Advice><saml:AuthnStatement`);
}

export function responseOf(issuer: string, assertions: readonly string[]): string {
  return buildResponse(issuer, assertions);
}

/** An external entity pointing at a local file, used in the NameID. */
export function xxeAssertion(spec: AssertionSpec, file: string): string {
  const assertion = buildAssertion({ ...spec, nameId: 'XXE_PLACEHOLDER' }).replace('XXE_PLACEHOLDER', '&xxe;');
  return `<?xml version="1.0"?>\n<!DOCTYPE saml:Assertion [<!ENTITY xxe SYSTEM "file://${file}">]>\n${assertion}`;
}

/** "Billion laughs": ten levels of ten-fold entity expansion (10^10 bytes if expanded). */
export function billionLaughs(spec: AssertionSpec): string {
  const levels = ['<!ENTITY lol0 "lol">'];
  for (let i = 1; i <= 10; i += 1) levels.push(`<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`);
  const assertion = buildAssertion({ ...spec, nameId: 'LAUGH' }).replace('LAUGH', '&lol10;');
  return `<?xml version="1.0"?>\n<!DOCTYPE saml:Assertion [${levels.join('')}]>\n${assertion}`;
}
