// Verifies one SAML 2.0 assertion (alone, or inside a <Response>) and returns only what its
// signature covers. The rules, each a refusal with ERR_INVALID_GRANT:
// - the document is screened and parsed without DTDs (xml.ts); it holds exactly one <Assertion>
//   (none encrypted), no duplicate ID, and signatures only as direct children of the Response or
//   of that Assertion — so every classic wrapping layout (a second assertion before/after, in
//   <Advice>, in a <ds:Object>, a copied ID) is refused before any cryptography;
// - each such signature has exactly one Reference, to its parent's ID, with safe transforms and
//   algorithms (RSA-SHA256/512, SHA-256/512, exclusive or inclusive c14n without comments), and
//   verifies with a certificate configured for the assertion's Issuer — never with KeyInfo;
// - the data is then read from the XML xml-crypto returns for the verified reference (the signed
//   element, canonicalised), never from the document as received;
// - Issuer, AudienceRestriction, Conditions and bearer SubjectConfirmationData times (≤ 60 s skew).
// Spec: SAML 2.0 core §2, profiles §4.1.4.2–4.1.4.3; RFC 7522 §3.
import { SignedXml } from 'xml-crypto';
import { HoopError } from '../lib/errors.js';
import {
  XmlRefused,
  allElements,
  attribute,
  children,
  childElements,
  is,
  ns,
  parseXml,
  screenXml,
  textOf,
} from './xml.js';

export const clockSkewMs = 60_000;
export const defaultMaxAssertionBytes = 256 * 1024;

/** Signature algorithms accepted: RSA with SHA-256/512. No SHA-1 (collisions), no HMAC (key confusion). */
const signatureAlgorithms = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
] as const;
const digestAlgorithms = [
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
] as const;
/** Without comments only: a comment can never be part of what was signed. */
const canonicalizations = [
  'http://www.w3.org/2001/10/xml-exc-c14n#',
  'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
] as const;
const envelopedSignature = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const bearer = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const success = 'urn:oasis:names:tc:SAML:2.0:status:Success';

export interface SamlIdp {
  entityId: string;
  /** PEM certificates whose keys may sign for this IdP (several during a rollover). */
  certificates(): Promise<readonly string[]>;
  groupsAttribute?: string;
}

export interface VerifiedAssertion {
  /** The assertion's ID (one-time use key). */
  id: string;
  issuer: string;
  nameId: string;
  nameIdFormat?: string;
  groups: string[];
  /** Every attribute by its Name, values in order. */
  attributes: Record<string, string[]>;
  /** ms since epoch: the earliest NotOnOrAfter of Conditions and the bearer SubjectConfirmationData. */
  notOnOrAfter: number;
  /** What was signed: the Assertion itself or the Response holding it. */
  signedElement: 'Assertion' | 'Response';
}

/** What a refusal may safely tell the audit (never the assertion). */
export interface AssertionHints {
  id?: string;
  issuer?: string;
}

export class AssertionRefused extends HoopError {
  readonly hints: AssertionHints;
  constructor(message: string, hints: AssertionHints, cause?: unknown) {
    super('ERR_INVALID_GRANT', message, cause === undefined ? undefined : { cause });
    this.hints = hints;
  }
}

type Refuse = (message: string, cause?: unknown) => never;

export interface VerifyOptions {
  idps: ReadonlyMap<string, SamlIdp>;
  audience: string;
  now: number;
  maxBytes?: number;
}

