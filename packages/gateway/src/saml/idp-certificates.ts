// Where a SAML IdP's signing certificates come from: a PEM file, a metadata file, or a metadata URL
// fetched like a JWKS (kept in memory, refreshed after maxAge, stale kept if a refresh fails, at most
// one fetch per cooldown). Only RSA certificates are accepted (what xml-crypto verifies).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createIssuerFetch, type IssuerFetch } from '../authn/issuer-fetch.js';
import type { SamlIdpConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import type { SamlIdp } from './verify-assertion.js';
import { allElements, attribute, children, is, ns, parseXml, screenXml, textOf } from './xml.js';

const maxMetadataBytes = 1024 * 1024;

export interface IdpSourceDeps {
  clock: () => number;
  fetch?: IssuerFetch;
  /** Metadata older than this is refetched on next use; default 1 h. */
  maxAgeMs?: number;
  /** Minimum time between two fetches after a failure; default 30 s. */
  cooldownMs?: number;
  timeoutMs?: number;
}

export interface SamlIdpSource extends SamlIdp {
  /** For /hoop/readyz: fails while a metadata URL has never been fetched. */
  status(): { ok: boolean; error?: string };
  close(): Promise<void>;
}

/** PEM text → each certificate, checked to be X.509 with an RSA key. */
export function readPemCertificates(pem: string, where: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new HoopError('ERR_CONFIG', `${where}: no PEM certificate (-----BEGIN CERTIFICATE-----) found`);
  return blocks.map((block) => checkCertificate(block, where));
}

function checkCertificate(pem: string, where: string): string {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (error) {
    throw new HoopError('ERR_CONFIG', `${where}: not a valid X.509 certificate: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (certificate.publicKey.asymmetricKeyType !== 'rsa') {
    throw new HoopError(
      'ERR_CONFIG',
      `${where}: the certificate has a ${certificate.publicKey.asymmetricKeyType ?? 'unknown'} key; SAML signatures are verified with RSA keys only`,
    );
  }
  return certificate.toString();
}

/** The signing certificates of `entityId` in SAML metadata (an EntityDescriptor or EntitiesDescriptor). */
export function certificatesFromMetadata(xml: string, entityId: string, where: string): string[] {
  let doc: Document;
  try {
    screenXml(xml, maxMetadataBytes);
    doc = parseXml(xml);
  } catch (error) {
    throw new HoopError('ERR_CONFIG', `${where}: ${(error as Error).message}`, { cause: error });
  }
  const entity = allElements(doc.documentElement as Element).find(
    (e) => is(e, ns.metadata, 'EntityDescriptor') && attribute(e, 'entityID') === entityId,
  );
  if (entity === undefined)
    throw new HoopError('ERR_CONFIG', `${where}: no EntityDescriptor with entityID ${JSON.stringify(entityId)}`);
  const certificates: string[] = [];
  for (const descriptor of children(entity, ns.metadata, 'IDPSSODescriptor')) {
    for (const key of children(descriptor, ns.metadata, 'KeyDescriptor')) {
      const use = attribute(key, 'use');
      if (use !== undefined && use !== 'signing') continue;
      for (const cert of allElements(key).filter((e) => is(e, ns.dsig, 'X509Certificate'))) {
        const body = textOf(cert).replace(/\s+/g, '');
        const lines = body.match(/.{1,64}/g) ?? [];
        certificates.push(
          checkCertificate(`-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`, where),
        );
      }
    }
  }
  if (certificates.length === 0)
    throw new HoopError('ERR_CONFIG', `${where}: the IDPSSODescriptor of ${entityId} has no signing certificate`);
  return certificates;
}

export function createIdpSource(config: SamlIdpConfig, deps: IdpSourceDeps): SamlIdpSource {
  const base = {
    entityId: config.entityId,
    ...(config.groupsAttribute === undefined ? {} : { groupsAttribute: config.groupsAttribute }),
  };
  if (config.certFile !== undefined) {
    const certificates = readPemCertificates(readFileSync(config.certFile, 'utf8'), config.certFile);
    return {
      ...base,
      certificates: async () => certificates,
      status: () => ({ ok: true }),
      close: async () => undefined,
    };
  }
  if (config.metadataFile !== undefined) {
    const certificates = certificatesFromMetadata(
      readFileSync(config.metadataFile, 'utf8'),
      config.entityId,
      config.metadataFile,
    );
    return {
      ...base,
      certificates: async () => certificates,
      status: () => ({ ok: true }),
      close: async () => undefined,
    };
  }
  const url = config.metadataUrl;
  if (url === undefined)
    throw new HoopError('ERR_CONFIG', `saml idp ${config.entityId}: needs certFile, metadataFile or metadataUrl`);

  const fetch = deps.fetch ?? createIssuerFetch(config.caFile === undefined ? {} : { caFile: config.caFile });
  const maxAgeMs = deps.maxAgeMs ?? 3_600_000;
  const cooldownMs = deps.cooldownMs ?? 30_000;
  let certificates: string[] | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let lastError: string | undefined;
  let inflight: Promise<void> | undefined;

  async function load(): Promise<void> {
    attemptedAt = deps.clock();
    try {
      const response = await fetch(url as string, {
        redirect: 'error',
        signal: AbortSignal.timeout(deps.timeoutMs ?? 5000),
      });
      if (response.status !== 200) throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `HTTP ${response.status}`);
      const text = await response.text();
      certificates = certificatesFromMetadata(text, config.entityId, url as string);
      fetchedAt = deps.clock();
      lastError = undefined;
    } catch (error) {
      lastError = `cannot read SAML metadata of ${config.entityId} from ${url}: ${(error as Error).message}`;
      throw new HoopError('ERR_INVALID_GRANT', lastError, { cause: error });
    }
  }
  const refresh = () => {
    inflight ??= load().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  return {
    ...base,
    async certificates() {
      const now = deps.clock();
      if (certificates === undefined) {
        if (now - attemptedAt < cooldownMs && lastError !== undefined)
          throw new HoopError('ERR_INVALID_GRANT', lastError);
        await refresh();
      } else if (now - fetchedAt >= maxAgeMs && now - attemptedAt >= cooldownMs) {
        // An IdP blip must not refuse every agent: stale certificates stay usable.
        await refresh().catch(() => undefined);
      }
      return certificates ?? [];
    },
    status: () =>
      certificates === undefined ? { ok: false, error: lastError ?? 'metadata not fetched yet' } : { ok: true },
    close: async () => (fetch as Partial<ReturnType<typeof createIssuerFetch>>).close?.(),
  };
}
