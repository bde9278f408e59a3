// The Ed25519 private key that signs audit checkpoints, read by one function so `hoopgate check`
// refuses exactly the key files the checkpointer would refuse at start.
import { createPrivateKey, type KeyObject } from 'node:crypto';

/** A PKCS#8 (or other PEM) private key that must be Ed25519; a problem says what is wrong and how to fix it. */
export function parseEd25519PrivateKey(pem: string | Buffer): { key: KeyObject } | { problem: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    return {
      problem: `holds no readable private key (${(error as Error).message}); write an unencrypted PEM key: openssl genpkey -algorithm ed25519`,
    };
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    return {
      problem: `holds a key of type ${key.asymmetricKeyType ?? 'unknown'}; an Ed25519 key is required (openssl genpkey -algorithm ed25519)`,
    };
  }
  return { key };
}