export async function verifyAssertion(xml: string, options: VerifyOptions): Promise<VerifiedAssertion> {
  const hints: AssertionHints = {};
  // Annotated so that `if (…) refuse(…)` narrows like a throw.
  const refuse: Refuse = (message, cause) => {
    throw new AssertionRefused(message, hints, cause);
  };
  let doc: Document;
  try {
    screenXml(xml, options.maxBytes ?? defaultMaxAssertionBytes);
    doc = parseXml(xml);
  } catch (error) {
    if (error instanceof XmlRefused) return refuse(error.message);
    throw error;
  }
  const root = doc.documentElement as Element;
  const isResponse = is(root, ns.protocol, 'Response');
  if (!isResponse && !is(root, ns.assertion, 'Assertion')) refuse('not a SAML 2.0 <Assertion> or <Response>');

  // Structure first: exactly one assertion, where it belongs; unique IDs; signatures only where expected.
  const elements = allElements(root);
  if (elements.some((e) => is(e, ns.assertion, 'EncryptedAssertion'))) {
    refuse(
      'encrypted assertions are not supported: configure the IdP to sign, not encrypt, assertions for this audience',
    );
  }
  const assertions = elements.filter((e) => is(e, ns.assertion, 'Assertion'));
  if (assertions.length !== 1) refuse(`the message holds ${assertions.length} assertions; exactly one is accepted`);
  const assertion = assertions[0] as Element;
  if (isResponse && assertion.parentNode !== root) refuse('the assertion must be a direct child of the Response');
  const id = attribute(assertion, 'ID');
  if (id !== undefined) hints.id = id;
  const unverifiedIssuer = children(assertion, ns.assertion, 'Issuer')[0];
  if (unverifiedIssuer !== undefined) hints.issuer = textOf(unverifiedIssuer);

  const seenIds = new Set<string>();
  for (const element of elements) {
    for (const name of ['ID', 'Id', 'id']) {
      const value = attribute(element, name);
      if (value === undefined) continue;
      if (seenIds.has(value)) refuse(`the ID ${JSON.stringify(value.slice(0, 80))} appears twice in the message`);
      seenIds.add(value);
    }
  }
  const signatures = elements.filter((e) => is(e, ns.dsig, 'Signature'));
  for (const signature of signatures) {
    if (signature.parentNode !== root && signature.parentNode !== assertion)
      refuse('a signature is in an unexpected place (only the Response or the Assertion may be signed)');
  }
  const signatureOf = (parent: Element): Element | undefined => {
    const own = children(parent, ns.dsig, 'Signature');
    if (own.length > 1) refuse(`the ${parent.localName} has ${own.length} signatures`);
    return own[0];
  };
  const responseSignature = isResponse ? signatureOf(root) : undefined;
  const assertionSignature = signatureOf(assertion);
  if (responseSignature === undefined && assertionSignature === undefined)
    refuse('the assertion is not signed (sign the assertion or the response at the IdP)');

  const issuer = hints.issuer;
  if (issuer === undefined || issuer === '') return refuse('the assertion has no <Issuer>');
  const idp = options.idps.get(issuer);
  if (idp === undefined)
    return refuse(`issuer ${JSON.stringify(issuer.slice(0, 200))} is not a configured SAML IdP (saml.idps[].entityId)`);
  let certificates: readonly string[];
  try {
    certificates = await idp.certificates();
  } catch (error) {
    return refuse(`the signing certificates of ${issuer} are unavailable: ${(error as Error).message}`, error);
  }
  if (certificates.length === 0) refuse(`no signing certificate is configured for ${issuer}`);

  // Every signature present must verify; the outermost verified one gives the content.
  let signedXml: string | undefined;
  let signedElement: VerifiedAssertion['signedElement'] = 'Assertion';
  if (assertionSignature !== undefined)
    signedXml = checkSignature(xml, assertionSignature, assertion, certificates, refuse);
  if (responseSignature !== undefined) {
    signedXml = checkSignature(xml, responseSignature, root, certificates, refuse);
    signedElement = 'Response';
  }

  // From here on, only the signed, canonical XML is read.
  let signedDoc: Document;
  try {
    signedDoc = parseXml(signedXml as string);
  } catch (error) {
    return refuse('the signed content cannot be read', error);
  }
  const signedRoot = signedDoc.documentElement as Element;
  let source: Element;
  if (signedElement === 'Response') {
    if (!is(signedRoot, ns.protocol, 'Response') || attribute(signedRoot, 'ID') !== attribute(root, 'ID'))
      refuse('the signed element is not the Response');
    const inside = children(signedRoot, ns.assertion, 'Assertion');
    if (inside.length !== 1) refuse('the signed Response does not hold exactly one assertion');
    source = inside[0] as Element;
    checkResponse(signedRoot, issuer, refuse);
  } else {
    if (!is(signedRoot, ns.assertion, 'Assertion')) refuse('the signed element is not the Assertion');
    source = signedRoot;
  }
  if (attribute(source, 'ID') !== hints.id) refuse('the signed assertion is not the one in the message');
  return readAssertion(source, idp, options, signedElement, refuse);
}

