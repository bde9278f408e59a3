// The throw-away PEM files of test/fixtures/pki (see its README), for configs whose files must hold
// what they claim: a certificate (also a CA bundle), its key, a key that does not fit it, and an
// Ed25519 checkpoint signing key.
import { readFileSync } from 'node:fs';

const read = (name: string) => readFileSync(new URL(`../fixtures/pki/${name}`, import.meta.url), 'utf8');

export const pki = {
  cert: read('tls.crt'),
  key: read('tls.key'),
  otherKey: read('other.key'),
  signingKey: read('checkpoint.pem'),
} as const;
