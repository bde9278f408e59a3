// Hardened XML reading for SAML: the text is screened before any parser sees it (no DTD, no entity
// declaration, no processing instruction, a size cap), then parsed by @xmldom/xmldom with every
// parser complaint fatal. Small namespace-aware element helpers follow.
import { DOMParser } from '@xmldom/xmldom';

export const ns = {
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
} as const;

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;

export class XmlRefused extends Error {}

/**
 * Refuses what a SAML message never needs and attacks rely on: `<!DOCTYPE` (XXE, "billion laughs"),
 * any other `<!` declaration, processing instructions other than the leading XML declaration, NUL
 * and other C0 controls. Done on the text, so no parser ever sees a DTD.
 */
export function screenXml(text: string, maxBytes: number): void {
  if (Buffer.byteLength(text) > maxBytes) throw new XmlRefused(`the XML is larger than ${maxBytes} bytes`);
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(text))
    throw new XmlRefused('the XML holds control characters (it must be UTF-8 text)');
  if (/<!doctype/i.test(text)) throw new XmlRefused('the XML has a DOCTYPE: DTDs and entities are never processed');
  if (/<!(?!--|\[CDATA\[)/.test(text))
    throw new XmlRefused(
      'the XML has a markup declaration (<!ENTITY, <!ELEMENT …): DTDs and entities are never processed',
    );
  const body = text.replace(/^\ufeff?<\?xml\s[^?]*\?>/, '');
  if (body.includes('<?'))
    throw new XmlRefused('the XML has a processing instruction, which SAML messages never carry');
}

/** Parses screened text; any warning or error of the parser refuses the document. */
export function parseXml(text: string): Document {
  const problems: string[] = [];
  const onProblem = (message: unknown) => {
    problems.push(String(message).split('\n')[0] ?? 'malformed');
  };
  const parser = new DOMParser({ errorHandler: { warning: onProblem, error: onProblem, fatalError: onProblem } });
  let doc: Document;
  try {
    doc = parser.parseFromString(text, 'text/xml');
  } catch (error) {
    throw new XmlRefused(`the XML is not well-formed: ${(error as Error).message.split('\n')[0] ?? 'parse error'}`);
  }
  if (problems.length > 0 || doc.documentElement === null) {
    throw new XmlRefused(
      `the XML is not well-formed: ${problems[0]?.replace(/^\[xmldom \w+\]\s*/, '') ?? 'no root element'}`,
    );
  }
  return doc;
}

export function isElement(node: Node | null | undefined): node is Element {
  return node !== null && node !== undefined && node.nodeType === ELEMENT_NODE;
}

export function is(element: Element, namespace: string, localName: string): boolean {
  return element.namespaceURI === namespace && element.localName === localName;
}

export function childElements(parent: Element): Element[] {
  const out: Element[] = [];
  for (let node = parent.firstChild; node !== null; node = node.nextSibling) if (isElement(node)) out.push(node);
  return out;
}

export function children(parent: Element, namespace: string, localName: string): Element[] {
  return childElements(parent).filter((child) => is(child, namespace, localName));
}

/** Every element below `root` (document order), `root` included. */
export function allElements(root: Element): Element[] {
  const out: Element[] = [];
  const walk = (element: Element) => {
    out.push(element);
    for (const child of childElements(element)) walk(child);
  };
  walk(root);
  return out;
}

/**
 * The concatenation of every text and CDATA node below `element`. Unlike taking the first text
 * node, a comment inside a value (`admin@example.com<!---->.evil.test`) never shortens it.
 */
export function textOf(element: Element): string {
  let text = '';
  const walk = (node: Node) => {
    for (let child = node.firstChild; child !== null; child = child.nextSibling) {
      if (child.nodeType === TEXT_NODE || child.nodeType === CDATA_SECTION_NODE) text += child.nodeValue ?? '';
      else if (isElement(child)) walk(child);
    }
  };
  walk(element);
  return text;
}

export function attribute(element: Element, name: string): string | undefined {
  return element.hasAttribute(name) ? (element.getAttribute(name) ?? undefined) : undefined;
}