function checkSignature(
  xml: string,
  signature: Element,
  parent: Element,
  certificates: readonly string[],
  refuse: Refuse,
): string {
  const parentId = attribute(parent, 'ID');
  if (parentId === undefined || parentId === '') refuse(`the signed ${parent.localName} has no ID`);
  const signedInfo = children(signature, ns.dsig, 'SignedInfo');
  if (signedInfo.length !== 1) refuse('the signature must have exactly one SignedInfo');
  const info = signedInfo[0] as Element;
  const algorithmOf = (name: string) => children(info, ns.dsig, name).map((e) => attribute(e, 'Algorithm') ?? '');
  const [c14n] = algorithmOf('CanonicalizationMethod');
  const [method] = algorithmOf('SignatureMethod');
  if (c14n === undefined || !(canonicalizations as readonly string[]).includes(c14n))
    refuse(`canonicalization ${JSON.stringify(c14n ?? null)} is not accepted (use exclusive c14n without comments)`);
  if (method === undefined || !(signatureAlgorithms as readonly string[]).includes(method)) {
    refuse(
      `signature algorithm ${JSON.stringify(method ?? null)} is not accepted (RSA-SHA256 or RSA-SHA512; SHA-1 and HMAC are refused)`,
    );
  }
  const references = children(info, ns.dsig, 'Reference');
  if (references.length !== 1) refuse(`the signature must have exactly one Reference, it has ${references.length}`);
  const reference = references[0] as Element;
  if (attribute(reference, 'URI') !== `#${parentId}`)
    refuse(`the signature does not reference the ${parent.localName} that holds it`);
  const [digest] = children(reference, ns.dsig, 'DigestMethod').map((e) => attribute(e, 'Algorithm') ?? '');
  if (digest === undefined || !(digestAlgorithms as readonly string[]).includes(digest))
    refuse(`digest ${JSON.stringify(digest ?? null)} is not accepted (SHA-256 or SHA-512)`);
  for (const transforms of children(reference, ns.dsig, 'Transforms')) {
    for (const transform of childElements(transforms)) {
      const algorithm = attribute(transform, 'Algorithm') ?? '';
      if (
        !is(transform, ns.dsig, 'Transform') ||
        (algorithm !== envelopedSignature && !(canonicalizations as readonly string[]).includes(algorithm))
      ) {
        refuse(`transform ${JSON.stringify(algorithm)} is not accepted`);
      }
    }
  }

  let lastError: unknown;
  for (const certificate of certificates) {
    const verifier = new SignedXml({ publicCert: certificate, getCertFromKeyInfo: () => null });
    // Belt and braces: the library may only use the algorithms checked above.
    verifier.SignatureAlgorithms = pick(verifier.SignatureAlgorithms, signatureAlgorithms);
    verifier.HashAlgorithms = pick(verifier.HashAlgorithms, digestAlgorithms);
    verifier.CanonicalizationAlgorithms = pick(verifier.CanonicalizationAlgorithms, [
      ...canonicalizations,
      envelopedSignature,
    ]);
    try {
      verifier.loadSignature(signature);
      if (verifier.checkSignature(xml)) {
        const signed = verifier.getSignedReferences();
        if (signed.length !== 1 || signed[0] === undefined) refuse('the signature did not cover exactly one element');
        return signed[0] as string;
      }
    } catch (error) {
      if (error instanceof AssertionRefused) throw error;
      lastError = error;
    }
  }
  return refuse(
    `the ${parent.localName} signature does not verify with the IdP's certificate${certificates.length > 1 ? 's' : ''} (signed by another key, or changed after signing)`,
    lastError,
  );
}

function pick<T>(table: Record<string, T>, names: readonly string[]): Record<string, T> {
  return Object.fromEntries(names.flatMap((name) => (table[name] === undefined ? [] : [[name, table[name] as T]])));
}

function checkResponse(response: Element, issuer: string, refuse: Refuse): void {
  const responseIssuer = children(response, ns.assertion, 'Issuer')[0];
  if (responseIssuer !== undefined && textOf(responseIssuer) !== issuer)
    refuse('the Response and its assertion name different issuers');
  const status = children(response, ns.protocol, 'Status')[0];
  const code = status === undefined ? undefined : children(status, ns.protocol, 'StatusCode')[0];
  if (code !== undefined && attribute(code, 'Value') !== success)
    refuse(`the Response status is ${JSON.stringify(attribute(code, 'Value') ?? '')}, not Success`);
}

const dateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function time(element: Element, name: string, refuse: Refuse): number | undefined {
  const text = attribute(element, name);
  if (text === undefined) return undefined;
  const ms = dateTime.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms)) refuse(`${element.localName}@${name} is not an xs:dateTime`);
  return ms;
}

