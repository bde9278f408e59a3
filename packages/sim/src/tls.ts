// Throw-away TLS material for `hoopgate demo` and tests: a small CA and a server certificate it
// signs for the given DNS names and IPs. Keys come from node:crypto (fast); node-forge builds the
// X.509 structures, which node:crypto cannot.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface TlsMaterial {
  /** PEM of the CA that signed `cert`: what clients trust (kubeconfig `certificate-authority-data`). */
  ca: string;
  cert: string;
  key: string;
}

function newKeyPair(): { forgePrivate: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgePrivate = forge.pki.privateKeyFromPem(pem);
  const forgePublic = forge.pki.setRsaPublicKey(forgePrivate.n, forgePrivate.e);
  return { forgePrivate, forgePublic, pem };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  return cert;
}

export function generateTlsMaterial(
  options: { hosts?: readonly string[]; days?: number; commonName?: string } = {},
): TlsMaterial {
  const hosts = options.hosts ?? ['localhost', '127.0.0.1', '::1'];
  const days = options.days ?? 30;

  const caKeys = newKeyPair();
  const caCert = newCertificate(caKeys.forgePublic, days);
  const caName = [{ name: 'commonName', value: `${options.commonName ?? 'hoopgate'} local CA` }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  caCert.sign(caKeys.forgePrivate, forge.md.sha256.create());

  const leafKeys = newKeyPair();
  const leaf = newCertificate(leafKeys.forgePublic, days);
  leaf.setSubject([{ name: 'commonName', value: options.commonName ?? hosts[0] ?? 'localhost' }]);
  leaf.setIssuer(caName);
  const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':');
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: hosts.map((h) => (isIp(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
  ]);
  leaf.sign(caKeys.forgePrivate, forge.md.sha256.create());

  return { ca: forge.pki.certificateToPem(caCert), cert: forge.pki.certificateToPem(leaf), key: leafKeys.pem };
}
