// What referenced files hold, read the way `serve` reads them at start: the TLS certificate and its
// key, CA bundles, token files, the checkpoint signing key, and where the SQLite store is created.
// So `hoopgate check` refuses every file `serve` would; `check --skip-files` skips these with the
// existence checks.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parseEd25519PrivateKey } from '../lib/signing-key.js';
import { file, pathOf, report } from './walker.js';
import type { Node, WalkContext } from './walker.js';

function readText(path: string, at: string, cx: WalkContext): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    return report(cx, at, `cannot read ${path}: ${(error as Error).message}`);
  }
}

/** A file whose text must pass `check` (a problem is a sentence about the file's content). */
function fileWith(check: (text: string, path: string) => string | undefined): Node<string> {
  return file().map((path, at, cx) => {
    if (!cx.checkFiles) return path;
    const text = readText(path, at, cx);
    if (text === undefined) return undefined;
    const problem = check(text, path);
    return problem === undefined ? path : report(cx, at, problem);
  });
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A CA bundle: one or more PEM certificates, each readable. */
export function caFile(): Node<string> {
  return fileWith((text, path) => {
    const blocks = text.match(pemCertificate) ?? [];
    if (blocks.length === 0) return `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
    for (const [i, block] of blocks.entries()) {
      try {
        new X509Certificate(block);
      } catch (error) {
        return `${path}: certificate ${i + 1} cannot be read: ${(error as Error).message}`;
      }
    }
    return undefined;
  });
}

/** A file holding a bearer token, read when it is used: it must not be empty. */
export function tokenFile(): Node<string> {
  return fileWith((text, path) => (text.trim() === '' ? `${path} is empty: it must hold the token` : undefined));
}

/** The Ed25519 key that signs audit checkpoints (the checkpointer's own parser). */
export function signingKeyFile(): Node<string> {
  return fileWith((text, path) => {
    const parsed = parseEd25519PrivateKey(text);
    return 'problem' in parsed ? `${path} ${parsed.problem}` : undefined;
  });
}

/** listen.tls: the certificate and key as the HTTPS server loads them at start (a key that fits the certificate). */
export function checkTlsPair(tls: { certFile: string; keyFile: string }, at: string, cx: WalkContext): void {
  if (!cx.checkFiles) return;
  const cert = readText(tls.certFile, pathOf(at, 'certFile'), cx);
  const key = readText(tls.keyFile, pathOf(at, 'keyFile'), cx);
  if (cert === undefined || key === undefined) return;
  let ok = true;
  try {
    new X509Certificate(cert);
  } catch (error) {
    ok = false;
    report(
      cx,
      pathOf(at, 'certFile'),
      `${tls.certFile} holds no readable PEM certificate: ${(error as Error).message}`,
    );
  }
  try {
    createPrivateKey(key);
  } catch (error) {
    ok = false;
    report(
      cx,
      pathOf(at, 'keyFile'),
      `${tls.keyFile} holds no readable private key (${(error as Error).message}); it must be an unencrypted PEM key`,
    );
  }
  if (!ok) return;
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    report(cx, at, `the key ${tls.keyFile} does not fit the certificate ${tls.certFile}: ${(error as Error).message}`);
  }
}

/** What is at `path`, or undefined when nothing is (also under a file: ENOTDIR). */
function statOf(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** `sqlite:PATH`: the store creates the file's directory and writes the file and its WAL beside it. */
export function checkSqlitePath(path: string, at: string, cx: WalkContext): void {
  if (!cx.checkFiles || path === ':memory:') return;
  const stat = statOf(path);
  if (stat !== undefined && !stat.isFile()) {
    report(cx, at, `${path} exists and is not a file`);
    return;
  }
  let dir = dirname(path);
  let dirStat = statOf(dir);
  while (dirStat === undefined && dirname(dir) !== dir) {
    dir = dirname(dir);
    dirStat = statOf(dir);
  }
  if (dirStat !== undefined && !dirStat.isDirectory()) {
    report(cx, at, `cannot create ${dirname(path)}: ${dir} is not a directory`);
    return;
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    if (stat !== undefined) accessSync(path, constants.R_OK | constants.W_OK);
  } catch (error) {
    report(
      cx,
      at,
      `the store cannot be written (${(error as Error).message}): the directory of the file must be writable`,
    );
  }
}