function readAssertion(
  assertion: Element,
  idp: SamlIdp,
  options: VerifyOptions,
  signedElement: VerifiedAssertion['signedElement'],
  refuse: Refuse,
): VerifiedAssertion {
  const { now } = options;
  const iso = (ms: number) => new Date(ms).toISOString();
  if (attribute(assertion, 'Version') !== '2.0') refuse('the assertion is not SAML 2.0 (Version="2.0")');
  const id = attribute(assertion, 'ID');
  if (id === undefined || id === '') return refuse('the assertion has no ID');
  const issuers = children(assertion, ns.assertion, 'Issuer');
  if (issuers.length !== 1 || textOf(issuers[0] as Element) !== idp.entityId)
    refuse(`the signed assertion's Issuer is not ${idp.entityId}`);

  // Subject: one NameID, its whole text (comments never split it: textOf joins every text node).
  const subjects = children(assertion, ns.assertion, 'Subject');
  if (subjects.length !== 1) refuse('the assertion must have exactly one <Subject>');
  const subject = subjects[0] as Element;
  const nameIds = children(subject, ns.assertion, 'NameID');
  if (nameIds.length !== 1)
    refuse('the subject must have exactly one <NameID> (BaseID and EncryptedID are not accepted)');
  const nameIdElement = nameIds[0] as Element;
  if (childElements(nameIdElement).length > 0) refuse('the NameID holds elements; it must be text');
  const nameId = textOf(nameIdElement);
  if (nameId.trim() === '') refuse('the NameID is empty');

  // Conditions: required, with a time window and our audience in every AudienceRestriction.
  const conditionsList = children(assertion, ns.assertion, 'Conditions');
  if (conditionsList.length !== 1) refuse('the assertion must have exactly one <Conditions>');
  const conditions = conditionsList[0] as Element;
  const notBefore = time(conditions, 'NotBefore', refuse);
  const conditionsEnd = time(conditions, 'NotOnOrAfter', refuse);
  if (notBefore !== undefined && now + clockSkewMs < notBefore)
    refuse(`the assertion is not valid before ${iso(notBefore)}`);
  if (conditionsEnd !== undefined && now - clockSkewMs >= conditionsEnd)
    refuse(`the assertion expired at ${iso(conditionsEnd)}`);
  const restrictions = children(conditions, ns.assertion, 'AudienceRestriction');
  if (restrictions.length === 0) refuse(`the assertion has no AudienceRestriction; it must name ${options.audience}`);
  for (const restriction of restrictions) {
    const audiences = children(restriction, ns.assertion, 'Audience').map(textOf);
    if (!audiences.includes(options.audience))
      refuse(
        `the assertion is for audience ${JSON.stringify(audiences.join(' ').slice(0, 200))}, not ${options.audience}`,
      );
  }

  // A bearer SubjectConfirmation whose data (if any) is within its window (RFC 7522 §3 item 7).
  const confirmations = children(subject, ns.assertion, 'SubjectConfirmation').filter(
    (c) => attribute(c, 'Method') === bearer,
  );
  if (confirmations.length === 0) refuse('the subject has no bearer SubjectConfirmation');
  let confirmationEnd: number | undefined;
  let confirmationProblem: string | undefined;
  let confirmed = false;
  for (const confirmation of confirmations) {
    const data = children(confirmation, ns.assertion, 'SubjectConfirmationData')[0];
    const start = data === undefined ? undefined : time(data, 'NotBefore', refuse);
    const end = data === undefined ? undefined : time(data, 'NotOnOrAfter', refuse);
    if (start !== undefined && now + clockSkewMs < start) {
      confirmationProblem = `the subject confirmation is not valid before ${iso(start)}`;
      continue;
    }
    if (end !== undefined && now - clockSkewMs >= end) {
      confirmationProblem = `the subject confirmation expired at ${iso(end)}`;
      continue;
    }
    confirmed = true;
    if (end !== undefined) confirmationEnd = confirmationEnd === undefined ? end : Math.min(confirmationEnd, end);
  }
  if (!confirmed) refuse(confirmationProblem ?? 'the subject confirmation is not valid now');
  const ends = [conditionsEnd, confirmationEnd].filter((t): t is number => t !== undefined);
  if (ends.length === 0)
    refuse(
      'the assertion has no NotOnOrAfter (on Conditions or SubjectConfirmationData): only assertions that expire are accepted',
    );

  const attributes: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const statement of children(assertion, ns.assertion, 'AttributeStatement')) {
    for (const element of children(statement, ns.assertion, 'Attribute')) {
      const name = attribute(element, 'Name');
      if (name === undefined || name === '' || name === '__proto__') continue;
      const values = children(element, ns.assertion, 'AttributeValue').map(textOf);
      attributes[name] = [...(attributes[name] ?? []), ...values];
    }
  }
  const groups = idp.groupsAttribute === undefined ? [] : [...new Set(attributes[idp.groupsAttribute] ?? [])];
  const format = attribute(nameIdElement, 'Format');
  return {
    id,
    issuer: idp.entityId,
    nameId,
    ...(format === undefined ? {} : { nameIdFormat: format }),
    groups,
    attributes: { ...attributes },
    notOnOrAfter: Math.min(...ends),
    signedElement,
  };
}
